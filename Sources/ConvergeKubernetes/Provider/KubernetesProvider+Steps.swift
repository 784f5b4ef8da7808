import ConvergeCore
import Foundation

extension KubernetesProvider {
    /// Server-side apply of `object` (a dry-run when asked). A conflict only with managers
    /// that changed fields imperatively (`kubectl edit`, `scale`: operation Update) is drift
    /// and is taken back; one with another applier is reported unless the object says
    /// `converge.dev/force-conflicts: "true"`. Field errors point at manifest lines.
    /// `conflictsMatter: false` (a dry-run standing in for an object elsewhere) ignores 409s.
    func apply(_ object: Placed, instance: String, dryRun: Bool, live: JSONValue?, conflictsMatter: Bool = true) async throws -> JSONValue {
        let body = ObjectShape.applyBody(object.spec, id: object.resource.id, namespace: object.namespace, instance: instance).serialized
        let path = object.type.path(namespace: object.namespace, name: object.spec.name)
        let action = object.type.action(dryRun ? "dry-run apply" : "apply", namespace: object.namespace, name: object.spec.name)
        func send(force: Bool) async throws -> KubernetesClient.Response {
            var query = [("fieldManager", Self.fieldManager)]
            if force { query.append(("force", "true")) }
            if dryRun { query.append(("dryRun", "All")) }
            return try await client.send(
                .PATCH, path, query: query, body: body, contentType: "application/apply-patch+yaml", action: action, allowing: [409])
        }
        do {
            var response = try await send(force: object.spec.forceConflicts)
            if response.status == 409 && !conflictsMatter { return response.body }
            if response.status == 409 {
                let managers = Self.conflictingManagers(response.body)
                var current = live
                if current == nil {
                    current = try await client.send(
                        .GET, path, action: object.type.action("get", namespace: object.namespace, name: object.spec.name)
                    ).body
                }
                let appliers = Set(
                    ManagedFields.others(in: current ?? .null, except: Self.fieldManager).filter { $0.operation == "Apply" }.map(\.manager))
                let blocking = managers.filter { appliers.contains($0) }
                guard blocking.isEmpty else {
                    let fields = (response.body["details"]?["causes"]?.array ?? []).compactMap { $0["field"]?.string }
                    throw KubernetesError(
                        .conflict,
                        "\(object.resource.id) (\(object.resource.location)): \(fields.joined(separator: ", ")) managed by \(blocking.sorted().joined(separator: ", "))"
                    )
                }
                response = try await send(force: true)
                if response.status == 409 {
                    throw KubernetesError(.conflict, "\(object.resource.id): \(response.body["message"]?.string ?? "conflict")")
                }
            }
            return response.body
        } catch var error as KubernetesError where error.code == .invalid {
            error.message = "\(object.resource.id) (\(object.resource.location)): \(error.message)"
            error.causes = error.causes.map { cause in
                let location = object.spec.locations.location(ofServerPath: cause.field, in: .object(object.spec.content))
                return (location.map { "\($0): \(cause.field)" } ?? cause.field, cause.message)
            }
            throw error
        }
    }

    /// The managers a 409's causes name (`conflict with "kubectl-edit" using apps/v1`).
    static func conflictingManagers(_ status: JSONValue) -> Set<String> {
        Set(
            (status["details"]?["causes"]?.array ?? []).compactMap { cause in
                guard let message = cause["message"]?.string, let open = message.firstIndex(of: "\"") else { return nil }
                let rest = message[message.index(after: open)...]
                return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
            })
    }

    // MARK: - Steps

    public func execute(
        _ step: PlanStep, change: ResourceChange, desired: Resource?, observed: ObservedResource?, in set: ManifestSet, instance: String
    ) async throws {
        switch step.action {
        case .create, .update:
            guard let desired else { throw KubernetesError(.notFound, "\(step.resource) is not in the manifests") }
            let object = try await placeForStep(desired, in: set)
            _ = try await apply(object, instance: instance, dryRun: false, live: nil)
            try await recordInInventory(object.type, instance: instance)
            try await waitUntilHealthy(object)
        case .delete:
            guard let observed else { return }
            try await delete(path: observed.externalID, id: step.resource, instance: instance)
        }
    }

