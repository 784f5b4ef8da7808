import ConvergeCore
import Foundation
import Synchronization

/// One Kubernetes cluster: observes the set's objects with one paged list per type, plans
/// locally from the fields Converge's field manager owns, and applies with server-side apply.
///
/// Observation makes no per-object call for objects in sync. An object new or changed by
/// the local comparison gets one server-side-apply dry-run: it validates the object before
/// any change (its field errors point at manifest lines), and it tells a real change from a
/// different spelling of the same value (`1Gi` and `1024Mi`).
public final class KubernetesProvider: Provider {
    public static let fieldManager = "converge"
    /// Objects sent in parallel, in dry-runs and lookups.
    static let concurrency = 16

    let target: ResourceID
    let spec: KubernetesClusterSpec
    let client: KubernetesClient
    let discovery: Discovery
    /// Kinds of the objects the last observation listed: the ones a plan may prune.
    private let listedKinds = Mutex<Set<String>>([])
    /// Types already written to the inventory by this process.
    let inventoried = Mutex<Set<GroupVersionKind>>([])

    public init(target: ResourceID, spec: KubernetesClusterSpec) throws {
        self.target = target
        self.spec = spec
        client = try KubernetesClient(connection: ClusterConnection.resolve(spec.source))
        discovery = Discovery(client: client)
    }

    public var managedKinds: Set<String> { listedKinds.withLock { $0 } }

    var defaultNamespace: String { spec.namespace ?? KubernetesClusterSpec.defaultNamespace }

    /// Requests sent to the API server so far (for benchmarks).
    public var requestCount: Int { client.requestCount }

    public func shutdown() async { await client.shutdown() }

    /// A desired object with what its type and place resolve to.
    struct Placed: Sendable {
        var resource: Resource
        var spec: KubernetesObjectSpec
        var type: ResourceType
        var namespace: String?
        /// False for a custom resource whose CRD is applied in the same run.
        var served: Bool

        var key: ObjectKey { ObjectKey(groupKind: spec.type.groupKind, namespace: namespace, name: spec.name) }
    }

    struct ObjectKey: Hashable, Sendable {
        var groupKind: String
        var namespace: String?
        var name: String
    }

    // MARK: - Observe

    public func observe(desired: [Resource], in set: ManifestSet, instance: String) async throws -> [ObservedResource] {
        try await discovery.loadIfNeeded()
        let placed = try await place(desired, in: set)
        var types = Set(placed.filter(\.served).map(\.type))
        for type in try await inventory(instance: instance) { types.insert(type) }

        let managed = try await listManaged(types, instance: instance)
        listedKinds.withLock { $0 = Set(types.map(\.type.qualifiedKind)) }
        var live: [ObjectKey: JSONValue] = [:]
        for (type, object) in managed {
            live[
                ObjectKey(
                    groupKind: type.type.groupKind, namespace: object["metadata"]?["namespace"]?.string,
                    name: object["metadata"]?["name"]?.string ?? "")] = object
        }
        let missing = placed.filter { $0.served && live[$0.key] == nil }
        let clashes = try await lookUp(missing)
        let liveNamespaces = try await existingNamespaces(for: placed)

        var observed: [ObservedResource] = []
        var conflicts: [String] = []
        var invalid: [String] = []
        let desiredKeys = Set(placed.map(\.key))
        try await withThrowingTaskGroup(of: Result<ObservedResource?, KubernetesError>.self) { group in
            var pending = placed.makeIterator()
            var running = 0
            func startNext() {
                guard let object = pending.next() else { return }
                running += 1
                let current = live[object.key] ?? clashes[object.key]
                let namespaceExists = object.namespace.map { liveNamespaces.contains($0) } ?? true
                group.addTask { [self] in
                    do {
                        return .success(try await observe(object, live: current, namespaceExists: namespaceExists, instance: instance))
                    } catch let error as KubernetesError {
                        return .failure(error)
                    }
                }
            }
            for _ in 0..<Self.concurrency { startNext() }
            while running > 0, let result = try await group.next() {
                running -= 1
                switch result {
                case .success(let object?): observed.append(object)
                case .success(nil): break
                case .failure(let error) where error.code == .conflict: conflicts.append(error.message)
                case .failure(let error) where error.code == .invalid: invalid.append(error.description)
                case .failure(let error): throw error
                }
                startNext()
            }
        }
        if !invalid.isEmpty {
            throw KubernetesError(.invalid, invalid.sorted().joined(separator: "\n"), hint: "fix the manifests; nothing was changed")
        }
        if !conflicts.isEmpty {
            throw KubernetesError(
                .conflict,
                "fields of \(conflicts.count) object\(conflicts.count == 1 ? "" : "s") are managed by another applier; nothing was changed:\n"
                    + conflicts.sorted().map { "  \($0)" }.joined(separator: "\n"),
                hint:
                    "remove the fields from the manifest, let the other applier drop them, or take them with the annotation \(KubernetesObjectSpec.Annotation.forceConflicts): \"true\""
            )
        }
        // Managed objects no manifest describes any more: the plan prunes them.
        for (key, object) in live where !desiredKeys.contains(key) && object["metadata"]?["deletionTimestamp"] == nil {
            guard let type = managed.first(where: { $0.type.type.groupKind == key.groupKind })?.type else { continue }
            observed.append(liveOnly(object, key: key, type: type, in: set))
        }
        return observed
    }

