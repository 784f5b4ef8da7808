/// A system Converge manages (a Docker engine, a vCenter, a cluster). One value serves one
/// target; its plug-in's factory makes one per target manifest.
public protocol Provider: Sendable {
    /// The kinds of live objects this provider lists and can prune.
    var managedKinds: Set<String> { get }

    /// Lists this instance's objects (one bulk call per type, filtered by the ownership
    /// label) and the objects that clash by name with `desired` (this provider's resources
    /// of `set`), in the kinds' field shape.
    func observe(desired: [Resource], in set: ManifestSet, instance: String) async throws -> [ObservedResource]

    /// Pins what `desired` (this provider's resources of `set`) names but only the live system
    /// can tell when the plan is made: the digest an image tag points to. By resource, field →
    /// value. The Planner puts each value in the resource's desired fields, so the plan shows it
    /// and its digest covers it, and in its change's `resolved`, which the step then runs.
    /// Throws, before anything changes, when a value cannot be resolved.
    func resolve(desired: [Resource], in set: ManifestSet) async throws -> [ResourceID: [String: String]]

    /// Carries out one step. Must be idempotent: re-running a create after a crash
    /// finds the object it made by its ownership label instead of making a second one.
    /// `set` resolves references (a route's router, a policy's probes).
    func execute(_ step: PlanStep, change: ResourceChange, desired: Resource?, observed: ObservedResource?, in set: ManifestSet, instance: String) async throws

    /// What is needed to undo `step` later, read from the live system before the step runs
    /// (the object's full configuration for an update or a delete), as JSON; nil when
    /// undoing needs nothing (a create is undone by removing what it made). Journaled
    /// before the step runs, so a rollback after a crash still has it.
    func snapshot(_ step: PlanStep, observed: ObservedResource?, in set: ManifestSet, instance: String) async throws -> String?

    /// Undoes `step` (which may have finished, failed halfway or never run): removes what a
    /// create made, recreates what a delete removed, restores what an update changed.
    /// Idempotent, like `execute`.
    func compensate(_ step: PlanStep, snapshot: String?, instance: String) async throws

    /// Keeps what the provider holds open alive (a session's keep-alive) until its task is
    /// cancelled or `shutdown()` is called. The runtime runs it as a child task beside the
    /// work the provider serves, never detached.
    func run() async

    /// Closes what the provider holds open (a vCenter session, a connection pool). Called
    /// once, when the process is done with the provider; it is not used afterwards.
    func shutdown() async
}

extension Provider {
    public func resolve(desired: [Resource], in set: ManifestSet) async throws -> [ResourceID: [String: String]] { [:] }
    public func run() async {}
    public func shutdown() async {}
}

/// Errors that say whether trying again may help (a busy engine, a reset connection, a
/// 5xx) or not (a 4xx, a validation failure). Retries apply only to transient ones.
public protocol TransientClassifying: Error {
    var isTransient: Bool { get }
}