    /// The step's object placed as at planning; a custom resource whose CRD was applied
    /// earlier in the run waits until discovery serves its kind.
    private func placeForStep(_ resource: Resource, in set: ManifestSet) async throws -> Placed {
        guard let spec = resource.spec(as: KubernetesObjectSpec.self) else {
            throw KubernetesError(.configuration, "\(resource.id) is not a Kubernetes object")
        }
        let deadline = ContinuousClock.now + spec.healthTimeout
        var delay = Duration.milliseconds(200)
        while true {
            if let type = try await discovery.resourceType(for: spec.type) {
                let namespace = type.namespaced ? spec.namespace ?? defaultNamespace : nil
                return Placed(resource: resource, spec: spec, type: type, namespace: namespace, served: true)
            }
            guard ContinuousClock.now < deadline else {
                throw KubernetesError(.unknownKind, "\(resource.id): the cluster does not serve \(spec.type) after \(spec.healthTimeout)")
            }
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(2))
        }
    }

    /// Deletes a managed object and waits until it is gone. A Namespace is left terminating
    /// after a short wait: its contents are finalized by the cluster's controllers, which may
    /// take long or never happen; it is no longer listed as managed once it terminates.
    private func delete(path: String, id: ResourceID, instance: String) async throws {
        let action = KubernetesClient.Action(verb: "delete", resource: id.kind, namespace: nil, name: id.name)
        let current = try await client.send(.GET, path, action: action, allowing: [404])
        guard current.status == 200 else { return }
        guard Self.ownership(of: current.body, instance: instance) == .managed else {
            throw KubernetesError(.conflict, "\(id) is no longer managed by this Converge instance; it was left alone")
        }
        _ = try await client.send(
            .DELETE, path, query: [("propagationPolicy", "Background")], action: action, allowing: [404])
        let isNamespace = id.kind == "Namespace"
        let deadline = ContinuousClock.now + (isNamespace ? .seconds(5) : .seconds(120))
        var delay = Duration.milliseconds(100)
        while ContinuousClock.now < deadline {
            let check = try await client.send(.GET, path, action: action, allowing: [404])
            if check.status == 404 || (isNamespace && check.body["status"]?["phase"]?.string == "Terminating") { return }
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(2))
        }
        throw KubernetesError(
            .server,
            "\(id) was deleted but is still there after two minutes (finalizers: \(current.body["metadata"]?["finalizers"]?.serialized ?? "none"))"
        )
    }

    /// For an update or delete: the object as Converge applied it (the fields its manager
    /// owns) or, for a delete, as it is; enough to apply it back. For a create: where the
    /// object will be, so a rollback can remove it. A Secret's data is sealed first.
    public func snapshot(_ step: PlanStep, observed: ObservedResource?, in set: ManifestSet, instance: String) async throws -> String? {
        let path: String
        if let observed {
            path = observed.externalID
        } else {
            guard let resource = set[step.resource] else { return nil }
            let placed = try await placeForStep(resource, in: set)
            path = placed.type.path(namespace: placed.namespace, name: placed.spec.name)
        }
        var record = Snapshot(path: path, object: nil, sealedData: nil)
        if step.action != .create {
            let live = try await client.send(
                .GET, path, action: .init(verb: "get", resource: step.resource.kind, name: step.resource.name), allowing: [404])
            if live.status == 200 {
                var object = ObjectShape.restorable(live.body)
                if step.action == .update, let owned = ManagedFields(of: live.body, manager: Self.fieldManager),
                    let projected = owned.project(object)
                {
                    object = projected.merging(identityOf: object)
                }
                if object["kind"]?.string == "Secret", object["apiVersion"]?.string == "v1", let data = object["data"] {
                    record.sealedData = try await SnapshotSeal(client: client, namespace: defaultNamespace, instance: instance).seal(
                        data.serialized)
                    object = object.setting("data", to: nil)
                }
                record.object = object
            }
        }
        return record.encoded
    }

    /// Removes what a create made, applies back what an update changed or a delete removed.
    public func compensate(_ step: PlanStep, snapshot: String?, instance: String) async throws {
        guard let snapshot, let record = Snapshot(decoding: snapshot) else { return }
        let action = KubernetesClient.Action(verb: "restore", resource: step.resource.kind, name: step.resource.name)
        guard var object = record.object else {
            // A create: remove the object if it is there and ours.
            try await delete(path: record.path, id: step.resource, instance: instance)
            return
        }
        if let sealed = record.sealedData {
            let data = try await SnapshotSeal(client: client, namespace: defaultNamespace, instance: instance).open(sealed)
            object = object.setting("data", to: try JSONValue.parse(Array(data.utf8)))
        }
        _ = try await client.send(
            .PATCH, record.path, query: [("fieldManager", Self.fieldManager), ("force", "true")], body: object.serialized,
            contentType: "application/apply-patch+yaml", action: action)
    }

    /// What a step's snapshot holds, as JSON in the journal.
    struct Snapshot {
        var path: String
        var object: JSONValue?
        /// A Secret's `data`, sealed with the cluster's snapshot key: never in the journal in clear.
        var sealedData: String?

        init(path: String, object: JSONValue?, sealedData: String?) {
            self.path = path
            self.object = object
            self.sealedData = sealedData
        }

        init?(decoding text: String) {
            guard let value = try? JSONValue.parse(Array(text.utf8)), let path = value["path"]?.string else { return nil }
            self.init(path: path, object: value["object"], sealedData: value["sealedData"]?.string)
        }

        var encoded: String {
            var fields: [String: JSONValue] = ["path": .string(path)]
            fields["object"] = object
            fields["sealedData"] = sealedData.map(JSONValue.string)
            return JSONValue.object(fields).serialized
        }
    }

    // MARK: - Inventory

    /// The ConfigMap (in the cluster's default namespace) listing the types this instance has
    /// applied: a plan lists them too, so objects of a kind no manifest uses any more are
    /// still found and pruned.
    func inventoryName(_ instance: String) -> String { "converge-inventory-\(instance)" }

    func inventory(instance: String) async throws -> [ResourceType] {
        let path = "/api/v1/namespaces/\(KubernetesClient.escape(defaultNamespace))/configmaps/\(inventoryName(instance))"
        let response = try await client.send(
            .GET, path, action: .init(verb: "get", resource: "configmaps", namespace: defaultNamespace, name: inventoryName(instance)),
            allowing: [404])
        guard response.status == 200 else { return [] }
        var types: [ResourceType] = []
        for key in (response.body["data"]?.objectFields ?? [:]).keys {
            let parts = key.split(separator: ".", maxSplits: 2).map(String.init)
            guard parts.count >= 2 else { continue }
            let type = GroupVersionKind(group: parts.count == 3 ? parts[2] : "", version: parts[1], kind: parts[0])
            if let served = try await discovery.resourceType(for: type) {
                types.append(served)
                inventoried.withLock { _ = $0.insert(type) }
            }
        }
        return types
    }

    private func recordInInventory(_ type: ResourceType, instance: String) async throws {
        guard inventoried.withLock({ $0.insert(type.type).inserted }) else { return }
        let key = [type.type.kind, type.type.version, type.type.group].filter { !$0.isEmpty }.joined(separator: ".")
        let name = inventoryName(instance)
        let namespace = defaultNamespace
        let collection = "/api/v1/namespaces/\(KubernetesClient.escape(namespace))/configmaps"
        let action = KubernetesClient.Action(verb: "update", resource: "configmaps", namespace: namespace, name: name)
        let patch = JSONValue.object(["data": .object([key: .string(type.plural)])]).serialized
        let patched = try await client.send(
            .PATCH, "\(collection)/\(name)", body: patch, contentType: "application/merge-patch+json", action: action, allowing: [404])
        guard patched.status == 404 else { return }
        let created = JSONValue.object([
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": .object(["name": .string(name), "labels": .object(["converge.dev/inventory-of": .string(instance)])]),
            "data": .object([key: .string(type.plural)]),
        ])
        let response = try await client.send(.POST, collection, body: created.serialized, action: action, allowing: [409])
        if response.status == 409 {
            _ = try await client.send(
                .PATCH, "\(collection)/\(name)", body: patch, contentType: "application/merge-patch+json", action: action)
        }
    }
}

extension JSONValue {
    /// This object with `key` set (or removed, for nil).
    func setting(_ key: String, to value: JSONValue?) -> JSONValue {
        guard case .object(var fields) = self else { return self }
        fields[key] = value
        return .object(fields)
    }

    /// A projection with the identity fields (`apiVersion`, `kind`, `metadata.name`,
    /// `metadata.namespace`) of `object` put back, so it can be applied.
    func merging(identityOf object: JSONValue) -> JSONValue {
        var result = self.setting("apiVersion", to: object["apiVersion"]).setting("kind", to: object["kind"])
        var metadata = result["metadata"]?.objectFields ?? [:]
        metadata["name"] = object["metadata"]?["name"]
        metadata["namespace"] = object["metadata"]?["namespace"]
        result = result.setting("metadata", to: .object(metadata))
        return result
    }
}
