import ConvergeCore

/// `Probe`: a reachability check run from inside a container or router.
///
/// ```yaml
/// kind: Probe
/// metadata: {name: s1-http}
/// spec:
///   from: s1-client              # a Container or Router
///   to: s1-server                # a Container or Router (its first address), or an IPv4 address
///   type: http                   # icmp | tcp | http
///   port: 80                     # tcp and http (http defaults to 80)
///   path: /                      # http
///   expectStatus: 200            # http
///   expect: reachable            # or unreachable
///   timeout: 2s
///   retries: 1                   # extra attempts before the result counts
/// ```
/// Probes are not live objects: they run after every applied run (their results go into the
/// run's report) and as the verification of a guarded change (`FirewallPolicy.verify`).
public struct ProbeSpec: ResourceSpec {
    public static let kind = "Probe"
    public static let isLiveObject = false

    public enum ProbeType: String, Sendable, Codable {
        case icmp, tcp, http
    }

    public var from: String
    public var to: String
    public var type: ProbeType
    public var port: Int?
    public var path: String
    public var expectStatus: Int
    public var expectReachable: Bool
    public var timeoutSeconds: Int
    public var retries: Int
    var fromLocation: SourceLocation
    var toLocation: SourceLocation

    public init(spec: MappingReader, metadata: Metadata) {
        let fromNode = spec.required("from", hint: "the Container or Router the probe runs in")
        from = fromNode?.string ?? ""
        fromLocation = fromNode?.location ?? spec.location
        let toNode = spec.required("to", hint: "a Container, a Router or an IPv4 address")
        to = toNode?.string ?? ""
        toLocation = toNode?.location ?? spec.location
        type = .icmp
        if let node = spec.required("type", hint: "icmp, tcp or http"), let text = node.string {
            if let value = ProbeType(rawValue: text) { type = value } else {
                node.report("unknown probe type '\(text)'", hint: "use icmp, tcp or http")
            }
        }
        port = spec.optional("port")?.int
        if let port, !(1...65535).contains(port) { spec.optional("port")?.report("port \(port) is out of range", hint: "use 1-65535") }
        if type == .icmp, port != nil { spec.optional("port")?.report("an icmp probe has no port") }
        if type == .tcp, port == nil { _ = spec.required("port", hint: "a tcp probe connects to a port") }
        if type == .http, port == nil { port = 80 }
        path = spec.optional("path")?.string ?? "/"
        expectStatus = spec.optional("expectStatus")?.int ?? 200
        expectReachable = true
        if let node = spec.optional("expect"), let text = node.string {
            switch text {
            case "reachable": expectReachable = true
            case "unreachable": expectReachable = false
            default: node.report("invalid expectation '\(text)'", hint: "use reachable or unreachable")
            }
        }
        timeoutSeconds = 2
        if let node = spec.optional("timeout"), let text = node.string {
            if let nanoseconds = DurationText.nanoseconds(text), nanoseconds >= 1_000_000_000 {
                timeoutSeconds = Int(nanoseconds / 1_000_000_000)
            } else {
                node.report("'\(text)' is not a duration of at least 1s", hint: "write it as 2s")
            }
        }
        retries = spec.optional("retries")?.int ?? 0
    }

    /// The resource the probe runs in: a Container, or else a Router of that name.
    public func source(in set: ManifestSet) -> ResourceID {
        let container = ResourceID(kind: ContainerSpec.kind, name: from)
        let router = ResourceID(kind: RouterSpec.kind, name: from)
        return set[container] == nil && set[router] != nil ? router : container
    }

    /// The address to reach: literal, or the first fixed address of the named resource.
    public func destinationAddress(in set: ManifestSet) -> IPv4Address? {
        if let address = IPv4Address(to) { return address }
        if let container = set[ResourceID(kind: ContainerSpec.kind, name: to)]?.spec(as: ContainerSpec.self) {
            return container.networks.lazy.compactMap(\.ipv4).first
        }
        return set[ResourceID(kind: RouterSpec.kind, name: to)]?.spec(as: RouterSpec.self)?.interfaces.first?.ipv4
    }

    public func references(in set: ManifestSet) -> [Reference] {
        var references = [Reference(target: source(in: set), field: "spec.from", location: fromLocation)]
        if IPv4Address(to) == nil {
            let container = ResourceID(kind: ContainerSpec.kind, name: to)
            let router = ResourceID(kind: RouterSpec.kind, name: to)
            references.append(Reference(target: set[container] == nil && set[router] != nil ? router : container, field: "spec.to", location: toLocation))
        }
        return references
    }

    public func target(in set: ManifestSet) -> ResourceID? { nil }

    public func validate(_ resource: Resource, in set: ManifestSet, collector: DiagnosticCollector) {
        if IPv4Address(to) == nil, set[ResourceID(kind: ContainerSpec.kind, name: to)] != nil || set[ResourceID(kind: RouterSpec.kind, name: to)] != nil,
           destinationAddress(in: set) == nil {
            collector.report("spec.to: '\(to)' has no fixed ipv4 to probe", at: toLocation, hint: "give it a fixed address, or probe an address")
        }
    }

    /// A one-line description for reports: `icmp s1-client -> 192.168.200.10`.
    public func summary(in set: ManifestSet) -> String {
        let address = destinationAddress(in: set)?.description ?? to
        switch type {
        case .icmp: return "icmp \(from) -> \(address)"
        case .tcp: return "tcp \(from) -> \(address):\(port ?? 0)"
        case .http: return "http \(from) -> http://\(address):\(port ?? 80)\(path)"
        }
    }
}
