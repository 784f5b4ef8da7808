import ConvergeCore

/// `FirewallPolicy`: the ordered forwarding rules of one `Router`, applied as one nftables
/// table in the router (see `NftablesRuleset`).
///
/// ```yaml
/// kind: FirewallPolicy
/// metadata: {name: s1-edge}
/// spec:
///   router: s1-router            # a Router manifest
///   defaultAction: drop          # accept | drop: forwarded traffic no rule matches
///   rules:                       # in order; the first match decides
///     - name: allow-icmp
///       action: accept           # accept | drop | reject
///       protocol: icmp           # icmp | tcp | udp | any (the default)
///       source: 192.168.100.0/24 # CIDR or address
///       destination: 192.168.200.0/24
///       icmpTypes: [echo-request, echo-reply]   # icmp only
///     - name: allow-http
///       action: accept
///       protocol: tcp
///       ports: [80, 443, "8000-8080"]           # tcp/udp only: destination ports
///       state: [new, established, related]      # conntrack states
///   verify: [s1-ping, s1-http]   # Probe manifests that confirm a change, else it is undone
///   verifyTimeout: 30s           # deadline for those probes
/// ```
/// Every change is applied in place, as one nftables transaction: replacing a firewall never
/// means a moment without one.
public struct FirewallPolicySpec: ResourceSpec {
    public static let kind = "FirewallPolicy"
    public static let defaultVerifyTimeout: Int64 = 30_000_000_000

    /// The name of the Router the rules are applied in.
    public var router: String
    /// The forward chain's policy: nftables base chains take only accept or drop.
    public var defaultAction: FirewallRule.Action
    public var rules: [FirewallRule]
    /// Probe names run after a change; not live state, so never compared by the diff.
    public var verify: [String]
    /// Nanoseconds the verification probes may take in all.
    public var verifyTimeout: Int64
    var routerLocation: SourceLocation
    var verifyLocations: [SourceLocation]

    /// A policy built in code (tests, benchmarks); rule names must be unique.
    public init(router: String, defaultAction: FirewallRule.Action, rules: [FirewallRule], verify: [String] = [],
                verifyTimeout: Int64 = FirewallPolicySpec.defaultVerifyTimeout) {
        self.router = router
        self.defaultAction = defaultAction
        self.rules = rules
        self.verify = verify
        self.verifyTimeout = verifyTimeout
        let nowhere = SourceLocation(file: "", line: 1, column: 1)
        routerLocation = nowhere
        verifyLocations = verify.map { _ in nowhere }
    }

    /// Nil when `router` is missing: a policy for no router cannot be referenced or planned,
    /// and leaving it out spares a second, confusing "Router/ is not defined" error.
    public init?(spec: MappingReader, metadata: Metadata) {
        let routerNode = spec.required("router", hint: "the name of the Router manifest these rules apply to")
        let routerName = routerNode?.string
        routerLocation = routerNode?.location ?? spec.location

        defaultAction = .drop
        if let node = spec.required("defaultAction", hint: "accept or drop: what happens to forwarded traffic no rule matches"),
           let text = node.string {
            if let action = FirewallRule.Action(rawValue: text) {
                if action == .reject {
                    node.report("the default action cannot be reject", hint: "nftables chain policies are accept or drop; end the rules with one that rejects everything")
                } else {
                    defaultAction = action
                }
            } else {
                node.report("unknown default action '\(text)'", hint: Self.suggestion(for: text, among: ["accept", "drop"], or: "use accept or drop"))
            }
        }

        rules = []
        var firstUse: [String: String] = [:]
        for item in spec.optional("rules")?.list ?? [] {
            let decoded = Self.decodeRule(item)
            // Names are checked even on rules with other errors, so both are reported at once.
            guard let nameNode = decoded.nameNode, let name = decoded.name else { continue }
            if let first = firstUse[name] {
                nameNode.report("duplicate rule name '\(name)', also used by \(first)", hint: "rule names must be unique within a policy")
                continue
            }
            firstUse[name] = nameNode.path
            if let rule = decoded.rule { rules.append(rule) }
        }

        verify = []
        verifyLocations = []
        for item in spec.optional("verify")?.list ?? [] {
            guard let name = item.string else { continue }
            if verify.contains(name) {
                item.report("probe '\(name)' is listed twice")
                continue
            }
            verify.append(name)
            verifyLocations.append(item.location)
        }

        verifyTimeout = Self.defaultVerifyTimeout
        if let node = spec.optional("verifyTimeout"), let text = node.string {
            if let nanoseconds = DurationText.nanoseconds(text), nanoseconds > 0 {
                verifyTimeout = nanoseconds
            } else {
                node.report("'\(text)' is not a positive duration", hint: "write it as 30s or 1m30s")
            }
        }

        guard let routerName else {
            spec.finish()
            return nil
        }
        router = routerName
    }

