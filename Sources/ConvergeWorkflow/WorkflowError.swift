import ConvergeStore

/// Why the engine refused or stopped a run. A struct with a code, so that codes can be
/// added without breaking callers; the message says what happened and, in the engine's
/// terms, what to do. Front ends (the CLI, the controller's API) add their own commands.
public struct WorkflowError: Error, CustomStringConvertible, Equatable {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// The store has no run with that id.
        public static let noSuchRun = Code("noSuchRun")
        /// The run waits for an approval and cannot be resumed before it.
        public static let awaitingApproval = Code("awaitingApproval")
        /// Only a waiting run can be approved or rejected.
        public static let notAwaitingApproval = Code("notAwaitingApproval")
        /// The approval names another plan than the run's.
        public static let staleApproval = Code("staleApproval")
        /// The live state no longer gives the approved plan.
        public static let planChanged = Code("planChanged")
        /// The approver is not among those the plan's policies name.
        public static let notAnApprover = Code("notAnApprover")
        /// Another live run holds resources this one needs.
        public static let resourcesHeld = Code("resourcesHeld")
        /// The run's leases expired or could not be renewed; it stopped and can be resumed.
        public static let leaseLost = Code("leaseLost")
        /// The store failed while the run's leases were renewed; the run stopped, resumable.
        public static let leaseRenewalFailed = Code("leaseRenewalFailed")
        /// The step gate closed (leadership lost, shutting down); the run stopped between
        /// steps, resumable, its leases released.
        public static let halted = Code("halted")
        /// The run reached a step held back for an approval (a rollout's switch, a pipeline's
        /// next wave); it stopped there, its leases released, and continues once approved.
        public static let awaitingStepApproval = Code("awaitingStepApproval")
        /// A journaled plan, option set or manifest archive cannot be read back.
        public static let corruptJournal = Code("corruptJournal")

        public var description: String { name }
    }

    public var code: Code
    /// The run concerned, when there is one.
    public var run: Int64?
    /// The lease in the way (`resourcesHeld`).
    public var lease: LeaseRecord?
    public var message: String

    public var description: String { message }

    public static func noSuchRun(_ id: Int64) -> WorkflowError {
        WorkflowError(code: .noSuchRun, run: id, message: "run \(id) does not exist")
    }

    public static func awaitingApproval(_ id: Int64) -> WorkflowError {
        WorkflowError(code: .awaitingApproval, run: id, message: "run \(id) is waiting for approval")
    }

    public static func notAwaitingApproval(_ id: Int64, _ status: RunStatus) -> WorkflowError {
        WorkflowError(
            code: .notAwaitingApproval, run: id,
            message: "run \(id) is \(status.rawValue), not awaiting approval; only a waiting run can be approved or rejected")
    }

    public static func staleApproval(run: Int64, approved: String, current: String) -> WorkflowError {
        WorkflowError(
            code: .staleApproval, run: run,
            message:
                "refused: the approval is for plan \(approved), but run \(run) would apply plan \(current); review the current plan and approve that digest"
        )
    }

    public static func planChanged(run: Int64, approved: String, current: String) -> WorkflowError {
        WorkflowError(
            code: .planChanged, run: run,
            message:
                "refused: the live state changed since run \(run)'s plan was reviewed (approved \(approved), now \(current)); a new plan needs a new approval"
        )
    }

    public static func notAnApprover(_ name: String, allowed: [String]) -> WorkflowError {
        WorkflowError(
            code: .notAnApprover,
            message: "'\(name)' may not approve this plan; its approval policies name: \(allowed.joined(separator: ", "))")
    }

    public static func resourcesHeld(_ lease: LeaseRecord) -> WorkflowError {
        WorkflowError(
            code: .resourcesHeld, run: lease.runID, lease: lease,
            message: "resources are held by run \(lease.runID) (process \(lease.owner)) until \(lease.expiresAt); wait for it to finish")
    }

    public static func leaseLost(_ id: Int64) -> WorkflowError {
        WorkflowError(
            code: .leaseLost, run: id,
            message:
                "run \(id) lost its leases (this process stalled longer than their time to live); another process may be driving it, so this one stopped"
        )
    }

    public static func leaseRenewalFailed(_ id: Int64, _ detail: String) -> WorkflowError {
        WorkflowError(
            code: .leaseRenewalFailed, run: id,
            message:
                "run \(id) stopped: its leases could not be renewed (\(detail)); it was left as it was, to be resumed once the store answers again"
        )
    }

    public static func halted(_ id: Int64, reason: String) -> WorkflowError {
        WorkflowError(
            code: .halted, run: id,
            message: "run \(id) paused between steps (\(reason)); it is resumable, and the next process allowed to start steps resumes it")
    }

    public static func awaitingStepApproval(_ id: Int64, step: Int, policies: [String]) -> WorkflowError {
        WorkflowError(
            code: .awaitingStepApproval, run: id,
            message: "run \(id) waits before step \(step + 1) for an approval (\(policies.joined(separator: ", "))); approve it to go on")
    }

    public static func corruptJournal(_ detail: String) -> WorkflowError {
        WorkflowError(code: .corruptJournal, message: "the run journal is damaged: \(detail)")
    }
}
