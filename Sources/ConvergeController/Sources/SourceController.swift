import ConvergeCore
import ConvergeForge
import ConvergeRuntime
import ConvergeStore
import ConvergeWorkflow
import Foundation
import Logging
import Synchronization

/// Keeps one source applied: fetches its ref on every interval (with jitter) and whenever a
/// webhook or a person asks, and reconciles each fetch with the same tick as
/// `converge reconcile`. Everything that acts on the source (reconciles, approvals, the
/// snapshot retention pass) goes through one queue, so there is one run at a time per source.
///
/// Every replica fetches (its readiness and status need the revision); only the one the
/// gate lets through plans and applies.
public final class SourceController: Sendable {
    /// Why the source is looked at.
    enum Trigger: Sendable {
        case interval
        case webhook
        /// A person asked (`POST …/sources/{name}/reconcile`), or this replica became leader.
        case requested(String)
        case approve(ApprovalRequest)
        case retention
        /// A pull request of the source's forge was opened, pushed to, reviewed, commented
        /// on or merged.
        case pullRequest(PullRequestEvent)

        /// It fetches the source's ref and reconciles what it finds.
        var fetches: Bool {
            switch self {
            case .interval, .webhook, .requested: return true
            case .approve, .retention, .pullRequest: return false
            }
        }
    }

    struct ApprovalRequest: Sendable {
        var run: Int64
        var approver: String
        var comment: String
        var digest: String?
    }

    public let configuration: SourceConfiguration
    let runtime: Runtime
    let store: any WorkflowStore
    let gate: StepGate
    let metrics: ControllerMetrics
    let logger: Logger
    let options: WorkflowOptions
    private let parallelism: Int
    let gitCache: String
    /// Where the source's pull requests are planned and approved; nil without a forge.
    let desk: PullRequestDesk?
    private let faults: FaultHook?
    private let dispatcher: (any StepDispatcher)?
    /// Told the status after a reconcile or an approval changed it (a `ConvergeSource`'s
    /// status is written from it).
    private let statusChanged: (@Sendable (SourceStatus) async -> Void)?
    private let reported = Mutex<SourceStatus?>(nil)
    private let queue = AsyncStream<Trigger>.makeStream()
    /// A fetch (an interval tick, a webhook, a request) is queued and not yet taken: another
    /// one would fetch the same commit again, so it is dropped. A long run (a first apply of a
    /// thousand containers) is not followed by a string of ticks, and the start-up request and
    /// the leadership one become one reconcile.
    private let fetchQueued = Atomic<Bool>(false)
    /// The status, the last plan, and the manifest set decoded from the commit `setCommit`
    /// (with its files: what pull requests are compared with)
    /// (a commit's files never change, so drift checks on it skip decoding them again).
    /// The revision it was read at is what scheduled runs record.
    private let state:
        Mutex<(status: SourceStatus, plan: Plan?, set: ManifestSet?, setCommit: String?, files: [SourceFile], revision: SourceRevision?)>

    init(
        _ configuration: SourceConfiguration, runtime: Runtime, store: any WorkflowStore, gate: StepGate, metrics: ControllerMetrics,
        logger: Logger, options: WorkflowOptions, parallelism: Int, gitCache: String, faults: FaultHook?, dispatcher: (any StepDispatcher)?,
        statusChanged: (@Sendable (SourceStatus) async -> Void)?
    ) {
        self.configuration = configuration
        var runtime = runtime
        runtime.instance = configuration.name
        self.runtime = runtime
        self.store = store
        self.gate = gate
        self.metrics = metrics
        var logger = logger
        logger[metadataKey: "source"] = "\(configuration.name)"
        self.logger = logger
        self.options = options
        self.parallelism = parallelism
        self.gitCache = gitCache
        self.faults = faults
        self.dispatcher = dispatcher
        self.statusChanged = statusChanged
        do {
            desk = try configuration.forge.map { PullRequestDesk(forge: try Forges.make($0), source: configuration.name) }
        } catch {
            logger.error("pull requests are not planned: \(error)")
            desk = nil
        }
        state = Mutex((SourceStatus(configuration), nil, nil, nil, [], nil))
    }