    /// The rule when it is valid, and its name when it has one.
    private static func decodeRule(_ node: ManifestNode) -> (rule: FirewallRule?, name: String?, nameNode: ManifestNode?) {
        guard let reader = node.mapping else { return (nil, nil, nil) }
        defer { reader.finish() }
        var valid = true

        let nameNode = reader.required("name", hint: "each rule needs a name; it labels the rule on the router and in plans")
        let name = nameNode?.string
        if let name, !FirewallRule.isValidName(name) {
            nameNode?.report("invalid rule name '\(name)'", hint: "use letters, digits, '-', '_' or '.', starting with a letter or digit, at most \(FirewallRule.maximumNameLength) characters")
            valid = false
        }

        var action: FirewallRule.Action?
        if let actionNode = reader.required("action", hint: "accept, drop or reject"), let text = actionNode.string {
            action = FirewallRule.Action(rawValue: text)
            if action == nil {
                actionNode.report("unknown action '\(text)'", hint: suggestion(for: text, among: FirewallRule.Action.allCases.map(\.rawValue), or: "use accept, drop or reject"))
            }
        }

        var ipProtocol = FirewallRule.IPProtocol.any
        if let protocolNode = reader.optional("protocol"), let text = protocolNode.string {
            if let value = FirewallRule.IPProtocol(rawValue: text) {
                ipProtocol = value
            } else {
                protocolNode.report("unknown protocol '\(text)'", hint: suggestion(for: text, among: FirewallRule.IPProtocol.allCases.map(\.rawValue), or: "use icmp, tcp, udp or any"))
                valid = false
            }
        }

        let source = decodeAddress(reader.optional("source"), valid: &valid)
        let destination = decodeAddress(reader.optional("destination"), valid: &valid)

        var ports: [FirewallRule.PortRange] = []
        if let portsNode = reader.optional("ports"), let items = portsNode.list {
            ports = decodePorts(items, valid: &valid)
            if !items.isEmpty {
                switch ipProtocol {
                case .tcp, .udp:
                    break
                case .icmp:
                    portsNode.report("a port on an ICMP rule", hint: "ICMP has no ports; set protocol: tcp or udp, or remove ports")
                    valid = false
                case .any:
                    portsNode.report("a port on a rule for any protocol", hint: "ports need protocol: tcp or udp")
                    valid = false
                }
            }
        }

        var icmpTypes: [FirewallRule.ICMPType] = []
        if let typesNode = reader.optional("icmpTypes"), let items = typesNode.list {
            icmpTypes = decodeNames(items, what: "ICMP type", valid: &valid)
            if !items.isEmpty, ipProtocol != .icmp {
                let on = ipProtocol == .any ? "a rule for any protocol" : "a \(ipProtocol.rawValue.uppercased()) rule"
                typesNode.report("ICMP types on \(on)", hint: "icmpTypes need protocol: icmp")
                valid = false
            }
        }

        var states: [FirewallRule.ConnectionState] = []
        if let stateNode = reader.optional("state"), let items = stateNode.list {
            states = decodeNames(items, what: "connection state", valid: &valid)
        }

        guard valid, let name, let action else { return (nil, name, nameNode) }
        let rule = FirewallRule(name: name, action: action, ipProtocol: ipProtocol, source: source, destination: destination,
                                ports: ports, icmpTypes: icmpTypes, states: states)
        return (rule, name, nameNode)
    }

