import ConvergeCore

/// `Router`: a container on a DockerHost that forwards between the networks it sits on.
///
/// ```yaml
/// kind: Router
/// metadata: {name: s1-router}
/// spec:
///   image: converge-lab/router:1       # the default: iproute2, nftables, iptables, FRR
///   interfaces:
///     - {network: s1-client-net, ipv4: 192.168.100.254}
///     - {network: s1-server-net, ipv4: 192.168.200.254}
///   forwarding: true                   # the default
///   routes: [{to: 10.50.0.0/16, via: 192.168.100.20}]
///   frr:                               # optional: FRR's daemons run in the router
///     staticRoutes: [{to: 10.60.0.0/16, via: 192.168.200.20}]
///     ospf:
///       routerId: 1.1.1.1
///       networks: [{prefix: 192.168.100.0/24, area: 0}]
/// ```
/// FRR's configuration is applied by delta, as `frr-reload.py` does: only the lines that
/// differ are removed or added through `vtysh`, never by wiping the running configuration.
/// Interfaces and routes change in place (attach, `ip route` in the router's namespace);
/// a new image or forwarding setting recreates it (`/proc/sys` is read-only in a container).
public struct RouterSpec: ResourceSpec {
    public static let kind = "Router"
    public static let defaultImage = "converge-lab/router:1"

    public struct Interface: Sendable, Hashable {
        public var network: String
        public var ipv4: IPv4Address
        var location: SourceLocation
    }

    public struct Route: Sendable, Hashable {
        public var destination: IPv4Network
        public var gateway: IPv4Address
        var location: SourceLocation

        /// `10.50.0.0/16 via 192.168.100.20`, as `ip route` shows it.
        public var canonical: String { "\(destination) via \(gateway)" }
    }

    /// The part of FRR's configuration Converge manages: static routes and OSPF.
    public struct FRRConfig: Sendable, Hashable {
        public var staticRoutes: [Route]
        public var ospfRouterID: IPv4Address?
        public var ospfNetworks: [(prefix: IPv4Network, area: String)]
        public var hasOSPF: Bool

        public static func == (lhs: FRRConfig, rhs: FRRConfig) -> Bool { lhs.lines == rhs.lines }
        public func hash(into hasher: inout Hasher) { hasher.combine(lines) }

        /// The configuration as `show running-config` prints it; lines inside `router ospf`
        /// are prefixed `router ospf/` so one flat list holds both families.
        public var lines: [String] {
            var lines = staticRoutes.map { "ip route \($0.destination) \($0.gateway)" }
            if hasOSPF {
                lines.append("router ospf")
                if let ospfRouterID { lines.append("router ospf/ospf router-id \(ospfRouterID)") }
                lines += ospfNetworks.map { "router ospf/network \($0.prefix) area \($0.area)" }
            }
            return lines.sorted()
        }
    }

    var host: TargetReference
    public var image: String
    public var interfaces: [Interface]
    public var forwarding: Bool
    public var routes: [Route]
    public var frr: FRRConfig?

    public init(spec: MappingReader, metadata: Metadata) {
        host = .dockerHost(reading: spec)
        image = spec.optional("image")?.string ?? Self.defaultImage
        forwarding = spec.optional("forwarding")?.bool ?? true
        interfaces = []
        if let items = spec.required("interfaces", hint: "the networks the router joins, each with a fixed ipv4")?.list {
            for item in items {
                guard let reader = item.mapping else { continue }
                let network = reader.required("network")?.string
                let ipNode = reader.required("ipv4", hint: "a router needs a fixed address on each network")
                let ip = ipNode?.string.flatMap { text -> IPv4Address? in
                    guard let address = IPv4Address(text) else {
                        ipNode?.report("'\(text)' is not an IPv4 address")
                        return nil
                    }
                    return address
                }
                reader.finish()
                if let network, let ip {
                    interfaces.append(Interface(network: network, ipv4: ip, location: ipNode?.location ?? item.location))
                }
            }
        }
        routes = (spec.optional("routes")?.list ?? []).compactMap(Self.decodeRoute)
        frr = spec.optional("frr")?.mapping.map(Self.decodeFRR)
    }

    private static func decodeFRR(_ reader: MappingReader) -> FRRConfig {
        defer { reader.finish() }
        var config = FRRConfig(staticRoutes: (reader.optional("staticRoutes")?.list ?? []).compactMap(decodeRoute),
                               ospfRouterID: nil, ospfNetworks: [], hasOSPF: false)
        guard let ospf = reader.optional("ospf")?.mapping else { return config }
        defer { ospf.finish() }
        config.hasOSPF = true
        if let node = ospf.optional("routerId"), let text = node.string {
            if let address = IPv4Address(text) { config.ospfRouterID = address } else { node.report("'\(text)' is not a router id (an IPv4 address)") }
        }
        for item in ospf.optional("networks")?.list ?? [] {
            guard let network = item.mapping else { continue }
            defer { network.finish() }
            let prefixNode = network.required("prefix")
            let areaNode = network.required("area", hint: "an OSPF area: a number or a dotted quad, e.g. 0")
            guard let prefixText = prefixNode?.string, let areaText = areaNode?.string else { continue }
            guard let prefix = IPv4Network(prefixText), !prefix.hasHostBits else {
                prefixNode?.report("'\(prefixText)' is not an IPv4 network in CIDR notation")
                continue
            }
            // FRR prints an area as it was entered; Converge always enters the dotted form.
            let area = IPv4Address(areaText) ?? UInt32(areaText).map(IPv4Address.init)
            guard let area else {
                areaNode?.report("'\(areaText)' is not an OSPF area", hint: "use a number or a dotted quad, e.g. 0 or 0.0.0.0")
                continue
            }
            config.ospfNetworks.append((prefix, area.description))
        }
        return config
    }

