import Synchronization

/// Where a provider reports what a step did beyond its success or failure (a playbook's
/// result per host), without the `Provider` contract growing a return value every provider
/// would ignore. The workflow engine sets one per step attempt and journals what it holds,
/// failed attempts included.
public final class StepReporter: Sendable {
    /// The reporter of the step the current task runs; nil outside a journaled run.
    @TaskLocal public static var current: StepReporter?

    private let latest = Mutex<String?>(nil)
    private let onProgress: @Sendable (String) -> Void

    /// - Parameter progress: receives what `progress(_:)` says (a terminal shows it).
    public init(progress: @escaping @Sendable (String) -> Void = { _ in }) {
        onProgress = progress
    }

    /// Says how far a long step has got (`pulling …: 12.5 of 40.1 MB`), for whoever watches
    /// the run; never journaled.
    public func progress(_ text: String) {
        onProgress(text)
    }

    /// Replaces the report (JSON, in the provider's shape) with `report`.
    public func report(_ report: String) {
        latest.withLock { $0 = report }
    }

    public var reported: String? { latest.withLock { $0 } }
}
