import ConvergeCore
import ConvergeStore
import Foundation

extension WorkflowEngine {
    /// One run at a time per resource: waits for leases other runs hold, up to the timeout.
    func acquireLeases(for run: RunRecord, plan: Plan, ttl: Duration, timeout: Double) async throws {
        // A concurrent action's leases name its plan too, so runs beside it do not wait for it.
        let suffix = plan.concurrent ? "@\(plan.digest)" : ""
        let keys = [runLeaseKey(run.id)] + Set(plan.changes.map { "\(run.instance)/\($0.resource)\(suffix)" }).sorted()
        let deadline = clock.now.addingTimeInterval(timeout)
        var announced = false
        while true {
            switch try await store.acquireLeases(keys, run: run.id, owner: owner, ttl: ttl) {
            case .acquired:
                return
            case .held(let lease):
                if clock.now >= deadline {
                    let error = WorkflowError.resourcesHeld(lease)
                    try await store.updateRun(run.id, status: .failed, error: String(describing: error), finished: true)
                    throw error
                }
                if !announced {
                    events(.waitingForLease(lease))
                    announced = true
                }
                try await clock.sleep(for: .milliseconds(250))
            }
        }
    }

    /// Runs `body` while a child task renews the run's leases every third of `ttl`.
    ///
    /// When a renewal fails (the store failed, or says the leases expired or passed to another
    /// owner), `body` is cancelled: it starts nothing more and records nothing about the run,
    /// whose leases are left to expire, and the renewal's error is thrown. The run stays as it
    /// was (`running` or `rolling_back`), for another process to resume. Should `body` have
    /// finished just before, its outcome stands.
    func holdingLeases(of run: Int64, ttl: Duration, _ body: @escaping @Sendable () async throws -> Void) async throws {
        enum Outcome: Sendable {
            case renewalFailed(any Error)
            case finished(Result<Void, any Error>)
        }
        let outcome = await withTaskGroup(of: Outcome.self) { group in
            group.addTask {
                do {
                    try await self.keepLeases(of: run, ttl: ttl)
                    return .renewalFailed(CancellationError())
                } catch {
                    return .renewalFailed(error)
                }
            }
            group.addTask {
                do {
                    try await body()
                    return .finished(.success(()))
                } catch {
                    return .finished(.failure(error))
                }
            }
            let first = await group.next()
            group.cancelAll()
            guard case .renewalFailed(let error) = first else { return first }
            if case .finished(.success) = await group.next() { return .finished(.success(())) }
            return .renewalFailed(error)
        }
        switch outcome {
        case .finished(let result): try result.get()
        case .renewalFailed(let error): throw error
        case nil: throw CancellationError()
        }
    }

    /// Renews the run's leases every third of `ttl`, until cancelled or until a renewal fails.
    private func keepLeases(of run: Int64, ttl: Duration) async throws {
        while true {
            try await clock.sleep(for: ttl / 3)
            let held: Bool
            do {
                held = try await store.renewLeases(run: run, owner: owner, ttl: ttl)
            } catch {
                try Task.checkCancellation()
                throw WorkflowError.leaseRenewalFailed(run, String(describing: error))
            }
            guard held else { throw WorkflowError.leaseLost(run) }
        }
    }

    /// Releases, once per run, the leases held by processes `liveness` knows to be gone;
    /// returns the leases still live.
    @discardableResult
    func releaseLeasesOfGoneProcesses() async throws -> [LeaseRecord] {
        var gone: [String: Bool] = [:]
        var deadRuns: Set<Int64> = []
        let leases = try await store.leases()
        for lease in leases where lease.owner != owner {
            let isGone = gone[lease.owner] ?? liveness.isGone(lease.owner)
            gone[lease.owner] = isGone
            if isGone { deadRuns.insert(lease.runID) }
        }
        for run in deadRuns.sorted() { try await store.releaseLeases(run: run) }
        return leases.filter { !deadRuns.contains($0.runID) }
    }
}
