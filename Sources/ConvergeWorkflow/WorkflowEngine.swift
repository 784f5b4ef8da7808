import ConvergeCore
import ConvergeStore
import Foundation

/// Runs plans as durable workflows over a `WorkflowStore`.
///
/// Like DBOS on Postgres: a run row holds the plan (and the manifests it came from); a step
/// row is written before a step changes anything (with the snapshot its compensation needs)
/// and again when it finishes. A process killed at any point leaves a journal from which any
/// other process resumes: finished steps are skipped, a step cut off mid-flight runs again
/// (steps are idempotent). A step that fails for good triggers the compensations of every
/// step that may have changed something, in reverse order (saga).
public struct WorkflowEngine: Sendable {
    public typealias ProviderFactory = @Sendable (ManifestSet) throws -> [ResourceID: any Provider]

    public var store: any WorkflowStore
    /// The Converge instance whose runs this engine starts and resumes.
    public var instance: String
    /// The kinds a journaled run's manifests are decoded with when it is resumed or approved:
    /// the process's own, so a run made with a plug-in is reloaded with it.
    public var registry: KindRegistry
    /// Makes the providers for a run's manifest set (a resumed run brings its own set).
    public var makeProviders: ProviderFactory
    /// `host:pid`, written on leases so a holder can be named and a dead one recognised.
    public var owner: String
    public var version: String
    public var parallelism: Int
    public var events: @Sendable (WorkflowEvent) -> Void
    /// Checks run once a run has ended (the set's probes); their results go into its report.
    public var verify: @Sendable (ManifestSet) async -> [ProbeRecord]
    /// Decides when leases expire, how long retries back off and how often leases are renewed.
    public var clock: any WorkflowClock = SystemClock()
    /// Recognises lease holders whose process is gone, so their runs resume without waiting.
    public var liveness: ProcessLiveness = .thisHost
    /// Called at each step's boundaries, for crash and concurrency tests; none in normal use.
    public var faults: FaultHook?
    /// Checked before each step and each compensation; none lets every step start.
    public var gate: StepGate?

    public init(
        store: any WorkflowStore, registry: KindRegistry, instance: String, version: String, parallelism: Int = 8,
        owner: String = WorkflowEngine.processOwner, events: @escaping @Sendable (WorkflowEvent) -> Void = { _ in },
        verify: @escaping @Sendable (ManifestSet) async -> [ProbeRecord] = { _ in [] },
        makeProviders: @escaping ProviderFactory
    ) {
        self.store = store
        self.registry = registry
        self.instance = instance
        self.makeProviders = makeProviders
        self.owner = owner
        self.version = version
        self.parallelism = parallelism
        self.events = events
        self.verify = verify
    }

    public static var processOwner: String {
        "\(ProcessInfo.processInfo.hostName):\(getpid())"
    }

    /// Observes and plans `set` with this engine's providers.
    public func plan(_ set: ManifestSet, source: SourceRevision) async throws -> Reconciler.PlannedChange {
        try await reconciler(for: set, instance: instance).plan(set, source: source)
    }

    private func reconciler(for set: ManifestSet, instance: String) throws -> Reconciler {
        Reconciler(providers: try makeProviders(set), instance: instance)
    }

    // MARK: Starting

    /// Records a run for a freshly computed plan and drives it, unless it must wait for an
    /// approval. A run already waiting with the same plan is returned instead of a second
    /// one; a run waiting with another plan is superseded (its approval would be stale).
    public func start(_ planned: Reconciler.PlannedChange, manifests: [SourceFile], options: WorkflowOptions) async throws -> RunRecord {
        let plan = planned.plan
        for waiting in try await store.runs(RunFilter(statuses: [.awaitingApproval], instance: instance)) {
            if waiting.planDigest == plan.digest { return waiting }
            // Actions (on demand, scheduled) wait beside the plans of the differences.
            guard plan.action == nil, (try? Self.decode(Plan.self, waiting.planJSON))?.action == nil else { continue }
            try await store.updateRun(waiting.id, status: .superseded, error: "a newer plan (\(plan.digest)) replaced it", finished: true)
        }
        let run = try await store.createRun(
            NewRun(
                instance: instance, repository: plan.source.repository, commit: plan.source.commit,
                planDigest: plan.digest, planJSON: try Self.encode(plan),
                status: plan.approvals.isEmpty ? .pending : .awaitingApproval,
                executor: owner, convergeVersion: version, optionsJSON: try Self.encode(options),
                manifestsJSON: try ManifestArchive.encode(manifests, repositoryFiles: planned.desired.repositoryFiles)))
        events(.runStarted(run.id))
        if run.status == .awaitingApproval { return run }
        return try await drive(run, planned: planned, options: options)
    }

