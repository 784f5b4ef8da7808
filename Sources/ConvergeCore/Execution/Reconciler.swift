/// Observe → plan → execute over a set of providers: the one flow behind
/// `converge reconcile`, kept free of terminal concerns so the controller can reuse it.
public struct Reconciler: Sendable {
    /// One provider per target resource (e.g. `DockerHost/local`).
    public var providers: [ResourceID: any Provider]
    public var instance: String

    public init(providers: [ResourceID: any Provider], instance: String) {
        self.providers = providers
        self.instance = instance
    }

    /// A plan together with what it was computed from, which execution needs.
    public struct PlannedChange: Sendable {
        public var plan: Plan
        public var desired: ManifestSet
        public var observed: [ResourceID: ObservedResource]
        /// Which provider found or will make each resource.
        var providerOf: [ResourceID: ResourceID]
    }

    public func plan(_ set: ManifestSet, source: SourceRevision) async throws -> PlannedChange {
        var byTarget: [ResourceID: [Resource]] = [:]
        for resource in set.resources where !resource.isTarget {
            if let target = resource.spec.target(in: set) { byTarget[target, default: []].append(resource) }
        }
        let instance = self.instance
        let providers = self.providers
        let found = try await withThrowingTaskGroup(of: (ResourceID, [ObservedResource]).self) { group in
            for (target, provider) in providers {
                let desired = byTarget[target] ?? []
                group.addTask { (target, try await provider.observe(desired: desired, instance: instance)) }
            }
            return try await group.reduce(into: [(ResourceID, [ObservedResource])]()) { $0.append($1) }
        }
        var observed: [ResourceID: ObservedResource] = [:]
        var providerOf: [ResourceID: ResourceID] = [:]
        for (target, objects) in found {
            for object in objects {
                observed[object.id] = object
                providerOf[object.id] = target
            }
        }
        for (target, resources) in byTarget {
            for resource in resources { providerOf[resource.id] = target }
        }
        let kinds = Set(providers.values.flatMap(\.managedKinds))
        let plan = try Planner(observedKinds: kinds).plan(desired: set, observed: Array(observed.values), source: source, instance: instance)
        return PlannedChange(plan: plan, desired: set, observed: observed, providerOf: providerOf)
    }

    public func apply(
        _ planned: PlannedChange, executor: PlanExecutor,
        progress: @Sendable (PlanExecutor.Progress) -> Void = { _ in },
        finished: @escaping @Sendable (PlanStep, Duration) -> Void = { _, _ in }
    ) async throws {
        let changes = Dictionary(uniqueKeysWithValues: planned.plan.changes.map { ($0.resource, $0) })
        let providers = self.providers
        let instance = self.instance
        try await executor.run(planned.plan, progress: progress) { step in
            guard let target = planned.providerOf[step.resource], let provider = providers[target] else {
                throw ReconcileError.noProvider(step.resource)
            }
            let clock = ContinuousClock()
            let started = clock.now
            try await provider.execute(
                step, change: changes[step.resource]!, desired: planned.desired[step.resource],
                observed: planned.observed[step.resource], instance: instance)
            finished(step, clock.now - started)
        }
    }
}

public enum ReconcileError: Error, CustomStringConvertible {
    case noProvider(ResourceID)

    public var description: String {
        switch self {
        case .noProvider(let id): return "no provider serves \(id): its target is not defined in the manifest set"
        }
    }
}