    /// An address is a /32; a CIDR must be a network address, as elsewhere in manifests,
    /// because `192.168.100.5/24` is usually a typo for one of two different things.
    private static func decodeAddress(_ node: ManifestNode?, valid: inout Bool) -> IPv4Network? {
        guard let node, let text = node.string else { return nil }
        let written = text.contains("/") ? text : "\(text)/32"
        guard let network = IPv4Network(written) else {
            node.report("'\(text)' is not an IPv4 address or CIDR", hint: "write it as 192.168.100.0/24 or 192.168.100.10")
            valid = false
            return nil
        }
        if network.hasHostBits {
            node.report("'\(text)' has host bits set", hint: "use the network address, \(network.networkAddress)/\(network.prefixLength), or a single address")
            valid = false
            return nil
        }
        return network
    }

    /// Ports are numbers or `"8000-8080"` ranges; a port listed twice (or inside a range also
    /// listed) is reported, since it is most likely a typo for another port.
    private static func decodePorts(_ items: [ManifestNode], valid: inout Bool) -> [FirewallRule.PortRange] {
        var parsed: [(range: FirewallRule.PortRange, node: ManifestNode)] = []
        for item in items {
            guard let text = item.string else {
                valid = false
                continue
            }
            let bounds = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            let numbers = bounds.map { bound in bound.allSatisfy { $0.isASCII && $0.isNumber } && !bound.isEmpty && bound.count <= 6 ? Int(bound) : nil }
            guard let lower = numbers.first ?? nil, let upper = numbers.last ?? nil else {
                item.report("'\(text)' is not a port or port range", hint: "write 80 or \"8000-8080\"")
                valid = false
                continue
            }
            if let outside = [lower, upper].first(where: { !FirewallRule.PortRange.valid.contains($0) }) {
                item.report("port \(outside) is out of range", hint: "use 1-65535")
                valid = false
                continue
            }
            guard let range = FirewallRule.PortRange(lower: lower, upper: upper) else {
                item.report("port range '\(text)' is reversed", hint: "write the lower port first: \(upper)-\(lower)")
                valid = false
                continue
            }
            parsed.append((range, item))
        }
        // Each entry against those written before it, so the later one is blamed; port lists
        // are short, so comparing pairs costs nothing.
        for (index, entry) in parsed.enumerated() {
            guard let earlier = parsed[..<index].first(where: { $0.range.lower <= entry.range.upper && entry.range.lower <= $0.range.upper }) else { continue }
            let message = entry.range == earlier.range ? "port \(entry.range) is listed twice" : "port \(entry.range) overlaps \(earlier.range)"
            entry.node.report(message, hint: "list each port once")
            valid = false
        }
        return parsed.map(\.range)
    }

    /// Decodes a list of names of a `RawRepresentable` enumeration (ICMP types, states).
    private static func decodeNames<Value: RawRepresentable & CaseIterable & Hashable>(
        _ items: [ManifestNode], what: String, valid: inout Bool
    ) -> [Value] where Value.RawValue == String {
        var values: [Value] = []
        let known = Value.allCases.map(\.rawValue)
        for item in items {
            guard let text = item.string else {
                valid = false
                continue
            }
            guard let value = Value(rawValue: text) else {
                item.report("unknown \(what) '\(text)'", hint: suggestion(for: text, among: known, or: "use one of: \(known.joined(separator: ", "))"))
                valid = false
                continue
            }
            if values.contains(value) {
                item.report("'\(text)' is listed twice")
                valid = false
                continue
            }
            values.append(value)
        }
        return values
    }

