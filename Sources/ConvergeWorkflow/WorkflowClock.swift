import Foundation

/// The engine's time: when a lease counts as expired, how long a retry backs off, how often
/// leases are renewed, how long to wait for resources another run holds.
///
/// Not Swift's `Clock`: lease expiries come from the store as wall-clock dates, so `now` must
/// be a `Date`. Tests pass a clock they move by hand, so a backoff or a lease running out
/// takes no real time.
public protocol WorkflowClock: Sendable {
    /// Wall-clock time, comparable with the stores' lease expiries.
    var now: Date { get }
    /// Suspends for `duration` of this clock's time; throws `CancellationError` when the
    /// task is cancelled meanwhile.
    func sleep(for duration: Duration) async throws
}

/// The real time: `Date()` and `Task.sleep`.
public struct SystemClock: WorkflowClock {
    public init() {}

    public var now: Date { Date() }

    public func sleep(for duration: Duration) async throws {
        try await Task.sleep(for: duration)
    }
}