    // MARK: Resuming

    /// Continues run `id` where it stopped. Refused while another live process drives it.
    public func resume(_ id: Int64) async throws -> RunRecord {
        let run = try await existingRun(id)
        if run.status.isFinal { return run }
        if run.status == .awaitingApproval {
            throw WorkflowError.awaitingApproval(run.id)
        }
        let live = try await releaseLeasesOfGoneProcesses()
        if let holder = live.first(where: { $0.runID == id && $0.owner != owner && $0.expiresAt > clock.now }) {
            throw WorkflowError.resourcesHeld(holder)
        }
        return try await drive(run, planned: try await replan(run), options: try Self.decode(WorkflowOptions.self, run.optionsJSON))
    }

    /// Resumes every run of this instance whose driving process is gone: its leases expired,
    /// or `liveness` knows its process no longer exists.
    public func resumeInterrupted() async throws -> [RunRecord] {
        try await releaseLeasesOfGoneProcesses()
        var resumed: [RunRecord] = []
        while let run = try await store.claimResumableRun(instance: instance, owner: owner, ttl: .seconds(30)) {
            events(.resuming(run.id))
            resumed.append(
                try await drive(run, planned: try await replan(run), options: try Self.decode(WorkflowOptions.self, run.optionsJSON)))
        }
        return resumed
    }

    /// The run's own plan and manifests, with the live state observed now.
    private func replan(_ run: RunRecord) async throws -> Reconciler.PlannedChange {
        let plan = try Self.decode(Plan.self, run.planJSON)
        let set = try archivedSet(of: run)
        return try await reconciler(for: set, instance: run.instance).resume(plan, desired: set)
    }

    /// The desired state a run started from: its journaled manifests, and the files beside
    /// them it used, whatever the source holds by now.
    private func archivedSet(of run: RunRecord) throws -> ManifestSet {
        let archive = try ManifestArchive.decode(run.manifestsJSON)
        let base = RepositoryFiles.base(ofSourcePath: try Self.decode(Plan.self, run.planJSON).source.path)
        return try ManifestSet.load(archive.manifests, registry: registry, repository: .archived(archive.repositoryFiles, base: base))
    }

    // MARK: Approvals

    /// Records an approval and runs the plan, provided it is still the plan that was
    /// reviewed: `digest` (when the approver gives it) must be the run's, and the live state
    /// must still produce that same plan.
    public func approve(_ id: Int64, approver: String, comment: String, digest: String?) async throws -> RunRecord {
        try await approve(id, by: [Approval(approver: approver, comment: comment)], digest: digest)
    }

    /// Records `approvals` (one per policy, from a pull request) and runs the plan, on the
    /// same conditions as a single approval.
    public func approve(_ id: Int64, by approvals: [Approval], digest: String?) async throws -> RunRecord {
        let run = try await checkApproval(id, by: approvals, digest: digest)
        let plan = try Self.decode(Plan.self, run.planJSON)
        for approval in approvals {
            try await store.recordApproval(
                ApprovalRecord(
                    runID: id, planDigest: run.planDigest, decision: .approved, approver: approval.approver, comment: approval.comment,
                    at: clock.now, via: approval.via))
        }
        let set = try archivedSet(of: run)
        let fresh = try await reconciler(for: set, instance: run.instance).plan(set, source: plan.source)
        guard fresh.plan.digest == run.planDigest else {
            try await store.updateRun(
                id, status: .superseded, error: "the live state changed after the plan was made; its plan is now \(fresh.plan.digest)",
                finished: true)
            throw WorkflowError.planChanged(run: id, approved: run.planDigest, current: fresh.plan.digest)
        }
        return try await drive(run, planned: fresh, options: try Self.decode(WorkflowOptions.self, run.optionsJSON))
    }

