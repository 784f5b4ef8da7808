import ConvergeCore
import ConvergeStore
import ConvergeWorkflow
import Foundation
import Synchronization

/// `converge worker`: claims the jobs of its pool from the store's queue and runs them with the
/// same providers as the engine, where the targets are.
///
/// Liveness: every claim has a lease (`lease`, 15 s) that the heartbeat renews every
/// `heartbeatInterval`; a worker that stops renewing loses its jobs when the lease runs out and
/// another takes them over. Every write carries the claim's attempt (its fencing token), so a
/// worker that lost a job cannot record its outcome. Idle, it waits for the queue's
/// notification, and polls every `pollInterval` in case one was missed.
public struct Worker: Sendable {
    public var queue: any StepQueue
    /// Plans and runs one step of a run (`WorkflowEngine.work`); its store is `queue`.
    public var engine: WorkflowEngine
    public var registration: WorkerRegistration
    public var keys: JobVerificationKeys
    public var lease: Duration = .seconds(15)
    public var heartbeatInterval: Duration = .seconds(3)
    public var pollInterval: Duration = .seconds(1)
    /// One line per job: claimed, done, refused, lost.
    public var log: @Sendable (String) -> Void
    /// Each run's plan with its targets observed, shared by the run's jobs for a while: the
    /// engine, too, observes once per run, and observing for every step would cost a full
    /// listing of the run's targets per step.
    private let plans = PlanCache()

    public init(
        queue: any StepQueue, engine: WorkflowEngine, registration: WorkerRegistration, keys: JobVerificationKeys,
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.queue = queue
        self.engine = engine
        self.registration = registration
        self.keys = keys
        self.log = log
    }

    /// Works until cancelled, then deregisters (its jobs go back to the queue at once).
    public func run() async throws {
        try await queue.registerWorker(registration)
        let wakeup = WakeupBell()
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await heartbeats() }
                group.addTask {
                    try await queue.withQueueNotifications { notifications in
                        let mine = StepQueueChannel.queued(pool: registration.pool)
                        for await payload in notifications where payload == mine { wakeup.ring() }
                    }
                }
                group.addTask { try await claimLoop(wakeup) }
                try await group.next()
                group.cancelAll()
            }
        } catch {
            try? await queue.deregisterWorker(registration.id)
            throw error
        }
        try? await queue.deregisterWorker(registration.id)
    }

    private func heartbeats() async throws {
        while true {
            try await Task.sleep(for: heartbeatInterval)
            do {
                _ = try await queue.heartbeat(worker: registration.id, lease: lease)
            } catch {
                // The store is away: the jobs' leases run out, and they are taken over.
                log("heartbeat failed: \(error)")
            }
        }
    }

    private func claimLoop(_ wakeup: WakeupBell) async throws {
        let running = JobCount()
        await withDiscardingTaskGroup { jobs in
            while !Task.isCancelled {
                let free = registration.concurrency - running.value
                var claimed: [StepJobRecord] = []
                if free > 0 {
                    do {
                        claimed = try await queue.claim(
                            pool: registration.pool, worker: registration.id, version: registration.version,
                            planFormat: registration.planFormat, limit: free, lease: lease)
                    } catch {
                        log("claim failed: \(error)")
                    }
                }
                for job in claimed {
                    running.add(1)
                    jobs.addTask {
                        await handle(job)
                        running.add(-1)
                        wakeup.ring()
                    }
                }
                // Woken at once by a job queued for the pool or a slot freed meanwhile.
                await wakeup.wait(timeout: pollInterval)
            }
        }
    }

    /// Checks the job's envelope, runs it, records its outcome under its claim.
    func handle(_ job: StepJobRecord) async {
        log("claimed job \(job.id): \(job.kind.rawValue) step \(job.stepIndex) of run \(job.runID) (claim \(job.attempt))")
        let outcome: StepJobOutcome
        do {
            let run = try await checked(job)
            let planned = try await plans.plannedChange(of: run, using: engine)
            let queue = self.queue
            let report = try await engine.work(
                job.kind, step: job.stepIndex, of: run, planned: planned, snapshot: job.snapshot,
                keep: { try await queue.recordJobSnapshot(job: job.id, attempt: job.attempt, snapshot: $0) })
            outcome = StepJobOutcome(succeeded: true, report: report)
        } catch let error as StoreError where error.code == .staleClaim {
            log("job \(job.id) was taken over by another worker: \(error)")
            return
        } catch let refusal as JobRefusal {
            log("refused job \(job.id): \(refusal.reason)")
            outcome = StepJobOutcome(succeeded: false, error: refusal.description)
        } catch {
            outcome = StepJobOutcome(succeeded: false, error: String(describing: error))
        }
        do {
            try await queue.complete(job: job.id, attempt: job.attempt, outcome: outcome)
            log("job \(job.id) \(outcome.succeeded ? "succeeded" : "failed")")
        } catch {
            log("job \(job.id): its outcome was not recorded: \(error)")
        }
    }

    /// The job's run, once its envelope is proven: signed by a trusted key, valid now, for this
    /// very job, never used by another, and over the plan and files the run holds now.
    func checked(_ job: StepJobRecord) async throws -> RunRecord {
        guard let signed = try? SignedEnvelope.decoder.decode(SignedEnvelope.self, from: Data(job.envelope.utf8)) else {
            throw JobRefusal("the job carries no signed envelope")
        }
        let envelope = try keys.open(signed)
        let now = Date()
        if now < envelope.notBefore.addingTimeInterval(-JobEnvelope.clockSkew) {
            throw JobRefusal("the envelope is not valid before \(envelope.notBefore) (the worker's clock says \(now))")
        }
        if now > envelope.expiresAt.addingTimeInterval(JobEnvelope.clockSkew) {
            throw JobRefusal("the envelope expired at \(envelope.expiresAt)")
        }
        guard envelope.run == job.runID, envelope.step == job.stepIndex, envelope.kind == job.kind, envelope.pool == job.pool else {
            throw JobRefusal(
                "the envelope is for \(envelope.kind.rawValue) of step \(envelope.step) of run \(envelope.run) in pool \(envelope.pool), "
                    + "not for this job")
        }
        guard try await queue.useNonce(envelope.nonce, job: job.id) else {
            throw JobRefusal("the envelope's nonce was already used by another job (a replayed envelope)")
        }
        guard let run = try await queue.run(job.runID) else { throw JobRefusal("run \(job.runID) does not exist") }
        let plan = try JSONDecoder().decode(Plan.self, from: Data(run.planJSON.utf8))
        guard run.planDigest == envelope.planDigest, plan.digest == envelope.planDigest else {
            throw JobRefusal("the run's plan (\(plan.digest)) is not the one signed (\(envelope.planDigest))")
        }
        let files = try JobEnvelope.pinnedFiles(job.kind, of: run)
        for file in files where envelope.files[file.path] != sha256Hex(file.bytes) {
            throw JobRefusal(
                envelope.files[file.path] == nil
                    ? "\(file.path) was added to the run after its jobs were signed" : "\(file.path) changed after the job was signed")
        }
        if let missing = Set(envelope.files.keys).subtracting(files.map(\.path)).sorted().first {
            throw JobRefusal("\(missing) was removed from the run after the job was signed")
        }
        if envelope.snapshotDigest != job.snapshot.map({ sha256Hex(Array($0.utf8)) }), job.kind == .compensate {
            throw JobRefusal("the snapshot to undo from is not the one signed")
        }
        return run
    }
}

