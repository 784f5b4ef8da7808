/// Objects that share a name with a manifest but are not Converge's to change.
public struct OwnershipConflictError: Error, CustomStringConvertible {
    public struct Conflict: Sendable {
        public var resource: ResourceID
        public var ownership: ObservedResource.Ownership
    }

    public var conflicts: [Conflict]

    public var description: String {
        var lines = ["\(conflicts.count) object\(conflicts.count == 1 ? "" : "s") already exist\(conflicts.count == 1 ? "s" : "") and \(conflicts.count == 1 ? "is" : "are") not managed by this Converge instance; nothing was changed:"]
        for conflict in conflicts {
            let owner: String
            switch conflict.ownership {
            case .unmanaged: owner = "has no \(OwnershipLabel.managedBy) label"
            case .otherInstance(let instance): owner = "is managed by Converge instance '\(instance)'"
            case .managed: owner = "is managed"
            }
            lines.append("  \(conflict.resource): a live object with this name \(owner)")
        }
        lines.append("Converge never changes or removes objects it does not own: rename the manifest, or remove or rename the existing object yourself.")
        return lines.joined(separator: "\n")
    }
}

/// Compares desired and observed state and produces the plan. Pure: no I/O, deterministic.
public struct Planner: Sendable {
    /// The kinds whose live objects the providers listed; a managed object of one of these
    /// kinds that no manifest describes any more is deleted (pruned).
    public var observedKinds: Set<String>

    public init(observedKinds: Set<String>) {
        self.observedKinds = observedKinds
    }

    /// - Parameter resolved: what the providers pinned for the desired resources
    ///   (`Provider.resolve`), merged into their desired fields.
    public func plan(
        desired set: ManifestSet, observed: [ObservedResource], resolved: [ResourceID: [String: String]] = [:], source: SourceRevision,
        instance: String
    ) throws -> Plan {
        var observedByID: [ResourceID: ObservedResource] = [:]
        observedByID.reserveCapacity(observed.count)
        for object in observed { observedByID[object.id] = object }

        var conflicts: [OwnershipConflictError.Conflict] = []
        var changesByID: [ResourceID: ResourceChange] = [:]
        let managedResources = set.resources.filter { $0.isLiveObject }

        for resource in managedResources {
            let pins = resolved[resource.id]
            let desired = Self.desiredFields(of: resource, in: set, resolved: pins)
            guard let live = observedByID[resource.id] else {
                // Empty lists and maps are defaults, not news: a create shows what is set.
                changesByID[resource.id] = ResourceChange(resource: resource.id, action: .create, fields: desired.entries.compactMap {
                    $0.value.isEmptyCollection ? nil : FieldChange(path: $0.key, before: nil, after: $0.value, forcesReplacement: false)
                }, resolved: pins)
                continue
            }
            guard live.ownership == .managed else {
                conflicts.append(.init(resource: resource.id, ownership: live.ownership))
                continue
            }
            let specType = type(of: resource.spec)
            var fieldChanges: [FieldChange] = []
            for (key, value) in desired {
                let forces = specType.changeMode(forField: key) == .replace
                Self.diff(path: key, before: live.fields[key], after: value, forcesReplacement: forces, into: &fieldChanges)
            }
            guard !fieldChanges.isEmpty else { continue }
            let action: ChangeAction = fieldChanges.contains(where: \.forcesReplacement) ? .replace : .update
            changesByID[resource.id] = ResourceChange(resource: resource.id, action: action, fields: fieldChanges, resolved: pins)
        }
        if !conflicts.isEmpty { throw OwnershipConflictError(conflicts: conflicts) }

        cascadeReplacements(in: set, resolved: resolved, changes: &changesByID)

        var kept: [String] = []
        for object in observed where object.ownership == .managed && set[object.id] == nil && observedKinds.contains(object.id.kind) {
            if let reason = object.facts[ObservedResource.keptWhenRemovedFact] {
                kept.append("\(object.id) is kept although its manifest was removed: \(reason)")
                continue
            }
            changesByID[object.id] = ResourceChange(resource: object.id, action: .delete, fields: [])
        }

        let (steps, awaitingApproval) = Self.expandPhases(
            Self.steps(for: changesByID, set: set, observed: observedByID), changes: changesByID, set: set)
        let order = Dictionary(steps.enumerated().map { ($0.element.resource, $0.offset) }, uniquingKeysWith: min)
        let changes = changesByID.values.sorted { (order[$0.resource] ?? 0, $0.resource) < (order[$1.resource] ?? 0, $1.resource) }
        let approvals = Self.placingApprovals(
            Self.approvals(for: changes, set: set, observed: observedByID), steps: steps, awaitingApproval: awaitingApproval, set: set)
        var plan = Plan(source: source, instance: instance, changes: changes, steps: steps, approvals: approvals)
        plan.warnings += kept.sorted()
        return plan
    }