    /// Resolves each object's type (discovery, or a CRD of the set) and namespace; every
    /// object whose kind is served nowhere is reported at once, with the closest kinds.
    private func place(_ desired: [Resource], in set: ManifestSet) async throws -> [Placed] {
        var placed: [Placed] = []
        var unknown: [String] = []
        let specs = desired.compactMap { resource in resource.spec(as: KubernetesObjectSpec.self).map { (resource, $0) } }
        // One refresh for all the kinds discovery did not know (installed since it was read).
        if specs.contains(where: { discovery.cachedResourceType(for: $0.1.type) == nil }) { try await discovery.refresh() }
        for (resource, spec) in specs {
            var served = true
            var type = discovery.cachedResourceType(for: spec.type)
            if type == nil, let definition = KubernetesObjectSpec.definition(of: spec.type, in: set)?.spec(as: KubernetesObjectSpec.self) {
                type = Self.typeDefined(by: definition, for: spec.type)
                served = false
            }
            guard let type else {
                let known = discovery.knownKinds()
                let sameKind = known.filter { $0.kind == spec.type.kind }.map(\.apiVersion)
                let hint =
                    !sameKind.isEmpty
                    ? "\(spec.type.kind) is served as apiVersion \(sameKind.sorted().joined(separator: " or "))"
                    : closestName(to: spec.type.kind, among: known.map(\.kind)).map { "did you mean kind '\($0)'?" }
                        ?? "no CustomResourceDefinition for it is installed or in the set"
                unknown.append(
                    "\(resource.location): \(resource.id): the cluster serves no kind \(spec.type.kind) in \(spec.type.apiVersion) (\(hint))"
                )
                continue
            }
            if !type.namespaced, let namespace = spec.namespace {
                unknown.append(
                    "\(resource.location): \(resource.id): \(spec.type.kind) is cluster-scoped; remove metadata.namespace (\(namespace))")
                continue
            }
            placed.append(
                Placed(
                    resource: resource, spec: spec, type: type, namespace: type.namespaced ? spec.namespace ?? defaultNamespace : nil,
                    served: served))
        }
        if !unknown.isEmpty {
            throw KubernetesError(.unknownKind, unknown.joined(separator: "\n"), hint: "nothing was changed")
        }
        return placed
    }

    /// The type a CustomResourceDefinition manifest will serve, before the server serves it.
    static func typeDefined(by definition: KubernetesObjectSpec, for type: GroupVersionKind) -> ResourceType? {
        guard let spec = definition.content["spec"], let plural = spec["names"]?["plural"]?.string else { return nil }
        let versions = (spec["versions"]?.array ?? []).compactMap { $0["name"]?.string }
        guard versions.contains(type.version) else { return nil }
        return ResourceType(type: type, plural: plural, namespaced: spec["scope"]?.string != "Cluster")
    }

