import ConvergeCore
import Foundation

/// Deletes the automatic snapshots older than their retention on every target of a set
/// whose provider keeps snapshots (`SnapshotRetaining`): run on demand and, in the
/// controller, hourly.
public struct SnapshotRetentionPass: Sendable {
    /// What the pass did on one target.
    public struct TargetOutcome: Sendable {
        public var target: ResourceID
        public var retention: RetentionHours
        public var collection: SnapshotCollection
    }

    public var runtime: Runtime

    public init(runtime: Runtime) {
        self.runtime = runtime
    }

    /// Runs the pass on every snapshot-keeping target of `set`, in set order, with
    /// `retention` instead of each target's own when given. An error on one object is in
    /// its target's outcome; the others are still handled.
    public func run(_ set: ManifestSet, retention: RetentionHours?, dryRun: Bool, now: Date = Date()) async throws -> [TargetOutcome] {
        let providers = try runtime.providers.providers(for: set)
        let targets = providers.compactMap { target, provider in (provider as? any SnapshotRetaining).map { (target, $0) } }
            .sorted { $0.0 < $1.0 }
        guard !targets.isEmpty else {
            throw RuntimeError(.noSnapshotTargets, "the manifest set has no target that keeps snapshots (a VCenter)")
        }
        var outcomes: [TargetOutcome] = []
        for (target, provider) in targets {
            let hours = retention ?? provider.snapshotRetention
            let collection = try await provider.collectSnapshots(instance: runtime.instance, retention: hours, now: now, dryRun: dryRun)
            outcomes.append(TargetOutcome(target: target, retention: hours, collection: collection))
        }
        return outcomes
    }
}
