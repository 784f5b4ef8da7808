import ConvergeCore
import Foundation

/// Reads libnftables JSON (`nft -j list table inet converge_<policy>`) back into the rule
/// model, so the diff compares the live table with the manifest rule by rule.
///
/// A rule is recognised only in the forms Converge writes or their exact equivalents (an
/// explicit `meta l4proto tcp` before `tcp dport`, a single-element set, `ip protocol` for
/// `meta l4proto`). Anything else in the table is kept as raw JSON and becomes drift: a rule
/// without a comment or with statements the model does not have (`counter`, `log`, a
/// negation, a named set) is an unknown rule; another chain or a set is an extra object.
public enum NftablesJSON {
    /// Parses the output of `nft -j list table`. Objects of other tables (when given a whole
    /// ruleset) are ignored.
    public static func parseTable(_ text: String, table: String) throws -> LiveFirewallTable {
        let objects = try topLevelObjects(text)
        var result = LiveFirewallTable(name: table, forwardChain: nil, rules: [], extraObjects: [])
        var found = false
        for (type, body) in objects {
            guard case .object(let fields) = body else { continue }
            switch type {
            case "metainfo":
                continue
            case "table":
                if fields["name"]?.string == table, fields["family"]?.string == NftablesRuleset.family { found = true }
                continue
            default:
                break
            }
            guard fields["table"]?.string == table, fields["family"]?.string == NftablesRuleset.family else { continue }
            let name = fields["name"]?.string ?? "?"
            switch type {
            case "chain" where name == NftablesRuleset.chainName:
                result.forwardChain = LiveFirewallTable.Chain(fields)
            case "chain":
                result.extraObjects.append("chain \(name)")
            case "rule" where fields["chain"]?.string == NftablesRuleset.chainName:
                result.rules.append(LiveFirewallRule(fields))
            case "rule":
                let comment = fields["comment"]?.string.map { " comment \"\($0)\"" } ?? ""
                result.extraObjects.append("rule in chain \(fields["chain"]?.string ?? "?"): \((fields["expr"] ?? .null).serialized)\(comment)")
            default:
                result.extraObjects.append("\(type) \(name)")
            }
        }
        guard found else { throw NftablesJSONError.tableMissing(table) }
        return result
    }

    /// The tables in the output of `nft -j list tables`.
    public static func tables(_ text: String) throws -> [(family: String, name: String)] {
        try topLevelObjects(text).compactMap { type, body in
            guard type == "table", case .object(let fields) = body,
                  let family = fields["family"]?.string, let name = fields["name"]?.string else { return nil }
            return (family, name)
        }
    }

    /// True when `nft list table` failed because the table does not exist (the policy was
    /// never applied, or the router was recreated), as opposed to any other failure.
    public static func isMissingTable(stderr: String) -> Bool {
        stderr.contains("No such file or directory")
    }

    /// The `{"nftables": [{type: body}, …]}` envelope as (type, body) pairs, in order.
    private static func topLevelObjects(_ text: String) throws -> [(String, JSONValue)] {
        let root: JSONValue
        do {
            root = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        } catch {
            throw NftablesJSONError.notJSON(String(describing: error))
        }
        guard case .object(let envelope) = root, case .array(let items)? = envelope["nftables"] else {
            throw NftablesJSONError.unexpectedShape("expected {\"nftables\": [...]}")
        }
        return items.compactMap { item in
            guard case .object(let wrapper) = item, wrapper.count == 1, let (type, body) = wrapper.first else { return nil }
            return (type, body)
        }
    }
}

public enum NftablesJSONError: Error, Equatable, CustomStringConvertible {
    case notJSON(String)
    case unexpectedShape(String)
    case tableMissing(String)

    public var description: String {
        switch self {
        case .notJSON(let detail): return "nft output is not JSON: \(detail)"
        case .unexpectedShape(let detail): return "nft output has an unexpected shape: \(detail)"
        case .tableMissing(let table): return "nft output does not contain table \(NftablesRuleset.family) \(table)"
        }
    }
}

/// Converge's table as found on a router.
public struct LiveFirewallTable: Sendable, Hashable {
    /// The base chain's declaration as found.
    public struct Chain: Sendable, Hashable {
        public var type: String?
        public var hook: String?
        public var priority: Int?
        /// Base chains always report one; a regular chain has none.
        public var policy: String?

        public init(type: String?, hook: String?, priority: Int?, policy: String?) {
            self.type = type
            self.hook = hook
            self.priority = priority
            self.policy = policy
        }

        init(_ fields: [String: JSONValue]) {
            type = fields["type"]?.string
            hook = fields["hook"]?.string
            priority = fields["prio"]?.int
            policy = fields["policy"]?.string
        }

