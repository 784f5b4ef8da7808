import ConvergeCore

/// `Network`: a Docker network with an optional fixed IPv4 subnet.
///
/// ```yaml
/// kind: Network
/// metadata: {name: client-net}
/// spec:
///   subnet: 192.168.100.0/24
///   gateway: 192.168.100.1     # optional
///   internal: false            # true: no route to the outside
///   driver: bridge             # the default
/// ```
/// Docker cannot change a network in place, so every field forces a replacement (and the
/// containers on it are recreated with it).
public struct NetworkSpec: ResourceSpec {
    public static let kind = "Network"

    var host: TargetReference
    public var driver: String
    public var subnet: IPv4Network?
    public var gateway: IPv4Address?
    public var isInternal: Bool
    var subnetLocation: SourceLocation?

    public init(spec: MappingReader, metadata: Metadata) {
        host = .dockerHost(reading: spec)
        driver = spec.optional("driver")?.string ?? "bridge"
        isInternal = spec.optional("internal")?.bool ?? false
        if let node = spec.optional("subnet"), let text = node.string {
            subnetLocation = node.location
            if let network = IPv4Network(text) {
                if network.hasHostBits {
                    node.report("'\(text)' has host bits set", hint: "use the network address, \(network.networkAddress)/\(network.prefixLength)")
                } else if network.prefixLength > 30 {
                    node.report("'\(text)' leaves no room for containers", hint: "use a prefix of /30 or shorter")
                } else {
                    subnet = network
                }
            } else {
                node.report("'\(text)' is not an IPv4 CIDR", hint: "write it as 192.168.100.0/24")
            }
        }
        if let node = spec.optional("gateway"), let text = node.string {
            if let address = IPv4Address(text) {
                gateway = address
                if let subnet, !subnet.isUsableHost(address) {
                    node.report("gateway \(text) is not a usable address of subnet \(subnet)")
                } else if spec.optional("subnet") == nil {
                    node.report("a gateway needs a subnet", hint: "add spec.subnet")
                }
            } else {
                node.report("'\(text)' is not an IPv4 address")
            }
        }
    }

    public func references(in set: ManifestSet) -> [Reference] {
        host.reference(in: set).map { [$0] } ?? []
    }

    public func target(in set: ManifestSet) -> ResourceID? { host.resolve(in: set) }

    public func validate(_ resource: Resource, in set: ManifestSet, collector: DiagnosticCollector) {
        host.validate(in: set, collector: collector)
    }

    /// Subnets on one host must not overlap: sorted by first address, each is compared with
    /// the one reaching furthest among those before it.
    public static func validate(_ resources: [Resource], in set: ManifestSet, collector: DiagnosticCollector) {
        let byHost = Dictionary(grouping: resources.compactMap { resource -> (ResourceID?, Resource, IPv4Network)? in
            guard let spec = resource.spec(as: NetworkSpec.self), let subnet = spec.subnet else { return nil }
            return (spec.target(in: set), resource, subnet)
        }, by: { $0.0 })
        for (_, networks) in byHost.sorted(by: { ($0.key?.name ?? "") < ($1.key?.name ?? "") }) {
            let sorted = networks.sorted { ($0.2.networkAddress, $0.1.id) < ($1.2.networkAddress, $1.1.id) }
            var widest: (Resource, IPv4Network)?
            for (_, resource, subnet) in sorted {
                if let (other, otherSubnet) = widest, otherSubnet.broadcastAddress >= subnet.networkAddress {
                    let spec = resource.spec(as: NetworkSpec.self)
                    collector.report(Diagnostic(
                        "spec.subnet: \(subnet) overlaps \(otherSubnet) of \(other.id) on the same host",
                        at: spec?.subnetLocation ?? resource.location, resource: resource.id,
                        hint: "give each network its own address range"))
                }
                if widest == nil || subnet.broadcastAddress > widest!.1.broadcastAddress { widest = (resource, subnet) }
            }
        }
    }

    public func desiredFields(metadata: Metadata) -> FieldMap {
        var fields = FieldMap()
        fields["driver"] = .string(driver)
        fields["internal"] = .bool(isInternal)
        fields["labels"] = .stringMap(metadata.labels)
        if let subnet { fields["subnet"] = .string(subnet.description) }
        if let gateway { fields["gateway"] = .string(gateway.description) }
        return fields
    }
}