    private static func suggestion(for text: String, among known: [String], or fallback: String) -> String {
        closestName(to: text, among: known).map { "did you mean '\($0)'?" } ?? fallback
    }

    /// The router and the verification probes. The router reference binds lifetime: a
    /// recreated router comes back with no table, so its policy is applied again in the same run.
    public func references(in set: ManifestSet) -> [Reference] {
        var references = [Reference(target: ResourceID(kind: RouterSpec.kind, name: router), field: "spec.router", location: routerLocation,
                                    bindsLifetime: true)]
        for (index, probe) in verify.enumerated() {
            references.append(Reference(target: ResourceID(kind: ProbeSpec.kind, name: probe), field: "spec.verify[\(index)]",
                                        location: verifyLocations[index]))
        }
        return references
    }

    /// The router's own target (its DockerHost): the provider that runs the router runs `nft`
    /// inside it.
    public func target(in set: ManifestSet) -> ResourceID? {
        set[ResourceID(kind: RouterSpec.kind, name: router)]?.spec.target(in: set)
    }

    /// One policy per router: two tables hooked on the same chain would both have to accept a
    /// packet, and two default actions would read as if one of them won.
    public static func validate(_ resources: [Resource], in set: ManifestSet, collector: DiagnosticCollector) {
        var owner: [String: ResourceID] = [:]
        for resource in resources {
            guard let spec = resource.spec(as: FirewallPolicySpec.self) else { continue }
            if let first = owner[spec.router] {
                collector.report(Diagnostic(
                    "spec.router: Router/\(spec.router) already has \(first)", at: spec.routerLocation, resource: resource.id,
                    hint: "a router takes one FirewallPolicy; put these rules in \(first)"))
            } else {
                owner[spec.router] = resource.id
            }
        }
    }

    /// `defaultAction`, `chain`, `rules` and `order` (see `fields(defaultAction:chain:rules:extraObjects:)`);
    /// `verify` and `verifyTimeout` say how to check a change, not what the router holds.
    public func desiredFields(metadata: Metadata) -> FieldMap {
        Self.fields(defaultAction: defaultAction.rawValue, chain: NftablesRuleset.forwardChainType,
                    rules: rules.map { (key: $0.name, text: $0.canonicalText) }, extraObjects: [])
    }

    /// The field shape shared by the manifest and the live table, so the plan shows changes
    /// rule by rule:
    /// - `rules`: rule name → canonical rule text (`+ rules.allow-http = "tcp dport 80 accept"`);
    /// - `order`: rule name → `"first"` or `"after <previous rule>"`. Order is kept as links to
    ///   the previous rule rather than positions, so inserting one rule changes one link
    ///   (the rule after it), not the position of every rule below it;
    /// - `defaultAction` and `chain` (the forward chain's hook line): a hand-edited chain is drift;
    /// - `extraObjects`: anything else found in Converge's table (another chain, a set): drift,
    ///   removed by the next apply. Always present, so the empty desired list is compared.
    ///
    /// `rules` keys must be unique: the live side keys unnamed or repeated rules so they are.
    public static func fields(defaultAction: String?, chain: String?, rules: [(key: String, text: String)], extraObjects: [String]) -> FieldMap {
        var fields = FieldMap()
        if let defaultAction { fields["defaultAction"] = .string(defaultAction) }
        if let chain { fields["chain"] = .string(chain) }
        var texts = FieldMap()
        var order = FieldMap()
        var previous: String?
        for rule in rules {
            texts[rule.key] = .string(rule.text)
            order[rule.key] = .string(previous.map { "after \($0)" } ?? "first")
            previous = rule.key
        }
        fields["rules"] = .map(texts)
        fields["order"] = .map(order)
        fields["extraObjects"] = .strings(extraObjects)
        return fields
    }

    /// nftables replaces the whole table in one transaction, so nothing needs recreating.
    public static func changeMode(forField field: String) -> ChangeMode { .inPlace }
}