/// The jobs a worker is running.
final class JobCount: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    func add(_ delta: Int) { count.withLock { $0 += delta } }
}

/// Wakes the claim loop: a job queued for its pool, a slot freed. Rings are not counted: one
/// wake-up claims everything there is.
final class WakeupBell: Sendable {
    private let state = Mutex<(rung: Bool, waiter: Wakeup?)>((false, nil))

    func ring() {
        let waiter = state.withLock { state -> Wakeup? in
            state.rung = true
            return state.waiter
        }
        waiter?.signal()
    }

    func wait(timeout: Duration) async {
        let wakeup = Wakeup()
        let rung = state.withLock { state -> Bool in
            if state.rung {
                state.rung = false
                return true
            }
            state.waiter = wakeup
            return false
        }
        guard !rung else { return }
        await wakeup.wait(timeout: timeout)
        // A ring stays rung until a wait consumes it: one that came while this wait was ending
        // is not lost (at worst the next wait returns at once).
        state.withLock { $0.waiter = nil }
    }
}

/// Runs' plans with their observations, kept `lifetime` (30 s) after they were made; the
/// loads of one run's concurrent jobs are one.
actor PlanCache {
    private var entries: [Int64: (made: ContinuousClock.Instant, plan: Task<Reconciler.PlannedChange, any Error>)] = [:]
    let lifetime: Duration = .seconds(30)

    func plannedChange(of run: RunRecord, using engine: WorkflowEngine) async throws -> Reconciler.PlannedChange {
        let now = ContinuousClock.now
        entries = entries.filter { now - $0.value.made < lifetime }
        if let entry = entries[run.id] { return try await entry.plan.value }
        let loading = Task { try await engine.plannedChange(of: run) }
        entries[run.id] = (now, loading)
        do {
            return try await loading.value
        } catch {
            entries[run.id] = nil
            throw error
        }
    }
}
