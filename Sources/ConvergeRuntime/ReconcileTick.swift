import ConvergeCore
import ConvergeStore
import ConvergeWorkflow

/// One pass of the reconcile loop, the same for `converge reconcile` and every interval or
/// commit of the controller: resume the runs a dead process left, plan the manifests against
/// the live systems, and start a run for the plan (which stops at `awaiting_approval` when a
/// policy protects a change).
public struct ReconcileTick: Sendable {
    public enum Outcome: Sendable {
        /// Nothing to change.
        case inSync(Plan)
        /// Changes were planned but `shouldStart` held them back (drift only reported).
        case held(Plan)
        /// A run was started (or an identical one already waiting was found); its status says
        /// how it ended, `awaitingApproval` included.
        case ran(Plan, RunRecord)
    }

    public var engine: WorkflowEngine
    public var options: WorkflowOptions
    /// Told of each interrupted run resumed before planning, once it has ended.
    public var resumed: @Sendable (RunRecord) -> Void
    /// Told of the plan before its run starts (to print it, post it, count it).
    public var planned: @Sendable (Plan) -> Void
    /// Whether a plan with changes becomes a run; by default every one does. The controller
    /// holds back drift on a source whose drift policy is to report it.
    public var shouldStart: @Sendable (Plan) -> Bool = { _ in true }

    public init(
        engine: WorkflowEngine, options: WorkflowOptions,
        resumed: @escaping @Sendable (RunRecord) -> Void = { _ in }, planned: @escaping @Sendable (Plan) -> Void = { _ in }
    ) {
        self.engine = engine
        self.options = options
        self.resumed = resumed
        self.planned = planned
    }

    /// Runs the pass for `set`, decoded from `files` read at `revision` (the files are
    /// journaled with the run, so a resumed run needs no source).
    public func run(_ set: ManifestSet, files: [SourceFile], revision: SourceRevision) async throws -> Outcome {
        for run in try await engine.resumeInterrupted() { resumed(run) }
        let change = try await engine.plan(set, source: revision)
        planned(change.plan)
        guard !change.plan.isEmpty else { return .inSync(change.plan) }
        guard shouldStart(change.plan) else { return .held(change.plan) }
        return .ran(change.plan, try await engine.start(change, manifests: files, options: options))
    }
}
