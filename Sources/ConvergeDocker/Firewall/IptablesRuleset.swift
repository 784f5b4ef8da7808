import ConvergeCore

/// The fallback for routers without `nft`: a policy as one iptables chain,
/// `CONVERGE-<policy>`, loaded with `iptables-restore --noflush` (one transaction per table,
/// checked first with `--test`) and jumped to from the top of `FORWARD`. The policy's default
/// action is the chain's last rule, since `FORWARD`'s own policy is not Converge's to set.
///
/// Rules are written exactly as `iptables-save` prints them, so reading the chain back gives
/// the same rules (and the same plan text as the nftables path); a line in the chain that
/// Converge would not write is drift, like an unknown rule in the nftables table.
public enum IptablesRuleset {
    /// The comment of the chain's closing rule (the default action).
    public static let defaultRuleComment = "converge-default"

    /// `CONVERGE-<name>`, cut to iptables' 28-character limit for chain names.
    public static func chainName(forPolicy name: String) -> String {
        String(("CONVERGE-" + name).prefix(28))
    }

    /// The `iptables-restore --noflush` input that replaces the chain's contents.
    public static func restoreScript(_ policy: FirewallPolicySpec, name: String) -> String {
        let chain = chainName(forPolicy: name)
        var lines = ["*filter", ":\(chain) - [0:0]", "-F \(chain)"]
        for rule in policy.rules {
            lines += self.lines(rule).map { "-A \(chain) \($0)" }
        }
        lines.append("-A \(chain) -m comment --comment \(defaultRuleComment) -j \(policy.defaultAction.rawValue.uppercased())")
        lines.append("COMMIT")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Shell lines that hook the chain into `FORWARD` once, after the restore.
    public static func hookCommand(policyName name: String) -> String {
        let chain = chainName(forPolicy: name)
        return "iptables -C FORWARD -j \(chain) 2>/dev/null || iptables -I FORWARD 1 -j \(chain)"
    }

    /// Shell lines that unhook and delete the chain; harmless when it is already gone.
    public static func removeCommand(policyName name: String) -> String {
        let chain = chainName(forPolicy: name)
        return "while iptables -D FORWARD -j \(chain) 2>/dev/null; do :; done; iptables -F \(chain) 2>/dev/null; iptables -X \(chain) 2>/dev/null; true"
    }

    /// One rule as iptables-save lines (several when it matches several ICMP types, which
    /// iptables cannot put in one rule).
    static func lines(_ rule: FirewallRule) -> [String] {
        var head: [String] = []
        if let source = rule.source { head.append("-s \(source)") }
        if let destination = rule.destination { head.append("-d \(destination)") }
        var variants: [[String]] = [[]]
        switch rule.ipProtocol {
        case .any:
            break
        case .icmp:
            head.append("-p icmp")
            if !rule.icmpTypes.isEmpty {
                variants = rule.icmpTypes.map { ["-m icmp --icmp-type \($0.code)"] }
            }
        case .tcp, .udp:
            let name = rule.ipProtocol.rawValue
            head.append("-p \(name)")
            if rule.ports.count == 1 {
                variants = [["-m \(name) --dport \(portText(rule.ports[0]))"]]
            } else if !rule.ports.isEmpty {
                variants = [["-m multiport --dports \(rule.ports.map(portText).joined(separator: ","))"]]
            }
        }
        var tail: [String] = []
        if !rule.states.isEmpty { tail.append("-m conntrack --ctstate \(stateText(rule.states))") }
        tail.append("-m comment --comment \(rule.name)")
        switch rule.action {
        case .accept: tail.append("-j ACCEPT")
        case .drop: tail.append("-j DROP")
        case .reject: tail.append("-j REJECT --reject-with icmp-port-unreachable")
        }
        return variants.map { (head + $0 + tail).joined(separator: " ") }
    }

    /// The chain as found in `iptables-save -t filter` output, in the plan's field shape;
    /// nil when the chain does not exist.
    public static func fields(fromSave text: String, policyName name: String) -> FieldMap? {
        let chain = chainName(forPolicy: name)
        guard text.split(separator: "\n").contains(where: { $0 == ":\(chain) - [0:0]" || $0.hasPrefix(":\(chain) ") }) else { return nil }
        var rules: [(key: String, rule: FirewallRule?, text: String)] = []
        var defaultAction: String?
        let prefix = "-A \(chain) "
        for (position, raw) in text.split(separator: "\n").filter({ $0.hasPrefix(prefix) }).enumerated() {
            let line = String(raw.dropFirst(prefix.count))
            if line.hasPrefix("-m comment --comment \(defaultRuleComment) -j ") {
                defaultAction = String(line.dropFirst("-m comment --comment \(defaultRuleComment) -j ".count)).lowercased()
                continue
            }
            guard let rule = parse(line) else {
                rules.append(("#\(position + 1)", nil, "unknown rule: \(line)"))
                continue
            }
            // The lines of one multi-type ICMP rule come back as one rule.
            if let index = rules.lastIndex(where: { $0.key == rule.name }), let previous = rules[index].rule,
               let combined = combine(previous, rule) {
                rules[index] = (rule.name, combined, combined.canonicalText)
            } else {
                rules.append((rule.name, rule, rule.canonicalText))
            }
        }
        return FirewallPolicySpec.fields(defaultAction: defaultAction, chain: NftablesRuleset.forwardChainType,
                                         rules: rules.map { ($0.key, $0.text) }, extraObjects: [])
    }

    /// Reads one line Converge writes back into a rule; nil for anything else.
    static func parse(_ line: String) -> FirewallRule? {
        var words = line.split(separator: " ").map(String.init)[...]
        var source: IPv4Network?
        var destination: IPv4Network?
        var ipProtocol = FirewallRule.IPProtocol.any
        var ports: [FirewallRule.PortRange] = []
        var icmpTypes: [FirewallRule.ICMPType] = []
        var states: [FirewallRule.ConnectionState] = []
        var name: String?
        var action: FirewallRule.Action?
        func next() -> String? { words.popFirst() }
        while let word = next() {
            switch word {
            case "-s": source = next().flatMap(IPv4Network.init)
            case "-d": destination = next().flatMap(IPv4Network.init)
            case "-p": ipProtocol = next().flatMap(FirewallRule.IPProtocol.init(rawValue:)) ?? .any
            case "-m": _ = next()
            case "--dport", "--dports":
                for part in (next() ?? "").split(separator: ",") {
                    let bounds = part.split(separator: ":").compactMap { Int($0) }
                    guard let range = FirewallRule.PortRange(lower: bounds.first ?? 0, upper: bounds.last ?? 0) else { return nil }
                    ports.append(range)
                }
            case "--icmp-type":
                guard let type = next().flatMap(Int.init).flatMap(FirewallRule.ICMPType.init(code:)) else { return nil }
                icmpTypes.append(type)
            case "--ctstate":
                for state in (next() ?? "").split(separator: ",") {
                    guard let value = FirewallRule.ConnectionState(rawValue: state.lowercased()) else { return nil }
                    states.append(value)
                }
            case "--comment": name = next()
            case "-j":
                switch next() {
                case "ACCEPT": action = .accept
                case "DROP": action = .drop
                case "REJECT":
                    guard next() == "--reject-with", next() == "icmp-port-unreachable" else { return nil }
                    action = .reject
                default: return nil
                }
            default: return nil
            }
        }
        guard let name, let action else { return nil }
        let rule = FirewallRule(name: name, action: action, ipProtocol: ipProtocol, source: source, destination: destination,
                                ports: ports, icmpTypes: icmpTypes, states: states)
        // Only a line exactly as Converge writes it counts as the rule.
        return lines(rule).contains(line) ? rule : nil
    }

    private static func combine(_ previous: FirewallRule, _ rule: FirewallRule) -> FirewallRule? {
        guard previous.ipProtocol == .icmp, rule.ipProtocol == .icmp, previous.action == rule.action,
              previous.source == rule.source, previous.destination == rule.destination, previous.states == rule.states else { return nil }
        return FirewallRule(name: rule.name, action: rule.action, ipProtocol: .icmp, source: rule.source, destination: rule.destination,
                            icmpTypes: previous.icmpTypes + rule.icmpTypes, states: rule.states)
    }

    private static func portText(_ range: FirewallRule.PortRange) -> String {
        range.lower == range.upper ? String(range.lower) : "\(range.lower):\(range.upper)"
    }

    /// The order iptables prints conntrack states in.
    private static func stateText(_ states: [FirewallRule.ConnectionState]) -> String {
        let order: [FirewallRule.ConnectionState] = [.invalid, .new, .related, .established, .untracked]
        return order.filter(states.contains).map { $0.rawValue.uppercased() }.joined(separator: ",")
    }
}
