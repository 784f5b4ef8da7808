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
    /// Sends the steps of targets served by workers to their pool's queue; none runs every
    /// step in this process.
    public var dispatcher: (any StepDispatcher)?

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

    func reconciler(for set: ManifestSet, instance: String) throws -> Reconciler {
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
            let reason = "a newer plan (\(plan.digest)) replaced it"
            if try await !store.steps(run: waiting.id).isEmpty {
                // Waiting part-way (a rollout before its switch): what it did so far is undone.
                _ = try await rollBack(waiting, because: reason)
                continue
            }
            try await store.updateRun(waiting.id, status: .superseded, error: reason, finished: true)
        }
        let run = try await store.createRun(
            NewRun(
                instance: instance, repository: plan.source.repository, commit: plan.source.commit,
                planDigest: plan.digest, planJSON: try Self.encode(plan),
                status: plan.startApprovals.isEmpty ? .pending : .awaitingApproval,
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
    func replan(_ run: RunRecord) async throws -> Reconciler.PlannedChange {
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
        let gate = try await pendingGate(of: run, plan: plan)
        for approval in approvals {
            try await store.recordApproval(
                ApprovalRecord(
                    runID: id, planDigest: run.planDigest, decision: .approved, approver: approval.approver, comment: approval.comment,
                    at: clock.now, via: approval.via, step: gate))
        }
        if gate != nil {
            // Part-way: the run goes on with its own plan, the steps it already took included.
            return try await drive(run, planned: try await replan(run), options: try Self.decode(WorkflowOptions.self, run.optionsJSON))
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
        let plan = try Self.decode(Plan.self, run.planJSON)
        let requirements = try await pendingGate(of: run, plan: plan).flatMap { plan.stepApprovals[$0] } ?? plan.startApprovals
        // A policy that names no approvers lets anyone approve.
        let allowed = requirements.contains(where: \.approvers.isEmpty) ? [] : Set(requirements.flatMap(\.approvers))
        for approval in approvals where !allowed.isEmpty && !allowed.contains(approval.approvesAs) {
            throw WorkflowError.notAnApprover(approval.approver, allowed: allowed.sorted())
        }
        return run
    }

    /// Refuses a waiting run. One waiting part-way is rolled back: what it did is undone.
    public func reject(_ id: Int64, approver: String, comment: String) async throws -> RunRecord {
        let run = try await waitingRun(id)
        let gate = try await pendingGate(of: run, plan: try Self.decode(Plan.self, run.planJSON))
        try await store.recordApproval(
            ApprovalRecord(
                runID: id, planDigest: run.planDigest, decision: .rejected, approver: approver, comment: comment, at: clock.now, step: gate)
        )
        let reason = "rejected by \(approver)" + (comment.isEmpty ? "" : ": \(comment)")
        if gate != nil { return try await rollBack(run, because: reason) }
        try await store.updateRun(id, status: .rejected, error: reason, finished: true)
        return try await existingRun(id)
    }

    /// The step identifying the approval a waiting run waits for part-way, or nil when it
    /// waits for the approval of its whole plan.
    private func pendingGate(of run: RunRecord, plan: Plan) async throws -> Int? {
        let gates = plan.stepApprovals.keys.sorted()
        guard !gates.isEmpty else { return nil }
        let approved = try await store.approvals(run: run.id).filter { $0.decision == .approved }
        if !plan.startApprovals.isEmpty, !approved.contains(where: { $0.step == nil }) { return nil }
        return gates.first { gate in !approved.contains { $0.step == gate } }
    }

    /// Rolls back a run that waits part-way (superseded, rejected): its steps so far are undone.
    private func rollBack(_ run: RunRecord, because reason: String) async throws -> RunRecord {
        try await store.updateRun(run.id, status: .rollingBack, error: reason, finished: false)
        var rolling = run
        rolling.status = .rollingBack
        return try await drive(rolling, planned: try await replan(run), options: try Self.decode(WorkflowOptions.self, run.optionsJSON))
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
        } catch let waiting as WorkflowError where waiting.code == .awaitingStepApproval {
            try await store.releaseLeases(run: run.id)
            try await store.updateRun(run.id, status: .awaitingApproval, error: nil, finished: false)
            events(.awaitingStepApproval(run.id, message: waiting.message))
            return try await existingRun(run.id)
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
                let plan = planned.plan
                let approvedGates = Set(try await store.approvals(run: run.id).filter { $0.decision == .approved }.compactMap(\.step))
                try await PlanExecutor(parallelism: parallelism).run(
                    plan, alreadyDone: done, continuingAfterFailure: { Self.continues($0, in: plan, after: $1, finished: $2) }
                ) { step in
                    // Stopped (the leases could not be renewed): another process may be driving
                    // the run by now, and starting more steps here would run them twice.
                    try Task.checkCancellation()
                    try self.passGate(run.id)
                    if let held = plan.approvals.first(where: { $0.beforeSteps.contains(step.index) }), let gate = held.gate,
                        !approvedGates.contains(gate)
                    {
                        let policies = plan.stepApprovals[gate]?.map(\.policy) ?? []
                        throw RunStop(underlying: WorkflowError.awaitingStepApproval(run.id, step: gate, policies: policies))
                    }
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
    /// could not be renewed), a fault hook's error, a closed gate, and a step held back for an
    /// approval (unless another step failed for good: the run then rolls back instead).
    private static func rethrowIfStopped(_ error: any Error) throws {
        if Task.isCancelled { throw CancellationError() }
        if let stop = error as? RunStop { throw stop.underlying }
        guard let execution = error as? PlanExecutionError else { return }
        let stops = execution.failures.compactMap { $0.underlying as? RunStop }
        let waits = stops.filter { ($0.underlying as? WorkflowError)?.code == .awaitingStepApproval }
        if let stop = stops.first(where: { ($0.underlying as? WorkflowError)?.code != .awaitingStepApproval }) { throw stop.underlying }
        if let wait = waits.first, waits.count == execution.failures.count { throw wait.underlying }
    }

    /// Whether `candidate` may still start after `failures`: only a phase of a change already
    /// under way in another unit than the failed ones (a pipeline's other rollout of the same
    /// wave finishes rather than stop half-switched), and only when every failure is a step's
    /// own, in a unit: never after a stop (a crash, a closed gate, a held step).
    static func continues(
        _ candidate: PlanStep, in plan: Plan, after failures: [PlanExecutionError.Failure], finished: Set<Int>
    ) -> Bool {
        guard candidate.phase != nil, let unit = candidate.unit,
            failures.allSatisfy({ $0.step.unit != nil && $0.step.unit != unit && !($0.underlying is RunStop) })
        else {
            return false
        }
        return plan.steps.contains { $0.resource == candidate.resource && finished.contains($0.index) }
    }

    /// One step: journal it (with its snapshot) before it acts, run it with retries, journal
    /// the outcome.
    private func runStep(
        _ step: PlanStep, of run: RunRecord, planned: Reconciler.PlannedChange, reconciler: Reconciler, journaled: StepRecord?,
        retry: RetryPolicy
    ) async throws {
        if let dispatcher, let pool = try await dispatcher.pool(of: step, in: planned) {
            try await runRemotely(step, of: run, on: pool, through: dispatcher, journaled: journaled)
            return
        }
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
            let events = self.events
            let reporter = StepReporter(progress: { events(.stepProgress(step, $0)) })
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

    /// One step run by a worker of `pool`: journaled as running, then with the worker's
    /// outcome (its snapshot, report, name and version). The worker retries what may pass.
    private func runRemotely(
        _ step: PlanStep, of run: RunRecord, on pool: String, through dispatcher: any StepDispatcher, journaled: StepRecord?
    ) async throws {
        var record = StepRecord(
            runID: run.id, index: step.index, resource: step.resource.description, action: step.action.rawValue,
            status: .running, attempts: (journaled?.attempts ?? 0) + 1, startedAt: clock.now, finishedAt: nil,
            output: journaled?.output, error: nil, convergeVersion: version)
        try await store.recordStep(record)
        events(.stepStarted(step, attempt: record.attempts))
        let started = ContinuousClock.now
        try await fault(.beforeStep, step)
        let outcome = try await dispatcher.dispatch(.execute, step: step, of: run, pool: pool, snapshot: nil)
        record.output = outcome.snapshot
        record.report = outcome.report
        record.worker = outcome.worker
        record.convergeVersion = outcome.workerVersion
        record.attempts = max(record.attempts, outcome.claims)
        record.finishedAt = clock.now
        try Task.checkCancellation()
        guard outcome.succeeded else {
            record.status = .failed
            record.error = outcome.error
            try await store.recordStep(record)
            events(.stepFailed(step, error: outcome.error ?? ""))
            throw DispatchedStepError(worker: outcome.worker, message: outcome.error ?? "the step failed")
        }
        record.status = .succeeded
        try await store.recordStep(record)
        events(.stepFinished(step, duration: ContinuousClock.now - started))
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
        let steps = planned.plan.steps
        // When every failed step belongs to a unit, only those units roll back.
        let touched = journal.filter { [.failed, .running, .compensated, .compensationFailed].contains($0.status) }.map { steps[$0.index] }
        let failedUnits = Set(touched.compactMap(\.unit))
        let scoped = !touched.isEmpty && touched.allSatisfy { $0.unit != nil }
        var failures: [String] = []
        for var record in journal where [.succeeded, .failed, .running, .compensationFailed].contains(record.status) {
            let step = steps[record.index]
            if scoped, !failedUnits.contains(step.unit ?? "") { continue }
            try Task.checkCancellation()
            if let reason = gate?.closedReason() { throw WorkflowError.halted(run.id, reason: reason) }
            events(.compensating(step))
            let reporter = StepReporter()
            do {
                if let dispatcher, let pool = try await dispatcher.pool(of: step, in: planned) {
                    let outcome = try await dispatcher.dispatch(.compensate, step: step, of: run, pool: pool, snapshot: record.output)
                    guard outcome.succeeded else {
                        throw DispatchedStepError(worker: outcome.worker, message: outcome.error ?? "it failed")
                    }
                    if let report = outcome.report { reporter.report(report) }
                } else {
                    try await StepReporter.$current.withValue(reporter) {
                        try await reconciler.provider(for: step.resource, in: planned).compensate(
                            step, snapshot: record.output, instance: run.instance)
                    }
                }
                record.report = Self.report(record.report, undoneWith: reporter.reported)
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
        let kept = Set(
            journal.filter { $0.status == .succeeded && !failedUnits.contains(steps[$0.index].unit ?? "") }.map { steps[$0.index].resource }
        )
        if failures.isEmpty, scoped, !kept.isEmpty {
            // Part of the run stays applied: it did not roll back as a whole.
            let summary =
                "rolled back: \(failedUnits.sorted().joined(separator: ", ")); kept: \(kept.sorted().map(\.description).joined(separator: ", "))"
            try await store.updateRun(run.id, status: .failed, error: "\(cause)\n\(summary)", finished: true)
        } else if failures.isEmpty {
            try await store.updateRun(run.id, status: .rolledBack, error: cause, finished: true)
        } else {
            try await store.updateRun(
                run.id, status: .rollbackFailed, error: ([cause] + failures.map { "rollback: \($0)" }).joined(separator: "\n"),
                finished: true)
        }
    }

    /// The step's report with what its compensation reported added under `compensation`.
    static func report(_ report: String?, undoneWith compensation: String?) -> String? {
        guard let compensation, let undone = try? JSONValue.parse(Array(compensation.utf8)) else { return report }
        var fields = report.flatMap { try? JSONValue.parse(Array($0.utf8)) }?.objectFields ?? [:]
        fields["compensation"] = undone
        return JSONValue.object(fields).serialized
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
    /// What a running step says about its progress (an image pull's bytes).
    case stepProgress(PlanStep, String)
    case stepFinished(PlanStep, duration: Duration)
    case stepFailed(PlanStep, error: String)
    case compensating(PlanStep)
    case compensated(PlanStep)
    case compensationFailed(PlanStep, error: String)
    case waitingForLease(LeaseRecord)
    /// The run stopped before a step held back for an approval.
    case awaitingStepApproval(Int64, message: String)
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
