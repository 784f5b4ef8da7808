import ConvergeCore

/// Translates between `Network` manifests and Docker networks.
enum NetworkMapping {
    static func create(_ resource: Resource, spec: NetworkSpec, instance: String) -> NetworkCreate {
        let pools = spec.subnet.map { [DockerIPAMPool(subnet: $0.description, gateway: spec.gateway?.description)] }
        return NetworkCreate(
            name: resource.metadata.name,
            driver: spec.driver,
            internal: spec.isInternal,
            labels: ownedLabels(resource, instance: instance),
            ipam: pools.map { DockerIPAM(driver: "default", config: $0) },
            checkDuplicate: true)
    }

    /// The network in the `Network` kind's field shape. Subnet and gateway are reported only
    /// when the manifest fixes them; otherwise they are the engine's choice, not drift.
    static func observedFields(_ network: NetworkInspect, desired: NetworkSpec?) -> FieldMap {
        var fields = FieldMap()
        fields["driver"] = .string(network.driver ?? "bridge")
        fields["internal"] = .bool(network.internal ?? false)
        fields["labels"] = .stringMap(userLabels(network.labels))
        let pool = network.ipam?.config?.first
        if desired?.subnet != nil, let subnet = pool?.subnet { fields["subnet"] = .string(subnet) }
        if desired?.gateway != nil, let gateway = pool?.gateway { fields["gateway"] = .string(gateway) }
        return fields
    }
}

/// The manifest's labels plus the two ownership labels.
func ownedLabels(_ resource: Resource, instance: String) -> [String: String] {
    var labels = resource.metadata.labels
    labels[OwnershipLabel.managedBy] = instance
    labels[OwnershipLabel.resource] = resource.id.description
    return labels
}

/// Labels as the manifest wrote them: Converge's own are hidden.
func userLabels(_ labels: [String: String]?) -> [String: String] {
    (labels ?? [:]).filter { !$0.key.hasPrefix(OwnershipLabel.prefix) }
}

/// How an object found on the engine relates to this instance.
func ownership(of labels: [String: String]?, instance: String) -> ObservedResource.Ownership {
    switch labels?[OwnershipLabel.managedBy] {
    case instance?: return .managed
    case let other?: return .otherInstance(other)
    case nil: return .unmanaged
    }
}
