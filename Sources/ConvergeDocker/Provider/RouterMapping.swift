import ConvergeCore
import Foundation

/// Translates between `Router` manifests and the containers that carry them.
enum RouterMapping {
    static let forwardingSysctl = "net.ipv4.ip_forward"

    /// A long-running container with the capabilities routing needs, forwarding set at
    /// creation (`/proc/sys` is read-only inside a container, so it cannot change later).
    static func create(_ resource: Resource, spec: RouterSpec, instance: String) -> (request: ContainerCreate, additional: [RouterSpec.Interface]) {
        let first = spec.interfaces.first
        let request = ContainerCreate(
            image: spec.image,
            cmd: ["sleep", "infinity"],
            labels: ownedLabels(resource, instance: instance),
            hostname: resource.metadata.name,
            hostConfig: DockerHostConfig(
                networkMode: first?.network,
                capAdd: spec.capabilities,
                sysctls: [forwardingSysctl: spec.forwarding ? "1" : "0"],
                restartPolicy: DockerRestartPolicy(name: "unless-stopped")),
            networkingConfig: first.map { DockerNetworkingConfig(endpointsConfig: [$0.network: DockerEndpointSettings(ipv4Address: $0.ipv4.description)]) })
        return (request, Array(spec.interfaces.dropFirst()))
    }

    static func observedFields(_ container: ContainerInspect, routes: [(destination: String, gateway: String)], frr: [String]?) -> FieldMap {
        var fields = FieldMap()
        fields["image"] = .string(container.config?.image ?? "")
        fields["labels"] = .stringMap(userLabels(container.config?.labels))
        var interfaces = FieldMap()
        for (name, endpoint) in container.networkSettings?.networks ?? [:] where !ContainerMapping.builtInNetworks.contains(name) {
            interfaces[name] = .string(endpoint.ipamConfig?.ipv4Address ?? endpoint.ipAddress ?? "")
        }
        fields["interfaces"] = .map(interfaces)
        fields["forwarding"] = .bool(container.hostConfig?.sysctls?[forwardingSysctl] == "1")
        fields["routes"] = .strings(routes.map { "\($0.destination) via \($0.gateway)" }.sorted())
        fields["capabilities"] = .strings((container.hostConfig?.capAdd ?? []).map { $0.uppercased().replacingOccurrences(of: "CAP_", with: "") }.sorted())
        if let frr { fields["frr"] = RouterSpec.frrField(frr) }
        return fields
    }
}