    /// The waiting run `id`, when `approver` may approve it with `digest`: what `approve`
    /// checks before it records anything (front ends answer with it before queueing).
    public func checkApproval(_ id: Int64, approver: String, digest: String?) async throws -> RunRecord {
        try await checkApproval(id, by: [Approval(approver: approver, comment: "")], digest: digest)
    }

    /// The waiting run `id`, when each of `approvals` is by one of its policies' approvers.
    public func checkApproval(_ id: Int64, by approvals: [Approval], digest: String?) async throws -> RunRecord {
        let run = try await waitingRun(id)
        if let digest, digest != run.planDigest {
            throw WorkflowError.staleApproval(run: id, approved: digest, current: run.planDigest)
        }
        let requirements = try Self.decode(Plan.self, run.planJSON).approvals
        // A policy that names no approvers lets anyone approve.
        let allowed = requirements.contains(where: \.approvers.isEmpty) ? [] : Set(requirements.flatMap(\.approvers))
        for approval in approvals where !allowed.isEmpty && !allowed.contains(approval.approvesAs) {
            throw WorkflowError.notAnApprover(approval.approver, allowed: allowed.sorted())
        }
        return run
    }

    public func reject(_ id: Int64, approver: String, comment: String) async throws -> RunRecord {
        let run = try await waitingRun(id)
        try await store.recordApproval(
            ApprovalRecord(runID: id, planDigest: run.planDigest, decision: .rejected, approver: approver, comment: comment, at: clock.now))
        try await store.updateRun(
            id, status: .rejected, error: "rejected by \(approver)" + (comment.isEmpty ? "" : ": \(comment)"), finished: true)
        return try await existingRun(id)
    }

    private func existingRun(_ id: Int64) async throws -> RunRecord {
        guard let run = try await store.run(id) else { throw WorkflowError.noSuchRun(id) }
        return run
    }

    private func waitingRun(_ id: Int64) async throws -> RunRecord {
        let run = try await existingRun(id)
        guard run.status == .awaitingApproval else { throw WorkflowError.notAwaitingApproval(id, run.status) }
        return run
    }

    // MARK: Driving

    /// Drives the run to its end, then records what its probes find.
    private func drive(_ run: RunRecord, planned: Reconciler.PlannedChange, options: WorkflowOptions) async throws -> RunRecord {
        let finished = try await execute(run, planned: planned, options: options)
        let results = await verify(planned.desired)
        if !results.isEmpty {
            try await store.recordProbeResults(run: run.id, results)
            events(.probed(results))
        }
        return finished
    }

    /// Takes the run's leases, runs its remaining steps, and on a permanent failure rolls back.
    /// The leases are renewed all along; when that fails, the run stops where it is and stays
    /// resumable (`holdingLeases`).
    private func execute(_ run: RunRecord, planned: Reconciler.PlannedChange, options: WorkflowOptions) async throws -> RunRecord {
        let ttl = Duration.milliseconds(Int64(options.leaseSeconds * 1000))
        try await acquireLeases(for: run, plan: planned.plan, ttl: ttl, timeout: options.lockTimeoutSeconds)
        do {
            try await holdingLeases(of: run.id, ttl: ttl) {
                try await self.runSteps(of: run, planned: planned, options: options)
            }
        } catch let halted as WorkflowError where halted.code == .halted {
            // Stopped on purpose, with nothing in flight: the next process need not wait out the leases.
            try await store.releaseLeases(run: run.id)
            throw halted
        }
        try await store.releaseLeases(run: run.id)
        return try await existingRun(run.id)
    }

