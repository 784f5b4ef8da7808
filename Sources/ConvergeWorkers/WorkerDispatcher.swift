import ConvergeCore
import ConvergeStore
import ConvergeWorkflow
import Foundation
import Synchronization

/// Sends the steps of targets served by workers to their pool's queue, signed, and waits for
/// their outcomes: the engine's side of `converge worker`.
///
/// A step goes to a worker when its target names a pool (it must then wait for that pool's
/// workers: the target may be reachable from nowhere else), or when workers serve the default
/// pool; otherwise it runs in the engine's process.
public final class WorkerDispatcher: StepDispatcher {
    /// The pool of targets that name none: the controller's own.
    public static let defaultPool = "default"
    /// Workers heard from within this long count as serving their pool.
    public static let liveWindow: TimeInterval = 30

    let queue: any StepQueue
    let signingKey: JobSigningKey
    /// How long a queued job stays valid: its envelope expires after.
    let validity: TimeInterval
    /// How often a waiting step looks at its job when no notification came.
    let pollInterval: Duration
    /// The pools live workers serve, and when that was read (a long-lived controller reads it
    /// again every `servedPoolsAge`).
    private let served = Mutex<(pools: Set<String>, readAt: Date)?>(nil)
    static let servedPoolsAge: TimeInterval = 10
    private let waiters = Waiters()
    private let digests = Mutex<[String: [String: String]]>([:])

    private init(queue: any StepQueue, signingKey: JobSigningKey, validity: TimeInterval, pollInterval: Duration) {
        self.queue = queue
        self.signingKey = signingKey
        self.validity = validity
        self.pollInterval = pollInterval
    }

    /// The pools whose workers were heard from lately.
    private func servedPools() async throws -> Set<String> {
        let now = Date()
        if let cached = served.withLock({ $0 }), now.timeIntervalSince(cached.readAt) < Self.servedPoolsAge { return cached.pools }
        let pools = Set(
            try await queue.workers().filter { $0.stoppedAt == nil && now.timeIntervalSince($0.heartbeatAt) < Self.liveWindow }
                .map(\.registration.pool))
        served.withLock { $0 = (pools, now) }
        return pools
    }

    /// Runs `body` with a dispatcher on `queue`, listening for finished jobs beside it (one
    /// connection for every waiting step).
    public static func withDispatcher<T: Sendable>(
        queue: any StepQueue, signingKey: JobSigningKey, validity: TimeInterval = 3600, pollInterval: Duration = .seconds(1),
        _ body: (WorkerDispatcher) async throws -> T
    ) async throws -> T {
        let dispatcher = WorkerDispatcher(queue: queue, signingKey: signingKey, validity: validity, pollInterval: pollInterval)
        return try await queue.withQueueNotifications { notifications in
            try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
                group.addTask {
                    for await payload in notifications where payload.hasPrefix(StepQueueChannel.donePrefix) {
                        if let id = Int64(payload.dropFirst(StepQueueChannel.donePrefix.count)) { dispatcher.waiters.wake(id) }
                    }
                }
                defer { group.cancelAll() }
                return try await body(dispatcher)
            }
        }
    }

    public func pool(of step: PlanStep, in planned: Reconciler.PlannedChange) async throws -> String? {
        guard let target = planned.target(of: step.resource) else { return nil }
        let pool = (planned.desired[target]?.spec as? any WorkerPoolTarget)?.pool ?? Self.defaultPool
        if pool != Self.defaultPool { return pool }
        return try await servedPools().contains(pool) ? pool : nil
    }

    public func dispatch(_ kind: StepJobKind, step: PlanStep, of run: RunRecord, pool: String, snapshot: String?) async throws
        -> DispatchedStep
    {
        let now = Date()
        var nonce = [UInt8](repeating: 0, count: 16)
        for index in nonce.indices { nonce[index] = UInt8.random(in: 0...255) }
        let files = try fileDigests(kind, of: run)
        let envelope = JobEnvelope(
            run: run.id, step: step.index, kind: kind, resource: step.resource.description,
            pool: pool, planDigest: run.planDigest, files: files, snapshotDigest: snapshot.map { sha256Hex(Array($0.utf8)) },
            notBefore: now, expiresAt: now.addingTimeInterval(validity), nonce: nonce.map { String(format: "%02x", $0) }.joined(),
            keyID: "")
        let signed = try signingKey.sign(envelope)
        let job = try await queue.enqueue(
            NewStepJob(
                runID: run.id, stepIndex: step.index, kind: kind, pool: pool, planFormat: Plan.formatVersion, envelope: signed.json,
                snapshot: snapshot))
        let done = try await finished(job.id)
        return DispatchedStep(
            succeeded: done.status == .succeeded, snapshot: kind == .execute ? done.snapshot : snapshot, report: done.report,
            error: done.error, worker: done.worker ?? "?", workerVersion: done.workerVersion ?? "?", claims: done.attempt)
    }

    /// The digests a job of `kind` pins, computed once per run and kind: a run's files do not
    /// change, and hashing them (a playbook's bundle) for each of its steps would be waste.
    private func fileDigests(_ kind: StepJobKind, of run: RunRecord) throws -> [String: String] {
        let key = "\(run.id)/\(kind.rawValue)"
        if let known = digests.withLock({ $0[key] }) { return known }
        let computed = Dictionary(
            try JobEnvelope.pinnedFiles(kind, of: run).map { ($0.path, sha256Hex($0.bytes)) }, uniquingKeysWith: { first, _ in first })
        digests.withLock { digests in
            // A controller lives long: keep the runs in flight, not every run it ever made.
            if digests.count >= 64 { digests.removeAll() }
            digests[key] = computed
        }
        return computed
    }

    /// Job `id` once it has finished: woken by its notification, looked at every `pollInterval`
    /// in case one was missed.
    private func finished(_ id: Int64) async throws -> StepJobRecord {
        while true {
            let wake = waiters.register(id)
            guard let job = try await queue.job(id) else {
                throw StoreError.database(operation: "wait for job \(id)", message: "the job is gone")
            }
            if job.status == .succeeded || job.status == .failed {
                waiters.cancel(id)
                return job
            }
            await wake.wait(timeout: pollInterval)
            waiters.cancel(id)
        }
    }
}

/// The steps waiting for their jobs, by job id; a notification wakes the one it names.
final class Waiters: Sendable {
    private let waiting = Mutex<[Int64: Wakeup]>([:])

    /// Registers a wake-up for job `id` before its status is read, so a notification sent in
    /// between is not lost.
    func register(_ id: Int64) -> Wakeup {
        waiting.withLock { waiting in
            if let wakeup = waiting[id] { return wakeup }
            let wakeup = Wakeup()
            waiting[id] = wakeup
            return wakeup
        }
    }

    func wake(_ id: Int64) {
        waiting.withLock { $0.removeValue(forKey: id) }?.signal()
    }

    func cancel(_ id: Int64) {
        waiting.withLock { _ = $0.removeValue(forKey: id) }
    }
}

/// A one-shot signal a task can wait for with a timeout.
final class Wakeup: Sendable {
    private let state = Mutex<(signalled: Bool, continuation: CheckedContinuation<Void, Never>?)>((false, nil))

    func signal() {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.signalled = true
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume()
    }

    /// Returns when signalled (at once if it already was), or after `timeout`.
    func wait(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let resumeNow = self.state.withLock { state -> Bool in
                        if state.signalled { return true }
                        state.continuation = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
            // The continuation must be resumed exactly once: a timeout resumes it here.
            self.signal()
            await group.waitForAll()
        }
    }
}
