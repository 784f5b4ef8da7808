/// Says whether this process may start steps now. A controller replica may only while it
/// leads and is not shutting down.
///
/// A run finds the gate closed between two steps: the steps in flight finish and are
/// journaled, nothing more starts, and the run stops where it is, resumable, with its leases
/// released so that whichever process may start steps next resumes it at once
/// (`WorkflowError.halted`).
public struct StepGate: Sendable {
    /// Why the gate is closed, or nil while it is open.
    public var closedReason: @Sendable () -> String?

    public init(closedReason: @escaping @Sendable () -> String?) {
        self.closedReason = closedReason
    }
}