    /// Runs the steps not yet finished and records how the run ended: succeeded, failed, or
    /// rolled back. A stop (see `rethrowIfStopped`) records nothing.
    private func runSteps(of run: RunRecord, planned: Reconciler.PlannedChange, options: WorkflowOptions) async throws {
        let reconciler = try reconciler(for: planned.desired, instance: run.instance)
        let journal = Dictionary(uniqueKeysWithValues: try await store.steps(run: run.id).map { ($0.index, $0) })
        if run.status != .rollingBack {
            try await store.updateRun(run.id, status: .running, error: nil, finished: false)
            do {
                let done = Set(journal.values.filter { $0.status == .succeeded }.map(\.index))
                try await PlanExecutor(parallelism: parallelism).run(planned.plan, alreadyDone: done) { step in
                    // Stopped (the leases could not be renewed): another process may be driving
                    // the run by now, and starting more steps here would run them twice.
                    try Task.checkCancellation()
                    try self.passGate(run.id)
                    try await self.runStep(
                        step, of: run, planned: planned, reconciler: reconciler, journaled: journal[step.index], retry: options.retry)
                }
                try Task.checkCancellation()
                try await store.updateRun(run.id, status: .succeeded, error: nil, finished: true)
                return
            } catch {
                try Self.rethrowIfStopped(error)
                guard options.rollback else {
                    try await store.updateRun(run.id, status: .failed, error: String(describing: error), finished: true)
                    return
                }
                try await store.updateRun(run.id, status: .rollingBack, error: String(describing: error), finished: false)
            }
        }
        try await rollBack(run, planned: planned, reconciler: reconciler)
    }

    /// Rethrows what stops a run without ending it, so that it is neither rolled back nor
    /// marked failed and another process can resume it: the task's cancellation (its leases
    /// could not be renewed), a fault hook's error and a closed gate.
    private static func rethrowIfStopped(_ error: any Error) throws {
        if Task.isCancelled { throw CancellationError() }
        if let stop = error as? RunStop { throw stop.underlying }
        if let execution = error as? PlanExecutionError,
            let stop = execution.failures.lazy.compactMap({ $0.underlying as? RunStop }).first
        {
            throw stop.underlying
        }
    }

    /// One step: journal it (with its snapshot) before it acts, run it with retries, journal
    /// the outcome.
    private func runStep(
        _ step: PlanStep, of run: RunRecord, planned: Reconciler.PlannedChange, reconciler: Reconciler, journaled: StepRecord?,
        retry: RetryPolicy
    ) async throws {
        let provider = try reconciler.provider(for: step.resource, in: planned)
        // A step cut off mid-flight keeps the snapshot taken before it first acted: taking
        // it again now could record its own half-done change as the state to go back to.
        var snapshot = journaled?.output
        if journaled == nil {
            snapshot = try await provider.snapshot(
                step, observed: planned.observed[step.resource], in: planned.desired, instance: run.instance)
        }
        var record = StepRecord(
            runID: run.id, index: step.index, resource: step.resource.description, action: step.action.rawValue,
            status: .running, attempts: journaled?.attempts ?? 0, startedAt: clock.now, finishedAt: nil,
            output: snapshot, error: nil, convergeVersion: version)
        let timer = ContinuousClock()
        let started = timer.now
        while true {
            record.attempts += 1
            record.status = .running
            try await store.recordStep(record)
            events(.stepStarted(step, attempt: record.attempts))
            let reporter = StepReporter()
            do {
                try await fault(.beforeStep, step)
                try await StepReporter.$current.withValue(reporter) {
                    try await reconciler.execute(step, in: planned)
                }
                record.report = reporter.reported
                try await fault(.beforeJournal, step)
                // Stopped while the step acted (a provider may not heed cancellation): another
                // process may own the journal by now, so leave the step to be run again.
                try Task.checkCancellation()
                record.status = .succeeded
                record.error = nil
                record.finishedAt = clock.now
                try await store.recordStep(record)
                try await fault(.afterStep, step)
                events(.stepFinished(step, duration: timer.now - started))
                return
            } catch let stop as RunStop {
                throw stop
            } catch {
                // The run stopped: the step stays journaled as running, cut off mid-flight, and
                // the process that resumes the run runs it again.
                if Task.isCancelled { throw error }
                let transient = (error as? any TransientClassifying)?.isTransient ?? false
                record.error = String(describing: error)
                record.report = reporter.reported
                if transient, record.attempts < retry.maximumAttempts {
                    let delay = retry.delay(afterAttempt: record.attempts)
                    events(.stepRetrying(step, attempt: record.attempts, delaySeconds: delay, error: record.error ?? ""))
                    try await store.recordStep(record)
                    try await clock.sleep(for: .milliseconds(Int64(delay * 1000)))
                    continue
                }
                record.status = .failed
                record.finishedAt = clock.now
                try await store.recordStep(record)
                events(.stepFailed(step, error: record.error ?? ""))
                throw error
            }
        }
    }

