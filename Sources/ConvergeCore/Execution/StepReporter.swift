import Synchronization

/// Where a provider reports what a step did beyond its success or failure (a playbook's
/// result per host), without the `Provider` contract growing a return value every provider
/// would ignore. The workflow engine sets one per step attempt and journals what it holds,
/// failed attempts included.
public final class StepReporter: Sendable {
    /// The reporter of the step the current task runs; nil outside a journaled run.
    @TaskLocal public static var current: StepReporter?

    private let latest = Mutex<String?>(nil)

    public init() {}

    /// Replaces the report (JSON, in the provider's shape) with `report`.
    public func report(_ report: String) {
        latest.withLock { $0 = report }
    }

    public var reported: String? { latest.withLock { $0 } }
}
