/// A system Converge manages (a Docker engine, a vCenter, a cluster). One value serves one
/// target; the CLI makes one per target manifest.
public protocol Provider: Sendable {
    /// The kinds of live objects this provider lists and can prune.
    var managedKinds: Set<String> { get }

    /// Lists this instance's objects (one bulk call per type, filtered by the ownership
    /// label) and the objects that clash by name with `desired`, in the kinds' field shape.
    func observe(desired: [Resource], instance: String) async throws -> [ObservedResource]

    /// Carries out one step. Must be idempotent: re-running a create after a crash
    /// finds the object it made by its ownership label instead of making a second one.
    func execute(_ step: PlanStep, change: ResourceChange, desired: Resource?, observed: ObservedResource?, instance: String) async throws
}