        /// `type filter hook forward priority 0`, comparable with `NftablesRuleset.forwardChainType`.
        public var declaration: String {
            guard let type, let hook else { return "regular chain (no hook)" }
            return "type \(type) hook \(hook) priority \(priority.map(String.init) ?? "?")"
        }
    }

    public var name: String
    /// Nil when the table has no `forward` chain.
    public var forwardChain: Chain?
    /// The forward chain's rules, in order.
    public var rules: [LiveFirewallRule]
    /// Other chains, their rules, sets, maps…: one line each.
    public var extraObjects: [String]

    public init(name: String, forwardChain: Chain?, rules: [LiveFirewallRule], extraObjects: [String]) {
        self.name = name
        self.forwardChain = forwardChain
        self.rules = rules
        self.extraObjects = extraObjects
    }

    /// The chain's policy as a default action, nil when missing or not accept/drop.
    public var defaultAction: FirewallRule.Action? {
        forwardChain?.policy.flatMap(FirewallRule.Action.init(rawValue:))
    }

    /// The live table in the field shape of `FirewallPolicySpec.desiredFields`. A rule is keyed
    /// by its comment; a rule without one is keyed `#<position>` (1-based), and a comment seen
    /// before gets `#<position>` appended, so every live rule shows up in the diff.
    public var fields: FieldMap {
        var used: Set<String> = []
        var keyed: [(key: String, text: String)] = []
        for (index, rule) in rules.enumerated() {
            let base = rule.name ?? ""
            var key = base.isEmpty ? "#\(index + 1)" : base
            if used.contains(key) { key = "\(base)#\(index + 1)" }
            while used.contains(key) { key += "'" }
            used.insert(key)
            keyed.append((key, rule.text))
        }
        return FirewallPolicySpec.fields(defaultAction: forwardChain?.policy, chain: forwardChain?.declaration,
                                         rules: keyed, extraObjects: extraObjects)
    }
}

/// One rule of the live forward chain.
public enum LiveFirewallRule: Sendable, Hashable {
    /// A rule in a form Converge writes, named by its comment.
    case rule(FirewallRule)
    /// Anything else: its comment if any, and its expressions as compact JSON (keys sorted).
    case unknown(comment: String?, expression: String)

    public var name: String? {
        switch self {
        case .rule(let rule): return rule.name
        case .unknown(let comment, _): return comment
        }
    }

    /// The canonical text, or `unknown rule: <expr json>`: the value the plan shows.
    public var text: String {
        switch self {
        case .rule(let rule): return rule.canonicalText
        case .unknown(_, let expression): return "unknown rule: \(expression)"
        }
    }

    init(_ fields: [String: JSONValue]) {
        let comment = fields["comment"]?.string
        let expression = fields["expr"] ?? .null
        if let comment, !comment.isEmpty, case .array(let statements) = expression,
           let rule = RuleReader.read(statements, name: comment) {
            self = .rule(rule)
        } else {
            self = .unknown(comment: comment, expression: expression.serialized)
        }
    }
}

/// Turns a rule's statements into the model, or nil when they say anything the model cannot.
private struct RuleReader {
    var source: IPv4Network?
    var destination: IPv4Network?
    var protocols: Set<FirewallRule.IPProtocol> = []
    var ports: [FirewallRule.PortRange]?
    var icmpTypes: [FirewallRule.ICMPType]?
    var states: [FirewallRule.ConnectionState]?
    var action: FirewallRule.Action?

    static func read(_ statements: [JSONValue], name: String) -> FirewallRule? {
        var reader = RuleReader()
        for statement in statements {
            // A verdict ends the rule: nothing may follow it.
            guard reader.action == nil, case .object(let wrapper) = statement, wrapper.count == 1,
                  let (key, body) = wrapper.first, reader.apply(key, body) else { return nil }
        }
        guard let action = reader.action, reader.protocols.count <= 1 else { return nil }
        let ipProtocol = reader.protocols.first ?? .any
        return FirewallRule(name: name, action: action, ipProtocol: ipProtocol, source: reader.source,
                            destination: reader.destination, ports: reader.ports ?? [], icmpTypes: reader.icmpTypes ?? [],
                            states: reader.states ?? [])
    }

    /// Applies one statement; false when it is not one the model has.
    mutating func apply(_ key: String, _ body: JSONValue) -> Bool {
        switch key {
        case "accept", "drop":
            guard body == .null else { return false }
            action = FirewallRule.Action(rawValue: key)
            return true
        case "reject":
            // Plain `reject`: nftables stores it as port-unreachable, of type icmpx in an inet
            // chain, or icmp once the rule is IPv4-only. `with tcp reset` and others are not ours.
            if case .object(let fields) = body {
                guard ["icmpx", "icmp"].contains(fields["type"]?.string ?? ""), fields["expr"]?.string == "port-unreachable" else { return false }
            } else if body != .null {
                return false
            }
            action = .reject
            return true
        case "match":
            guard case .object(let match) = body, let left = match["left"], let right = match["right"] else { return false }
            return applyMatch(op: match["op"]?.string ?? "==", left: left, right: right)
        default:
            return false
        }
    }

