import Foundation

/// A provider that takes snapshots as step guards and deletes them once they are older than
/// a retention (the vSphere provider). The runtime's retention pass runs every such provider.
public protocol SnapshotRetaining: Provider {
    /// The retention the target's manifest sets (or its default).
    var snapshotRetention: RetentionHours { get }

    /// Deletes the automatic snapshots older than `retention` on the objects `instance`
    /// owns (in a dry run, only lists them). Any other snapshot is left alone. An error on
    /// one object is recorded in the result and the others are still handled.
    func collectSnapshots(instance: String, retention: RetentionHours, now: Date, dryRun: Bool) async throws -> SnapshotCollection
}

/// What one retention pass found and did on one target.
public struct SnapshotCollection: Sendable {
    public struct Entry: Sendable {
        /// The object (VM) the snapshot belongs to.
        public var object: String
        public var snapshot: String
        public var created: Date

        public init(object: String, snapshot: String, created: Date) {
            self.object = object
            self.snapshot = snapshot
            self.created = created
        }
    }

    /// Automatic snapshots older than the retention: deleted (or, in a dry run, to delete).
    public var expired: [Entry] = []
    /// Automatic snapshots within the retention.
    public var recent: [Entry] = []
    /// Snapshots with other names, never touched.
    public var manual: [Entry] = []
    /// One line per object or snapshot that could not be handled; the pass went on.
    public var errors: [String] = []

    public init() {}
}

/// How long automatic snapshots are kept: whole hours from 1h to 99h, written `24h` (or any
/// duration that is a whole number of hours, such as `1440m`).
public struct RetentionHours: Sendable, Hashable {
    public static let range = 1...99
    public static let standard = RetentionHours(hours: 24)
    /// What a retention accepts, for the hint of every place that reads one.
    public static let hint = "use whole hours from \(range.lowerBound)h to \(range.upperBound)h, e.g. \(standard.hours)h"

    public var hours: Int

    private init(hours: Int) {
        self.hours = hours
    }

    public var duration: Duration { .seconds(hours * 3600) }

    /// Reads `24h`; the error says why the text is not a retention.
    public static func parse(_ text: String) -> Result<RetentionHours, ParseError> {
        let hour: Int64 = 3_600_000_000_000
        guard let nanoseconds = DurationText.nanoseconds(text) else { return .failure(.notADuration) }
        guard nanoseconds % hour == 0 else { return .failure(.notWholeHours) }
        guard range.contains(Int(nanoseconds / hour)) else { return .failure(.outOfRange) }
        return .success(RetentionHours(hours: Int(nanoseconds / hour)))
    }

    public enum ParseError: Error, CustomStringConvertible {
        case notADuration, notWholeHours, outOfRange

        public var description: String {
            switch self {
            case .notADuration: return "is not a duration"
            case .notWholeHours: return "is not a whole number of hours"
            case .outOfRange: return "is out of range"
            }
        }
    }
}
