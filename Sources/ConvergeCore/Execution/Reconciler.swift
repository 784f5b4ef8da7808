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
        var changeOf: [ResourceID: ResourceChange]

        init(plan: Plan, desired: ManifestSet, observed: [ResourceID: ObservedResource], providerOf: [ResourceID: ResourceID]) {
            self.plan = plan
            self.desired = desired
            self.observed = observed
            self.providerOf = providerOf
            self.changeOf = Dictionary(plan.changes.map { ($0.resource, $0) }, uniquingKeysWith: { first, _ in first })
        }

        /// The target (`DockerHost/dmz`) whose provider serves `resource`.
        public func target(of resource: ResourceID) -> ResourceID? { providerOf[resource] }
    }

    /// What the providers hold for `set`'s resources, and which provider holds each.
    public struct Observation: Sendable {
        public var objects: [ResourceID: ObservedResource]
        /// What the providers pinned for the desired resources (`Provider.resolve`).
        public var resolved: [ResourceID: [String: String]]
        var providerOf: [ResourceID: ResourceID]
    }

    public func observe(_ set: ManifestSet) async throws -> Observation {
        var byTarget: [ResourceID: [Resource]] = [:]
        for resource in set.resources where resource.isLiveObject {
            if let target = resource.spec.target(in: set) { byTarget[target, default: []].append(resource) }
        }
        let instance = self.instance
        let providers = self.providers
        typealias Found = (target: ResourceID, objects: [ObservedResource], resolved: [ResourceID: [String: String]])
        let found = try await withThrowingTaskGroup(of: Found.self) { group in
            for (target, provider) in providers {
                let desired = byTarget[target] ?? []
                group.addTask {
                    async let objects = provider.observe(desired: desired, in: set, instance: instance)
                    async let resolved = provider.resolve(desired: desired, in: set)
                    return (target, try await objects, try await resolved)
                }
            }
            return try await group.reduce(into: [Found]()) { $0.append($1) }
        }
        var observation = Observation(objects: [:], resolved: [:], providerOf: [:])
        for (target, objects, resolved) in found {
            for object in objects {
                observation.objects[object.id] = object
                observation.providerOf[object.id] = target
            }
            observation.resolved.merge(resolved) { first, _ in first }
        }
        for (target, resources) in byTarget {
            for resource in resources { observation.providerOf[resource.id] = target }
        }
        // Resources that are not live objects but act through a target (a schedule's runs).
        for resource in set.resources where !resource.isLiveObject && resource.spec is any ScheduledResource {
            if let target = resource.spec.target(in: set), providers[target] != nil { observation.providerOf[resource.id] = target }
        }
        return observation
    }

    public func plan(_ set: ManifestSet, source: SourceRevision) async throws -> PlannedChange {
        let observation = try await observe(set)
        let kinds = Set(providers.values.flatMap(\.managedKinds))
        let plan = try Planner(observedKinds: kinds).plan(
            desired: set, observed: Array(observation.objects.values), resolved: observation.resolved, source: source, instance: instance)
        return PlannedChange(plan: plan, desired: set, observed: observation.objects, providerOf: observation.providerOf)
    }

    /// A plan that acts on one resource now, whatever its state (`converge playbooks run`): one
    /// step carrying `fields` (what to do, e.g. a `limit`), with the approvals its policies ask.
    /// Journaled like any plan, so the action resumes as it was asked.
    public func planAction(
        on id: ResourceID, in set: ManifestSet, fields: [FieldChange], reason: String, source: SourceRevision, concurrent: Bool = false
    ) async throws -> PlannedChange {
        let observation = try await observe(set)
        let observed = observation.objects[id]
        let action: PlanStep.Action = observed == nil ? .create : .update
        // The resource's inputs as they stand go with the action, so the plan shows (and its
        // digest pins) what will run.
        var allFields = fields
        if let resource = set[id] {
            let desired = Planner.desiredFields(of: resource, in: set, resolved: observation.resolved[id])
            for (key, value) in desired where !fields.contains(where: { $0.path == key }) {
                Planner.diff(path: key, before: nil, after: value, forcesReplacement: false, into: &allFields)
            }
        }
        let change = ResourceChange(
            resource: id, action: action == .create ? .create : .update, reason: reason, fields: allFields, resolved: observation.resolved[id])
        let step = PlanStep(index: 0, resource: id, action: action, dependsOn: [], guard: set[id]?.spec.stepGuard(for: action, observed: observed))
        let approvals = Planner.approvals(for: [change], set: set, observed: observation.objects)
        var plan = Plan(source: source, instance: instance, changes: [change], steps: [step], approvals: approvals)
        plan.action = reason
        plan.concurrent = concurrent
        return PlannedChange(plan: plan, desired: set, observed: observation.objects, providerOf: observation.providerOf)
    }

    /// A plan computed earlier (a run resumed after a crash), paired with a fresh observation
    /// so its remaining steps act on the objects as they are now.
    public func resume(_ plan: Plan, desired set: ManifestSet) async throws -> PlannedChange {
        let observation = try await observe(set)
        return PlannedChange(plan: plan, desired: set, observed: observation.objects, providerOf: observation.providerOf)
    }

    /// The provider that serves `resource` in `planned`.
    public func provider(for resource: ResourceID, in planned: PlannedChange) throws -> any Provider {
        guard let target = planned.providerOf[resource], let provider = providers[target] else {
            throw ReconcileError.noProvider(resource)
        }
        return provider
    }

    /// Runs one step through its provider.
    public func execute(_ step: PlanStep, in planned: PlannedChange) async throws {
        guard let change = planned.changeOf[step.resource] else { throw ReconcileError.notInPlan(step.resource) }
        try await provider(for: step.resource, in: planned).execute(
            step, change: change, desired: planned.desired[step.resource],
            observed: planned.observed[step.resource], in: planned.desired, instance: instance)
    }
}

/// A plan that cannot be carried out as it stands. A struct with a code, so that codes can be
/// added without breaking callers that switch over them.
public struct ReconcileError: Error, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// No provider serves the resource: its target is not in the manifest set.
        public static let noProvider = Code("noProvider")
        /// A step whose resource has no change in its plan: the plan (from a journal) is damaged.
        public static let notInPlan = Code("notInPlan")

        public var description: String { name }
    }

    public var code: Code
    public var resource: ResourceID

    public static func noProvider(_ resource: ResourceID) -> ReconcileError {
        ReconcileError(code: .noProvider, resource: resource)
    }

    public static func notInPlan(_ resource: ResourceID) -> ReconcileError {
        ReconcileError(code: .notInPlan, resource: resource)
    }

    public var description: String {
        switch code {
        case .noProvider: return "no provider serves \(resource): its target is not defined in the manifest set"
        default: return "the plan has a step for \(resource) but no change for it; the plan is damaged and must be made anew"
        }
    }
}