    private mutating func applyMatch(op: String, left: JSONValue, right: JSONValue) -> Bool {
        guard case .object(let leftFields) = left, leftFields.count == 1, let (kind, selector) = leftFields.first,
              case .object(let selectorFields) = selector,
              // A payload names a protocol and a field; meta and ct only a key. More (a ct
              // direction, a payload base and offset) means a match the model does not have.
              selectorFields.count == (kind == "payload" ? 2 : 1) else { return false }
        switch (kind, selectorFields["protocol"]?.string, selectorFields["field"]?.string ?? selectorFields["key"]?.string) {
        case ("payload", "ip", "saddr"?):
            guard op == "==", source == nil, let network = Self.network(right) else { return false }
            source = network
        case ("payload", "ip", "daddr"?):
            guard op == "==", destination == nil, let network = Self.network(right) else { return false }
            destination = network
        case ("payload", "ip", "protocol"?), ("meta", nil, "l4proto"?):
            guard op == "==", let value = Self.protocolName(right) else { return false }
            protocols.insert(value)
        case ("payload", let transport?, "dport"?) where transport == "tcp" || transport == "udp":
            guard op == "==", ports == nil, let value = Self.ports(right), let proto = FirewallRule.IPProtocol(rawValue: transport) else { return false }
            protocols.insert(proto)
            ports = value
        case ("payload", "icmp", "type"?):
            guard op == "==", icmpTypes == nil, let value = Self.elements(right, FirewallRule.ICMPType.init(rawValue:)) else { return false }
            protocols.insert(.icmp)
            icmpTypes = value
        case ("ct", nil, "state"?):
            // `ct state new` and `ct state established,related` are bitmask tests (`in`);
            // `ct state { new, established }` is a set lookup (`==`).
            guard op == "==" || op == "in", states == nil,
                  let value = Self.elements(right, FirewallRule.ConnectionState.init(rawValue:)) else { return false }
            states = value
        default:
            return false
        }
        return true
    }

    /// `"10.0.0.1"` or `{"prefix": {"addr": "10.0.0.0", "len": 8}}`.
    static func network(_ value: JSONValue) -> IPv4Network? {
        switch value {
        case .string(let address):
            return IPv4Address(address) != nil ? IPv4Network("\(address)/32") : nil
        case .object(let fields):
            guard case .object(let prefix)? = fields["prefix"], fields.count == 1,
                  let address = prefix["addr"]?.string, let length = prefix["len"]?.int else { return nil }
            guard let network = IPv4Network("\(address)/\(length)"), !network.hasHostBits else { return nil }
            return network
        default:
            return nil
        }
    }

    static func protocolName(_ value: JSONValue) -> FirewallRule.IPProtocol? {
        switch value {
        case .string(let name): return ["icmp", "tcp", "udp"].contains(name) ? FirewallRule.IPProtocol(rawValue: name) : nil
        case .int(1): return .icmp
        case .int(6): return .tcp
        case .int(17): return .udp
        default: return nil
        }
    }

    /// `80`, `{"range": [8000, 8080]}`, or a set of either.
    static func ports(_ value: JSONValue) -> [FirewallRule.PortRange]? {
        func one(_ element: JSONValue) -> FirewallRule.PortRange? {
            switch element {
            case .int(let port):
                return FirewallRule.PortRange(port)
            case .object(let fields):
                guard fields.count == 1, case .array(let bounds)? = fields["range"], bounds.count == 2,
                      let lower = bounds[0].int, let upper = bounds[1].int else { return nil }
                return FirewallRule.PortRange(lower: lower, upper: upper)
            default:
                return nil
            }
        }
        let elements = setElements(value) ?? [value]
        let ranges = elements.compactMap(one)
        return ranges.count == elements.count && !ranges.isEmpty ? ranges : nil
    }

    /// A name, a set of names (`{"set": [...]}`), or a plain list (a bitmask): all must be known.
    static func elements<Value>(_ value: JSONValue, _ make: (String) -> Value?) -> [Value]? {
        let items: [JSONValue]
        if let set = setElements(value) {
            items = set
        } else if case .array(let list) = value {
            items = list
        } else {
            items = [value]
        }
        let values = items.compactMap { $0.string.flatMap(make) }
        return values.count == items.count && !values.isEmpty ? values : nil
    }

    static func setElements(_ value: JSONValue) -> [JSONValue]? {
        guard case .object(let fields) = value, fields.count == 1, case .array(let items)? = fields["set"] else { return nil }
        return items
    }
}