    /// The fields the diff compares for `resource`: its kind's, with what its provider pinned
    /// (`resolved`) in place of what the manifest wrote.
    public static func desiredFields(of resource: Resource, in set: ManifestSet, resolved: [String: String]?) -> FieldMap {
        var fields = resource.spec.desiredFields(metadata: resource.metadata, in: set)
        for (field, value) in resolved ?? [:] { fields[field] = .string(value) }
        return fields
    }

    /// The approval policies that match at least one change. A change is matched against
    /// its manifest's labels, or for a delete against the labels the live object carries.
    static func approvals(for changes: [ResourceChange], set: ManifestSet, observed: [ResourceID: ObservedResource]) -> [ApprovalRequirement] {
        set.resources(ofKind: ApprovalPolicySpec.kind).compactMap { policy in
            guard let spec = policy.spec(as: ApprovalPolicySpec.self) else { return nil }
            let matched = changes.filter { change in
                var labels = set[change.resource]?.metadata.labels ?? [:]
                if set[change.resource] == nil, case .map(let live)? = observed[change.resource]?.fields["labels"] {
                    labels = Dictionary(uniqueKeysWithValues: live.entries.compactMap { entry in
                        if case .string(let value) = entry.value { return (entry.key, value) } else { return nil }
                    })
                }
                return spec.matches(change, labels: labels)
            }
            guard !matched.isEmpty else { return nil }
            return ApprovalRequirement(policy: policy.id.name, resources: matched.map(\.resource), approvers: spec.approvers, allowSelfApproval: spec.allowSelfApproval)
        }
    }

    /// Adds the field changes between `before` and `after`; maps are compared key by key
    /// so the plan shows `env.MODE` rather than the whole map.
    static func diff(path: String, before: FieldValue?, after: FieldValue?, forcesReplacement: Bool, into changes: inout [FieldChange]) {
        guard before != after else { return }
        if case .map(let old)? = before, case .map(let new)? = after {
            let keys = Set(old.keys).union(new.keys).sorted()
            for key in keys {
                diff(path: "\(path).\(key)", before: old[key], after: new[key], forcesReplacement: forcesReplacement, into: &changes)
            }
            return
        }
        changes.append(FieldChange(path: path, before: before, after: after, forcesReplacement: forcesReplacement))
    }

    /// A resource bound to one being replaced (a container on a recreated network) is
    /// replaced too, repeated until nothing more changes.
    private func cascadeReplacements(in set: ManifestSet, resolved: [ResourceID: [String: String]], changes: inout [ResourceID: ResourceChange]) {
        guard changes.values.contains(where: { $0.action == .replace }) else { return }
        var boundDependents: [ResourceID: [ResourceID]] = [:]
        for resource in set.resources {
            for reference in resource.references(in: set) where reference.bindsLifetime {
                boundDependents[reference.target, default: []].append(resource.id)
            }
        }
        var queue = changes.values.filter { $0.action == .replace }.map(\.resource).sorted()
        while let replaced = queue.popLast() {
            for dependent in boundDependents[replaced] ?? [] {
                let current = changes[dependent]
                guard current?.action != .replace, current?.action != .create else { continue }
                changes[dependent] = ResourceChange(
                    resource: dependent, action: .replace, reason: "\(replaced) is replaced",
                    fields: current?.fields ?? [], resolved: resolved[dependent])
                queue.append(dependent)
            }
        }
    }