    /// Every object of `types` carrying this instance's label, one paged list per type.
    private func listManaged(_ types: Set<ResourceType>, instance: String) async throws -> [(type: ResourceType, object: JSONValue)] {
        let selector = "\(OwnershipLabel.managedBy)=\(instance)"
        return try await withThrowingTaskGroup(of: [(type: ResourceType, object: JSONValue)].self) { group in
            for type in types {
                group.addTask { [self] in
                    try await list(type, labelSelector: selector).map { (type, $0) }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
    }

    /// All objects of a type in every namespace, 500 per page.
    func list(_ type: ResourceType, labelSelector: String? = nil) async throws -> [JSONValue] {
        var items: [JSONValue] = []
        var continueToken: String?
        repeat {
            var query = [("limit", "500")]
            if let labelSelector { query.append(("labelSelector", labelSelector)) }
            if let continueToken { query.append(("continue", continueToken)) }
            let page = try await client.send(.GET, type.path(namespace: nil), query: query, action: type.action("list"), allowing: [404])
            guard page.status == 200 else { return [] }
            items += page.body["items"]?.array ?? []
            continueToken = page.body["metadata"]?["continue"]?.string.flatMap { $0.isEmpty ? nil : $0 }
        } while continueToken != nil
        return items
    }

    /// Objects that exist under a desired name without this instance's label: found by name
    /// when few are missing, else by one unfiltered list per type.
    private func lookUp(_ missing: [Placed]) async throws -> [ObjectKey: JSONValue] {
        let byType = Dictionary(grouping: missing, by: \.type)
        return try await withThrowingTaskGroup(of: [ObjectKey: JSONValue].self) { group in
            for (type, objects) in byType {
                group.addTask { [self] in
                    let wanted = Set(objects.map(\.key))
                    var found: [ObjectKey: JSONValue] = [:]
                    if objects.count > 8 {
                        for object in try await list(type) {
                            let key = ObjectKey(
                                groupKind: type.type.groupKind, namespace: object["metadata"]?["namespace"]?.string,
                                name: object["metadata"]?["name"]?.string ?? "")
                            if wanted.contains(key) { found[key] = object }
                        }
                    } else {
                        for object in objects {
                            let response = try await client.send(
                                .GET, type.path(namespace: object.namespace, name: object.spec.name),
                                action: type.action("get", namespace: object.namespace, name: object.spec.name), allowing: [404])
                            if response.status == 200 { found[object.key] = response.body }
                        }
                    }
                    return found
                }
            }
            return try await group.reduce(into: [:]) { $0.merge($1) { first, _ in first } }
        }
    }

    /// The namespaces the placed objects go to that exist now: objects in the others cannot
    /// be dry-run before their Namespace is applied.
    private func existingNamespaces(for placed: [Placed]) async throws -> Set<String> {
        let wanted = Set(placed.compactMap(\.namespace))
        guard !wanted.isEmpty,
            let type = try await discovery.resourceType(for: GroupVersionKind(group: "", version: "v1", kind: "Namespace"))
        else { return [] }
        return Set(try await list(type).compactMap { $0["metadata"]?["name"]?.string }).intersection(wanted)
    }

    /// One desired object against what lives under its name.
    private func observe(_ object: Placed, live: JSONValue?, namespaceExists: Bool, instance: String) async throws -> ObservedResource? {
        let desiredFields = object.spec.desiredFields(metadata: object.resource.metadata)
        guard let live else {
            // New: validated by a dry-run when the server serves its kind already. One whose
            // Namespace comes in the same plan is tried in the default namespace: the fields
            // are checked the same way, before anything is changed.
            if object.served {
                var probe = object
                if !namespaceExists { probe.namespace = defaultNamespace }
                _ = try await apply(probe, instance: instance, dryRun: true, live: nil, conflictsMatter: namespaceExists)
            }
            return nil
        }
        let ownership = Self.ownership(of: live, instance: instance)
        guard ownership == .managed else {
            return ObservedResource(
                id: object.resource.id, fields: FieldMap(), ownership: ownership,
                externalID: object.type.path(namespace: object.namespace, name: object.spec.name))
        }
        let owned = ManagedFields(of: live, manager: Self.fieldManager) ?? .empty
        var fields = ObjectShape.fields(of: owned.project(live) ?? live, type: object.spec.type)
        if fields != desiredFields {
            let result = try await apply(object, instance: instance, dryRun: true, live: live)
            let union = owned.union(ManagedFields(of: result, manager: Self.fieldManager) ?? .empty)
            let before = ObjectShape.fields(of: union.project(live) ?? live, type: object.spec.type)
            let after = ObjectShape.fields(of: union.project(result) ?? result, type: object.spec.type)
            // The same values spelled differently (quantities, defaults filled in): in sync.
            fields = before == after ? desiredFields : before
        }
        return ObservedResource(
            id: object.resource.id, fields: fields, ownership: .managed,
            externalID: object.type.path(namespace: object.namespace, name: object.spec.name),
            dependencies: Self.dependencies(namespace: object.namespace, type: object.type))
    }

    static func ownership(of object: JSONValue, instance: String) -> ObservedResource.Ownership {
        switch object["metadata"]?["labels"]?[OwnershipLabel.managedBy]?.string {
        case instance?: return .managed
        case let other?: return .otherInstance(other)
        case nil: return .unmanaged
        }
    }

    /// What a live object must not outlive: its Namespace, and the CustomResourceDefinition
    /// of a custom resource; a prune deletes the object before them.
    static func dependencies(namespace: String?, type: ResourceType) -> [ResourceID] {
        var dependencies = namespace.map { [ResourceID(kind: "Namespace", name: $0)] } ?? []
        if !type.type.isBuiltIn {
            dependencies.append(ResourceID(kind: GroupVersionKind.customResourceDefinition, name: "\(type.plural).\(type.type.group)"))
        }
        return dependencies
    }

    private func liveOnly(_ object: JSONValue, key: ObjectKey, type: ResourceType, in set: ManifestSet) -> ObservedResource {
        let id = ResourceID(kind: type.type.qualifiedKind, name: key.namespace.map { "\($0)/\(key.name)" } ?? key.name)
        let owned = ManagedFields(of: object, manager: Self.fieldManager) ?? .empty
        var fields = ObjectShape.fields(of: owned.project(object) ?? object, type: type.type)
        // Policies match a delete by the labels the live object carries.
        let labels = (object["metadata"]?["labels"]?.objectFields ?? [:]).compactMapValues(\.string).filter {
            !$0.key.hasPrefix(OwnershipLabel.prefix)
        }
        fields["labels"] = labels.isEmpty ? nil : .stringMap(labels)
        return ObservedResource(
            id: id, fields: fields, ownership: .managed, externalID: type.path(namespace: key.namespace, name: key.name),
            dependencies: Self.dependencies(namespace: key.namespace, type: type))
    }
}
