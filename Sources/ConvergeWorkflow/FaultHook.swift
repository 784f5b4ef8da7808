import ConvergeCore

/// Where in a step the engine calls its fault hook.
public enum FaultPoint: String, Sendable, CaseIterable {
    /// Just before the step acts (it is journaled as started).
    case beforeStep
    /// The step acted, and the journal does not say so yet: a step cut off mid-flight.
    case beforeJournal
    /// The step is journaled as finished.
    case afterStep
}

/// Called by the engine at each `FaultPoint` of each step, for crash and concurrency tests:
/// it may wait (a slow system), end the process (a crash), or throw. A thrown error stops the
/// run right there, as a crash would: nothing more is journaled, no step starts, the run stays
/// resumable, and the engine rethrows the error. Steps already running alongside finish.
public typealias FaultHook = @Sendable (FaultPoint, PlanStep) async throws -> Void

/// An error that stops a run where it is, resumable, on its way out of the plan executor: a
/// fault hook's, or a closed step gate's.
struct RunStop: Error {
    var underlying: any Error
}