    /// Throws `WorkflowError.halted`, as a `RunStop`, when the gate is closed.
    private func passGate(_ run: Int64) throws {
        if let reason = gate?.closedReason() { throw RunStop(underlying: WorkflowError.halted(run, reason: reason)) }
    }

    /// Calls the fault hook; its error becomes a `RunStop`, which stops the run.
    private func fault(_ point: FaultPoint, _ step: PlanStep) async throws {
        guard let faults else { return }
        do {
            try await faults(point, step)
        } catch {
            throw RunStop(underlying: error)
        }
    }

    /// Compensates, in reverse order, every step that may have changed something: finished
    /// ones, the one that failed (it may have half-made an object) and any cut off
    /// mid-flight. Each failure is recorded on its step; none stops the others. A stop (the
    /// leases could not be renewed) ends it between compensations, still `rolling_back`.
    private func rollBack(_ run: RunRecord, planned: Reconciler.PlannedChange, reconciler: Reconciler) async throws {
        let journal = try await store.steps(run: run.id).sorted { $0.index > $1.index }
        var failures: [String] = []
        for var record in journal where [.succeeded, .failed, .running, .compensationFailed].contains(record.status) {
            try Task.checkCancellation()
            if let reason = gate?.closedReason() { throw WorkflowError.halted(run.id, reason: reason) }
            let step = planned.plan.steps[record.index]
            events(.compensating(step))
            do {
                try await reconciler.provider(for: step.resource, in: planned).compensate(
                    step, snapshot: record.output, instance: run.instance)
                record.status = .compensated
                events(.compensated(step))
            } catch {
                if Task.isCancelled { throw error }
                record.status = .compensationFailed
                record.error = "compensation failed: \(error)"
                failures.append("\(step.action) \(step.resource): \(error)")
                events(.compensationFailed(step, error: String(describing: error)))
            }
            record.finishedAt = clock.now
            try await store.recordStep(record)
        }
        try Task.checkCancellation()
        let cause = try await existingRun(run.id).error ?? "a step failed"
        if failures.isEmpty {
            try await store.updateRun(run.id, status: .rolledBack, error: cause, finished: true)
        } else {
            try await store.updateRun(
                run.id, status: .rollbackFailed, error: ([cause] + failures.map { "rollback: \($0)" }).joined(separator: "\n"),
                finished: true)
        }
    }

    // MARK: Encoding

    static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(text.utf8))
        } catch {
            throw WorkflowError.corruptJournal("cannot read \(type) from the journal: \(error)")
        }
    }
}

/// What the engine reports while it works, for progress lines and logs.
public enum WorkflowEvent: Sendable {
    /// A run was recorded (it may wait for approval before its first step).
    case runStarted(Int64)
    case stepStarted(PlanStep, attempt: Int)
    case stepRetrying(PlanStep, attempt: Int, delaySeconds: Double, error: String)
    case stepFinished(PlanStep, duration: Duration)
    case stepFailed(PlanStep, error: String)
    case compensating(PlanStep)
    case compensated(PlanStep)
    case compensationFailed(PlanStep, error: String)
    case waitingForLease(LeaseRecord)
    case resuming(Int64)
    case probed([ProbeRecord])
}

/// One person's approval of a waiting run, as a front end hands it to the engine.
public struct Approval: Sendable, Equatable {
    public var approver: String
    /// The entry of the policy's `approvers` they approve as: their own name, or a team the
    /// front end (a forge) found them in.
    public var approvesAs: String
    public var comment: String
    /// Where it was given, when not to Converge directly (`GitHub review 8812 on acme/infra#42`).
    public var via: String?

    public init(approver: String, approvesAs: String? = nil, comment: String, via: String? = nil) {
        self.approver = approver
        self.approvesAs = approvesAs ?? approver
        self.comment = comment
        self.via = via
    }
}