    public var status: SourceStatus { state.withLock { $0.status } }
    /// The last plan made for the source (empty when in sync), nil before the first.
    public var currentPlan: Plan? { state.withLock { $0.plan } }
    /// The files of the commit last loaded for a reconcile; nil before the first.
    var loadedFiles: [SourceFile]? { state.withLock { $0.setCommit == nil ? nil : $0.files } }
    /// The set last loaded for a reconcile, with its files and revision: what schedules run.
    var loaded: (set: ManifestSet, files: [SourceFile], revision: SourceRevision)? {
        state.withLock { state in state.set.flatMap { set in state.revision.map { (set, state.files, $0) } } }
    }
    /// Whether the source has been fetched once (readiness).
    var hasFetched: Bool { state.withLock { $0.status.lastFetchedRevision != nil } }

    func enqueue(_ trigger: Trigger) {
        if trigger.fetches, fetchQueued.exchange(true, ordering: .acquiringAndReleasing) { return }
        queue.continuation.yield(trigger)
    }

    /// Ends the queue: the loop finishes what it is doing and returns.
    func stop() {
        queue.continuation.finish()
    }

    /// Runs until `stop()`: an interval ticker feeds the queue; the queue is worked in order.
    func run(jitter: Double, retentionEvery: Duration) async {
        await restoreLastApplied()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                while !Task.isCancelled {
                    let factor = 1 + Double.random(in: -jitter...jitter)
                    try? await Task.sleep(for: configuration.interval * factor)
                    enqueue(.interval)
                }
            }
            group.addTask { [self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: retentionEvery)
                    enqueue(.retention)
                }
            }
            group.addTask { [self] in await runSchedules() }
            enqueue(.requested("start"))
            for await trigger in queue.stream {
                await handle(trigger)
            }
            group.cancelAll()
            await desk?.forge.shutdown()
        }
    }

    /// The commit of the newest run that applied the source in full, so a restarted
    /// controller knows a commit it already applied (drift on it is drift, not news).
    private func restoreLastApplied() async {
        let applied = try? await store.runs(RunFilter(statuses: [.succeeded], instance: configuration.name, limit: 1)).first?.commit
        state.withLock { $0.status.lastAppliedRevision = applied }
    }

    private func handle(_ trigger: Trigger) async {
        switch trigger {
        case .approve(let request): await approve(request)
        case .retention: await collectSnapshots()
        case .pullRequest(let event): await pullRequestChanged(event)
        case .interval, .webhook, .requested:
            fetchQueued.store(false, ordering: .releasing)
            await reconcile(trigger)
        }
        await reportStatus()
    }

    /// Hands the status to `statusChanged` when this replica leads and it changed (the
    /// fetch time alone is no change).
    private func reportStatus() async {
        guard let statusChanged, gate.closedReason() == nil else { return }
        let current = status
        var comparable = current
        comparable.lastFetchedAt = nil
        let changed = reported.withLock { reported in
            defer { reported = comparable }
            return reported != comparable
        }
        if changed { await statusChanged(current) }
    }

    // MARK: Reconciling

    private func reconcile(_ trigger: Trigger) async {
        let started = ContinuousClock.now
        let snapshot: ManifestSource.Snapshot
        do {
            snapshot = try await ManifestSource.git(configuration.gitRequest(cacheDirectory: gitCache)).load()
        } catch {
            logger.error("cannot fetch \(configuration.repository) \(configuration.ref): \(error)")
            update { $0.stall(reason: "FetchFailed", message: "\(error)") }
            metrics.reconciled(source: configuration.name, result: "fetch_error", duration: ContinuousClock.now - started)
            return
        }
        let commit = snapshot.revision.commit ?? ""
        update {
            $0.lastFetchedRevision = commit
            $0.lastFetchedAt = Date()
        }
        metrics.revision(source: configuration.name, revision: commit)
        guard gate.closedReason() == nil, !configuration.suspend else { return }

        let set: ManifestSet
        do {
            if let decoded = state.withLock({ $0.setCommit == commit ? $0.set : nil }) {
                set = decoded
            } else {
                set = try runtime.load(snapshot)
            }
        } catch {
            logger.error("the manifests at \(commit.prefix(12)) are invalid; nothing was changed:\n\(error)")
            update { $0.stall(reason: "InvalidManifests", message: "\(error)") }
            metrics.reconciled(source: configuration.name, result: "invalid", duration: ContinuousClock.now - started)
            return
        }
        let isNewCommit = status.lastAppliedRevision != commit
        update {
            $0.managedResources = set.resources.count
            $0.set("Reconciling", true, reason: isNewCommit ? "NewRevision" : "CheckingDrift", message: "reconciling \(commit.prefix(12))")
        }
        state.withLock {
            $0.set = set
            $0.setCommit = commit
            $0.files = snapshot.files
            $0.revision = snapshot.revision
        }
        let drift = configuration.drift
        var tick = ReconcileTick(
            engine: engine(),
            options: options,
            resumed: { [logger] run in logger.info("resumed run \(run.id): \(run.status.rawValue)") },
            planned: { [self] plan in state.withLock { $0.plan = plan } })
        tick.shouldStart = { _ in isNewCommit || drift == .correct }
        let result: String
        do {
            let outcome = try await tick.run(set, files: snapshot.files, revision: snapshot.revision)
            result = record(outcome, commit: commit, isNewCommit: isNewCommit)
            if case .ran(_, let run) = outcome, run.status == .awaitingApproval { await settleMerge(waiting: run) }
        } catch let error as WorkflowError where error.code == .halted {
            logger.notice("\(error)")
            update { $0.set("Reconciling", false, reason: "Paused", message: "\(error)") }
            result = "halted"
        } catch {
            logger.error("reconcile of \(commit.prefix(12)) failed: \(error)")
            update { $0.stall(reason: "ReconcileFailed", message: "\(error)") }
            result = "error"
        }
        metrics.reconciled(source: configuration.name, result: result, duration: ContinuousClock.now - started)
    }

    /// Updates the status from a tick's outcome; returns the metric's result label.
    private func record(_ outcome: ReconcileTick.Outcome, commit: String, isNewCommit: Bool) -> String {
        switch outcome {
        case .inSync(let plan):
            update {
                $0.lastAppliedRevision = commit
                $0.lastPlanDigest = plan.digest
                $0.driftedResources = 0
                $0.pendingApproval = nil
                $0.settle(ready: true, reason: "InSync", message: "applied \(commit.prefix(12)); the live systems match it")
            }
            metrics.drift(source: configuration.name, resources: 0)
            return "in_sync"
        case .held(let plan):
            logger.warning("drift on \(plan.changes.count) resource(s), reported and left (drift: report)")
            update {
                $0.lastPlanDigest = plan.digest
                $0.driftedResources = plan.changes.count
                $0.settle(
                    ready: false, reason: "DriftReported",
                    message: "\(plan.changes.count) resource(s) differ from \(commit.prefix(12)); drift is reported, not corrected")
            }
            metrics.drift(source: configuration.name, resources: plan.changes.count)
            return "drift_reported"
        case .ran(let plan, let run):
            logger.info("run \(run.id) for \(commit.prefix(12)) (\(plan.changes.count) change(s)): \(run.status.rawValue)")
            let drifted = isNewCommit ? 0 : plan.changes.count
            update {
                $0.lastPlanDigest = plan.digest
                $0.lastRunID = run.id
                $0.pendingApproval = nil
                switch run.status {
                case .succeeded:
                    $0.lastAppliedRevision = commit
                    $0.driftedResources = 0
                    $0.settle(ready: true, reason: "Applied", message: "run \(run.id) applied \(commit.prefix(12))")
                case .awaitingApproval:
                    $0.driftedResources = drifted
                    $0.pendingApproval = SourceStatus.PendingApproval(runID: run.id, planDigest: run.planDigest)
                    $0.settle(ready: false, reason: "AwaitingApproval", message: "run \(run.id) waits for an approval of \(run.planDigest)")
                default:
                    $0.driftedResources = drifted
                    $0.settle(
                        ready: false, reason: "RunFailed", message: "run \(run.id) ended \(run.status.rawValue): \(run.error ?? "")")
                }
            }
            metrics.drift(source: configuration.name, resources: run.status == .succeeded ? 0 : drifted)
            switch run.status {
            case .succeeded: return "applied"
            case .awaitingApproval: return "awaiting_approval"
            case .rolledBack: return "rolled_back"
            default: return "failed"
            }
        }
    }

    // MARK: Approvals

    /// Checks an approval before it is queued, so the API can answer at once: the run exists,
    /// waits, is this source's, and `approver` may approve it.
    func checkApproval(_ request: ApprovalRequest) async throws -> RunRecord {
        try await engine().checkApproval(request.run, approver: request.approver, digest: request.digest)
    }

    private func approve(_ request: ApprovalRequest) async {
        guard gate.closedReason() == nil else {
            logger.warning("approval of run \(request.run) by \(request.approver) not acted on: this replica stopped leading")
            return
        }
        do {
            let run = try await engine().approve(request.run, approver: request.approver, comment: request.comment, digest: request.digest)
            logger.info("run \(run.id), approved by \(request.approver): \(run.status.rawValue)")
            recordApproved(run)
        } catch {
            logger.error("approval of run \(request.run) by \(request.approver) failed: \(error)")
        }
    }

    /// The status after an approved run ended.
    func recordApproved(_ run: RunRecord) {
        guard run.status == .succeeded, let commit = run.commit else { return }
        update {
            $0.lastAppliedRevision = commit
            $0.pendingApproval = nil
            $0.driftedResources = 0
            $0.settle(ready: true, reason: "Applied", message: "run \(run.id) applied \(commit.prefix(12)) after approval")
        }
    }

    func reject(run: Int64, approver: String, comment: String) async throws -> RunRecord {
        let rejected = try await engine().reject(run, approver: approver, comment: comment)
        update { if $0.pendingApproval?.runID == run { $0.pendingApproval = nil } }
        return rejected
    }

    // MARK: Snapshots

    /// The hourly retention pass over the source's snapshot-keeping targets (vCenters).
    private func collectSnapshots() async {
        guard gate.closedReason() == nil, let set = state.withLock({ $0.set }) else { return }
        do {
            for outcome in try await SnapshotRetentionPass(runtime: runtime).run(set, retention: nil, dryRun: false) {
                let collection = outcome.collection
                logger.info(
                    "snapshot retention on \(outcome.target): \(collection.expired.count) expired deleted, \(collection.recent.count) kept")
                for error in collection.errors { logger.error("snapshot retention on \(outcome.target): \(error)") }
            }
        } catch let error as RuntimeError where error.code == .noSnapshotTargets {
            return
        } catch {
            logger.error("snapshot retention failed: \(error)")
        }
    }

    // MARK: Helpers

    func engine() -> WorkflowEngine {
        var engine = runtime.engine(
            store: store, parallelism: parallelism, events: { [metrics] in metrics.step($0) }, gate: gate, faults: faults)
        engine.dispatcher = dispatcher
        return engine
    }

    func update(_ change: (inout SourceStatus) -> Void) {
        state.withLock { change(&$0.status) }
    }
}