    /// FRR's daemons need CAP_SYS_ADMIN besides the routing capabilities.
    public var capabilities: [String] {
        frr == nil ? ["NET_ADMIN", "NET_RAW"] : ["NET_ADMIN", "NET_RAW", "SYS_ADMIN"]
    }

    /// `{to: CIDR, via: IP}`; shared with containers, whose `via` may also name a router.
    static func decodeRoute(_ node: ManifestNode) -> Route? {
        guard let reader = node.mapping else { return nil }
        defer { reader.finish() }
        let toNode = reader.required("to", hint: "the destination network, e.g. 192.168.200.0/24")
        let viaNode = reader.required("via")
        guard let toText = toNode?.string, let viaText = viaNode?.string else { return nil }
        guard let destination = IPv4Network(toText), !destination.hasHostBits else {
            toNode?.report("'\(toText)' is not an IPv4 network in CIDR notation", hint: "write it as 192.168.200.0/24")
            return nil
        }
        guard let gateway = IPv4Address(viaText) else {
            viaNode?.report("'\(viaText)' is not an IPv4 address")
            return nil
        }
        return Route(destination: destination, gateway: gateway, location: node.location)
    }

    public func references(in set: ManifestSet) -> [Reference] {
        var references = host.reference(in: set).map { [$0] } ?? []
        for (index, interface) in interfaces.enumerated() {
            references.append(Reference(target: ResourceID(kind: NetworkSpec.kind, name: interface.network),
                                        field: "spec.interfaces[\(index)].network", location: interface.location, bindsLifetime: true))
        }
        return references
    }

    public func target(in set: ManifestSet) -> ResourceID? { host.resolve(in: set) }

    public func validate(_ resource: Resource, in set: ManifestSet, collector: DiagnosticCollector) {
        host.validate(in: set, collector: collector)
        var seen: Set<String> = []
        for interface in interfaces {
            if !seen.insert(interface.network).inserted {
                collector.report("spec.interfaces: two interfaces on network '\(interface.network)'", at: interface.location,
                                 hint: "a router has one interface per network")
            }
            let networkID = ResourceID(kind: NetworkSpec.kind, name: interface.network)
            guard let subnet = set[networkID]?.spec(as: NetworkSpec.self)?.subnet else {
                if set[networkID] != nil {
                    collector.report("spec.interfaces: \(networkID) has no subnet for \(interface.ipv4)", at: interface.location, hint: "add spec.subnet to the network")
                }
                continue
            }
            if !subnet.isUsableHost(interface.ipv4) {
                collector.report("spec.interfaces: \(interface.ipv4) is outside subnet \(subnet) of \(networkID)", at: interface.location)
            }
        }
        for route in routes where !interfaces.contains(where: { interface in
            set[ResourceID(kind: NetworkSpec.kind, name: interface.network)]?.spec(as: NetworkSpec.self)?.subnet?.contains(route.gateway) ?? true
        }) {
            collector.report("spec.routes: gateway \(route.gateway) is on none of the router's networks", at: route.location)
        }
    }

    public func desiredFields(metadata: Metadata) -> FieldMap {
        var fields = FieldMap()
        fields["image"] = .string(image)
        fields["interfaces"] = .map(FieldMap(Dictionary(uniqueKeysWithValues: interfaces.map { ($0.network, FieldValue.string($0.ipv4.description)) })))
        fields["forwarding"] = .bool(forwarding)
        fields["routes"] = .strings(routes.map(\.canonical).sorted())
        fields["labels"] = .stringMap(metadata.labels)
        fields["capabilities"] = .strings(capabilities)
        if let frr { fields["frr"] = Self.frrField(frr.lines) }
        return fields
    }

    /// FRR lines as a set-like map (line → true), so the plan shows each line added or
    /// removed (`+ frr.ip route 10.98.0.0/16 10.81.1.10`) rather than one long list.
    public static func frrField(_ lines: [String]) -> FieldValue {
        .map(FieldMap(Dictionary(lines.map { ($0, FieldValue.bool(true)) }, uniquingKeysWith: { first, _ in first })))
    }

    public static func changeMode(forField field: String) -> ChangeMode {
        ["interfaces", "routes", "frr"].contains(field) ? .inPlace : .replace
    }

    /// The router's address on `network`, for containers that route through it.
    public func address(on network: String) -> IPv4Address? {
        interfaces.first { $0.network == network }?.ipv4
    }
}
