import ConvergeCore
import ConvergeDocker
import Testing

/// The iptables fallback: what it writes reads back as the same rules, and anything else in
/// its chain is drift.
@Suite struct IptablesRulesetTests {
    static let policy = FirewallPolicySpec(router: "edge", defaultAction: .drop, rules: [
        FirewallRule(name: "allow-replies", action: .accept, states: [.established, .related]),
        FirewallRule(name: "allow-ping", action: .accept, ipProtocol: .icmp, icmpTypes: [.echoRequest, .echoReply]),
        FirewallRule(name: "allow-web", action: .accept, ipProtocol: .tcp, source: IPv4Network("192.168.100.0/24"),
                     destination: IPv4Network("192.168.200.10/32"), ports: [FirewallRule.PortRange(lower: 80, upper: 80)!, FirewallRule.PortRange(lower: 443, upper: 443)!]),
        FirewallRule(name: "no-range", action: .reject, ipProtocol: .udp, ports: [FirewallRule.PortRange(lower: 8000, upper: 8080)!]),
    ])

    /// `iptables-save -t filter` as it would print the chain after a restore.
    static func saved(_ script: String) -> String {
        let rules = script.split(separator: "\n").filter { $0.hasPrefix("-A ") }.joined(separator: "\n")
        return "*filter\n:FORWARD ACCEPT [0:0]\n:CONVERGE-edge-policy - [0:0]\n-A FORWARD -j CONVERGE-edge-policy\n\(rules)\nCOMMIT\n"
    }

    @Test func whatItWritesReadsBackAsTheSameFields() throws {
        let script = IptablesRuleset.restoreScript(Self.policy, name: "edge-policy")
        #expect(script.contains("-A CONVERGE-edge-policy -p icmp -m icmp --icmp-type 8 -m comment --comment allow-ping -j ACCEPT"))
        #expect(script.contains("-m multiport --dports 80,443"))
        #expect(script.contains("-m conntrack --ctstate RELATED,ESTABLISHED"))
        #expect(script.contains("-j REJECT --reject-with icmp-port-unreachable"))
        let live = try #require(IptablesRuleset.fields(fromSave: Self.saved(script), policyName: "edge-policy"))
        #expect(live == Self.policy.desiredFields(metadata: Metadata(name: "edge-policy")))
    }

    @Test func aForeignLineInTheChainIsDrift() throws {
        let script = IptablesRuleset.restoreScript(Self.policy, name: "edge-policy")
        let tampered = Self.saved(script).replacingOccurrences(of: "COMMIT", with: "-A CONVERGE-edge-policy -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT")
        let live = try #require(IptablesRuleset.fields(fromSave: tampered, policyName: "edge-policy"))
        guard case .map(let rules)? = live["rules"] else { Issue.record("no rules"); return }
        #expect(rules.entries.contains { $0.value == .string("unknown rule: -p tcp -m tcp --dport 22 -j ACCEPT") })
    }

    @Test func aMissingChainIsNoPolicy() {
        #expect(IptablesRuleset.fields(fromSave: "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n", policyName: "edge-policy") == nil)
    }
}
