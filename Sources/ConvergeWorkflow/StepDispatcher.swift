import ConvergeCore
import ConvergeStore

/// Runs steps outside the engine's process, where their targets are: a pool of workers that
/// claim them from the store's queue (`converge worker`). The engine still journals every
/// step; only the acting (the snapshot, the change, its undoing) moves.
public protocol StepDispatcher: Sendable {
    /// The pool whose workers run `step`, or nil to run it in this process.
    func pool(of step: PlanStep, in planned: Reconciler.PlannedChange) async throws -> String?
    /// Has a worker of `pool` do `kind` of `step` (a compensation starts from `snapshot`), and
    /// waits for the outcome. Resuming a run asks again for a job already queued: the same
    /// job is waited for, not a second one queued.
    func dispatch(_ kind: StepJobKind, step: PlanStep, of run: RunRecord, pool: String, snapshot: String?) async throws -> DispatchedStep
}

/// How a worker's job ended, as the engine journals it.
public struct DispatchedStep: Sendable, Equatable {
    public var succeeded: Bool
    /// The snapshot the worker took before the step acted.
    public var snapshot: String?
    public var report: String?
    /// Why it failed (the step's error, or why the worker refused the job).
    public var error: String?
    public var worker: String
    public var workerVersion: String
    /// How many times the job was claimed (a takeover claims it again).
    public var claims: Int

    public init(
        succeeded: Bool, snapshot: String?, report: String?, error: String?, worker: String, workerVersion: String, claims: Int
    ) {
        self.succeeded = succeeded
        self.snapshot = snapshot
        self.report = report
        self.error = error
        self.worker = worker
        self.workerVersion = workerVersion
        self.claims = claims
    }
}

/// A step a worker reported failed, with the worker's words.
public struct DispatchedStepError: Error, CustomStringConvertible {
    public var worker: String
    public var message: String

    public init(worker: String, message: String) {
        self.worker = worker
        self.message = message
    }

    public var description: String { "\(message) (on worker \(worker))" }
}
