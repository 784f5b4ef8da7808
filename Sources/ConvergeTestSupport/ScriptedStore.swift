import ConvergeStore
import Foundation

/// A `WorkflowStore` that passes every call to another one, except the lease renewals it is
/// told to fail: to test what a run does when its leases cannot be renewed.
public final class ScriptedStore: WorkflowStore, @unchecked Sendable {
    // @unchecked: the script and the count are guarded by `lock`.

    /// How a scripted renewal fails.
    public enum RenewalFailure: Sendable {
        /// The store throws (a dropped connection).
        case error
        /// The store answers that the leases are lost.
        case lost
    }

    /// The error a scripted renewal throws.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String { "connection to the store lost (scripted)" }
    }

    public let base: any WorkflowStore
    private let lock = NSLock()
    private var renewalFailure: (after: Int, failure: RenewalFailure)?
    private var renewalCount = 0

    public init(_ base: any WorkflowStore) {
        self.base = base
    }

    /// Renewals after the next `calls` ones fail as `failure`.
    public func failRenewals(after calls: Int = 0, _ failure: RenewalFailure) {
        lock.withLock { renewalFailure = (renewalCount + calls, failure) }
    }

    /// Renewals asked for so far, failed or not.
    public var renewals: Int { lock.withLock { renewalCount } }

    public func renewLeases(run: Int64, owner: String, ttl: Duration) async throws -> Bool {
        let failure = lock.withLock { () -> RenewalFailure? in
            renewalCount += 1
            guard let renewalFailure, renewalCount > renewalFailure.after else { return nil }
            return renewalFailure.failure
        }
        switch failure {
        case .error: throw Failure()
        case .lost: return false
        case nil: return try await base.renewLeases(run: run, owner: owner, ttl: ttl)
        }
    }

    public func migrate() async throws { try await base.migrate() }
    public func createRun(_ run: NewRun) async throws -> RunRecord { try await base.createRun(run) }
    public func run(_ id: Int64) async throws -> RunRecord? { try await base.run(id) }
    public func runs(_ filter: RunFilter) async throws -> [RunRecord] { try await base.runs(filter) }
    public func updateRun(_ id: Int64, status: RunStatus, error: String?, finished: Bool) async throws {
        try await base.updateRun(id, status: status, error: error, finished: finished)
    }
    public func recordStep(_ step: StepRecord) async throws { try await base.recordStep(step) }
    public func steps(run: Int64) async throws -> [StepRecord] { try await base.steps(run: run) }
    public func recordApproval(_ approval: ApprovalRecord) async throws { try await base.recordApproval(approval) }
    public func approvals(run: Int64) async throws -> [ApprovalRecord] { try await base.approvals(run: run) }
    public func recordProbeResults(run: Int64, _ results: [ProbeRecord]) async throws {
        try await base.recordProbeResults(run: run, results)
    }
    public func probeResults(run: Int64) async throws -> [ProbeRecord] { try await base.probeResults(run: run) }
    public func acquireLeases(_ keys: [String], run: Int64, owner: String, ttl: Duration) async throws -> LeaseOutcome {
        try await base.acquireLeases(keys, run: run, owner: owner, ttl: ttl)
    }
    public func releaseLeases(run: Int64) async throws { try await base.releaseLeases(run: run) }
    public func leases() async throws -> [LeaseRecord] { try await base.leases() }
    public func campaign(for name: String, holder: String, ttl: Duration) async throws -> LeaderLease {
        try await base.campaign(for: name, holder: holder, ttl: ttl)
    }
    public func resign(_ name: String, holder: String) async throws { try await base.resign(name, holder: holder) }
    public func putRecord(instance: String, key: String, value: String) async throws {
        try await base.putRecord(instance: instance, key: key, value: value)
    }
    public func records(instance: String, prefix: String) async throws -> [ProviderRecord] {
        try await base.records(instance: instance, prefix: prefix)
    }
    public func removeRecord(instance: String, key: String) async throws { try await base.removeRecord(instance: instance, key: key) }
    public func claimFiring(_ firing: FiringRecord) async throws -> Bool { try await base.claimFiring(firing) }
    public func updateFiring(_ firing: FiringRecord) async throws { try await base.updateFiring(firing) }
    public func firings(instance: String, schedule: String?, statuses: Set<FiringStatus>?, limit: Int) async throws -> [FiringRecord] {
        try await base.firings(instance: instance, schedule: schedule, statuses: statuses, limit: limit)
    }
    public func claimResumableRun(instance: String, owner: String, ttl: Duration) async throws -> RunRecord? {
        try await base.claimResumableRun(instance: instance, owner: owner, ttl: ttl)
    }
}
