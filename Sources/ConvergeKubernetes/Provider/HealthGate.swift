import ConvergeCore

extension KubernetesProvider {
    /// Waits after an apply until the object is healthy, by kind: workloads rolled out
    /// (observed generation, updated and available replicas), a Job complete, a CRD
    /// Established and its kind served, a Namespace Active; anything else once it exists.
    /// A Job that failed fails at once; the rest fail at the object's health timeout.
    func waitUntilHealthy(_ object: Placed) async throws {
        let path = object.type.path(namespace: object.namespace, name: object.spec.name)
        let action = object.type.action("get", namespace: object.namespace, name: object.spec.name)
        let deadline = ContinuousClock.now + object.spec.healthTimeout
        var delay = Duration.milliseconds(100)
        var verdict = "not read yet"
        while true {
            let live = try await client.send(.GET, path, action: action).body
            switch Self.health(of: live, type: object.spec.type) {
            case .healthy:
                if object.spec.type.groupKind == GroupVersionKind.customResourceDefinition {
                    try await waitUntilServed(live, deadline: deadline)
                }
                return
            case .failed(let reason):
                throw KubernetesError(.unhealthy, "\(object.resource.id) failed its health check: \(reason)")
            case .progressing(let reason):
                verdict = reason
            }
            guard ContinuousClock.now < deadline else {
                throw KubernetesError(
                    .unhealthy, "\(object.resource.id) was not healthy within \(object.spec.healthTimeout): \(verdict)",
                    hint: "the annotation \(KubernetesObjectSpec.Annotation.healthTimeout) sets how long to wait")
            }
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(2))
        }
    }

    enum Health: Equatable {
        case healthy
        case progressing(String)
        case failed(String)
    }

    static func health(of object: JSONValue, type: GroupVersionKind) -> Health {
        let generation = object["metadata"]?["generation"]?.int ?? 0
        let status = object["status"] ?? .object([:])
        let observed = status["observedGeneration"]?.int ?? 0
        func condition(_ name: String) -> String? {
            status["conditions"]?.array?.first { $0["type"]?.string == name }?["status"]?.string
        }
        switch type.groupKind {
        case "Deployment.apps", "StatefulSet.apps":
            let wanted = object["spec"]?["replicas"]?.int ?? 1
            let updated = status["updatedReplicas"]?.int ?? 0
            let ready = status[type.kind == "Deployment" ? "availableReplicas" : "readyReplicas"]?.int ?? 0
            guard observed >= generation else { return .progressing("the controller has not observed generation \(generation) yet") }
            guard updated >= wanted, ready >= wanted else {
                return .progressing("\(updated) of \(wanted) replicas updated, \(ready) ready")
            }
            return .healthy
        case "DaemonSet.apps":
            let wanted = status["desiredNumberScheduled"]?.int ?? 0
            let updated = status["updatedNumberScheduled"]?.int ?? 0
            let available = status["numberAvailable"]?.int ?? 0
            guard observed >= generation else { return .progressing("the controller has not observed generation \(generation) yet") }
            guard updated >= wanted, available >= wanted else {
                return .progressing("\(updated) of \(wanted) pods updated, \(available) available")
            }
            return .healthy
        case "Job.batch":
            if condition("Failed") == "True" { return .failed("the Job failed") }
            return condition("Complete") == "True" ? .healthy : .progressing("the Job has not completed")
        case GroupVersionKind.customResourceDefinition:
            return condition("Established") == "True" ? .healthy : .progressing("the CRD is not Established")
        case "Namespace":
            return status["phase"]?.string == "Active"
                ? .healthy : .progressing("the Namespace is \(status["phase"]?.string ?? "not active")")
        default:
            return .healthy
        }
    }

    /// A CRD is usable once discovery lists its kind: custom resources applied after it rely
    /// on that.
    private func waitUntilServed(_ definition: JSONValue, deadline: ContinuousClock.Instant) async throws {
        guard let spec = definition["spec"], let group = spec["group"]?.string, let kind = spec["names"]?["kind"]?.string else { return }
        for version in (spec["versions"]?.array ?? []).compactMap({ $0["name"]?.string }) {
            var delay = Duration.milliseconds(100)
            while try await discovery.resourceType(for: GroupVersionKind(group: group, version: version, kind: kind)) == nil {
                guard ContinuousClock.now < deadline else {
                    throw KubernetesError(
                        .unhealthy, "the API server does not serve \(kind) in \(group)/\(version) although its CRD is Established")
                }
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(1))
            }
        }
    }
}