    /// Turns changes into steps with their dependencies, in a deterministic
    /// topological order: deletes first (dependents before what they depend on), then
    /// creates and updates (dependencies first). Each step carries the guard its
    /// resource's kind asks for.
    static func steps(for changes: [ResourceID: ResourceChange], set: ManifestSet, observed: [ResourceID: ObservedResource]) -> [PlanStep] {
        struct Draft {
            var resource: ResourceID
            var action: PlanStep.Action
            var dependsOn: Set<Int> = []
        }
        var drafts: [Draft] = []
        var deleteOp: [ResourceID: Int] = [:]
        var createOp: [ResourceID: Int] = [:]
        var updateOp: [ResourceID: Int] = [:]
        for id in changes.keys.sorted() {
            switch changes[id]!.action {
            case .create:
                createOp[id] = drafts.count; drafts.append(Draft(resource: id, action: .create))
            case .update:
                updateOp[id] = drafts.count; drafts.append(Draft(resource: id, action: .update))
            case .delete:
                deleteOp[id] = drafts.count; drafts.append(Draft(resource: id, action: .delete))
            case .replace:
                deleteOp[id] = drafts.count; drafts.append(Draft(resource: id, action: .delete))
                createOp[id] = drafts.count; drafts.append(Draft(resource: id, action: .create, dependsOn: [drafts.count - 1]))
            }
        }
        // Creates and updates wait for the creation of what they reference.
        for (id, index) in createOp.merging(updateOp, uniquingKeysWith: { first, _ in first }) {
            for target in liveDependencies(of: id, in: set) {
                if let dependency = createOp[target] { drafts[index].dependsOn.insert(dependency) }
            }
        }
        // Stages (a pipeline's waves) run one after the other.
        orderStages(
            in: set, stepsOf: { id in [createOp[id], updateOp[id]].compactMap { $0 } },
            addDependency: { step, dependency in drafts[step].dependsOn.insert(dependency) })
        // A live object is deleted only after whatever still uses it is deleted or updated
        // away from it (a network after the containers on it).
        for (user, live) in observed {
            for dependency in live.dependencies {
                guard let deletion = deleteOp[dependency] else { continue }
                if let userDeletion = deleteOp[user] {
                    drafts[deletion].dependsOn.insert(userDeletion)
                } else if let userUpdate = updateOp[user] {
                    drafts[deletion].dependsOn.insert(userUpdate)
                }
            }
        }
        return topologicalOrder(drafts.map { ($0.resource, $0.action, $0.dependsOn) }).map { step in
            var step = step
            step.guard = set[step.resource]?.spec.stepGuard(for: step.action, observed: observed[step.resource])
            return step
        }
    }

    /// The live resources `id` references, looking through the ones that are not live (a
    /// firewall policy's verification probes need the containers they run between).
    static func liveDependencies(of id: ResourceID, in set: ManifestSet) -> Set<ResourceID> {
        var found: Set<ResourceID> = []
        var visited: Set<ResourceID> = [id]
        var pending = set[id]?.references(in: set).map(\.target) ?? []
        while let target = pending.popLast() {
            guard visited.insert(target).inserted, let resource = set[target] else { continue }
            if resource.isLiveObject {
                found.insert(target)
            } else {
                pending += resource.references(in: set).map(\.target)
            }
        }
        return found
    }

    /// Kahn's algorithm; among ready steps deletes go first, then by resource id.
    private static func topologicalOrder(_ drafts: [(resource: ResourceID, action: PlanStep.Action, dependsOn: Set<Int>)]) -> [PlanStep] {
        var remaining = drafts.map(\.dependsOn.count)
        var dependents = Array(repeating: [Int](), count: drafts.count)
        for (index, draft) in drafts.enumerated() {
            for dependency in draft.dependsOn { dependents[dependency].append(index) }
        }
        func key(_ index: Int) -> (Int, ResourceID, Int) {
            (drafts[index].action == .delete ? 0 : 1, drafts[index].resource, index)
        }
        var ready = Heap<Int>(by: { key($0) < key($1) })
        for index in drafts.indices where remaining[index] == 0 { ready.push(index) }
        var newIndex = Array(repeating: -1, count: drafts.count)
        var ordered: [Int] = []
        ordered.reserveCapacity(drafts.count)
        while let index = ready.pop() {
            newIndex[index] = ordered.count
            ordered.append(index)
            for dependent in dependents[index] {
                remaining[dependent] -= 1
                if remaining[dependent] == 0 { ready.push(dependent) }
            }
        }
        precondition(ordered.count == drafts.count, "step graph has a cycle; manifest validation should have caught it")
        return ordered.enumerated().map { position, index in
            PlanStep(index: position, resource: drafts[index].resource, action: drafts[index].action,
                      dependsOn: drafts[index].dependsOn.map { newIndex[$0] }.sorted())
        }
    }
}
