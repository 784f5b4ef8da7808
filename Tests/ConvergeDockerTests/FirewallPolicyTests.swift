import ConvergeCore
import ConvergeDocker
import ConvergeTestSupport
import Testing

/// The S1 lab without its firewall: two networks, a client, a server, a router between them
/// and two probes. Tests append a `FirewallPolicy` document.
let firewallLabYAML = """
    apiVersion: converge.dev/v1alpha1
    kind: DockerHost
    metadata: {name: local}
    spec: {}
    ---
    apiVersion: converge.dev/v1alpha1
    kind: Network
    metadata: {name: client-net}
    spec: {subnet: 192.168.100.0/24}
    ---
    apiVersion: converge.dev/v1alpha1
    kind: Network
    metadata: {name: server-net}
    spec: {subnet: 192.168.200.0/24}
    ---
    apiVersion: converge.dev/v1alpha1
    kind: Container
    metadata: {name: s1-client}
    spec:
      image: converge-lab/busybox:1
      networks: [{name: client-net, ipv4: 192.168.100.10}]
    ---
    apiVersion: converge.dev/v1alpha1
    kind: Container
    metadata: {name: s1-server}
    spec:
      image: converge-lab/busybox:1
      networks: [{name: server-net, ipv4: 192.168.200.10}]
    ---
    apiVersion: converge.dev/v1alpha1
    kind: Router
    metadata: {name: s1-router}
    spec:
      interfaces:
        - {network: client-net, ipv4: 192.168.100.254}
        - {network: server-net, ipv4: 192.168.200.254}
    ---
    apiVersion: converge.dev/v1alpha1
    kind: Probe
    metadata: {name: s1-ping}
    spec: {from: s1-client, to: s1-server, type: icmp}
    ---
    apiVersion: converge.dev/v1alpha1
    kind: Probe
    metadata: {name: s1-http}
    spec: {from: s1-client, to: s1-server, type: http}
    """

/// The S1 policy of stage 2 (ICMP in, HTTP dropped); `Fixtures/nftables/s1-edge.*` is its
/// rendering and what nft listed after applying it.
let s1EdgePolicyYAML = """
    apiVersion: converge.dev/v1alpha1
    kind: FirewallPolicy
    metadata: {name: s1-edge}
    spec:
      router: s1-router
      defaultAction: drop
      rules:
        - name: allow-icmp
          action: accept
          protocol: icmp
          source: 192.168.100.0/24
          destination: 192.168.200.0/24
          icmpTypes: [echo-request, echo-reply]
        - name: allow-replies
          action: accept
          state: [related, established]
        - name: drop-http
          action: drop
          protocol: tcp
          destination: 192.168.200.10
          ports: [80]
      verify: [s1-ping, s1-http]
      verifyTimeout: 45s
    """

/// One rule of each shape the renderer knows; `Fixtures/nftables/varied.*`.
let variedPolicyYAML = """
    apiVersion: converge.dev/v1alpha1
    kind: FirewallPolicy
    metadata: {name: lab.varied-1}
    spec:
      router: s1-router
      defaultAction: accept
      rules:
        - {name: web, action: accept, protocol: tcp, source: 10.0.0.0/8, ports: [443, 80, 81, "8000-8080"], state: [new]}
        - {name: dns, action: reject, protocol: udp, destination: 10.1.0.53, ports: ["53"]}
        - {name: any-tcp, action: accept, protocol: tcp}
        - {name: any-udp-from-host, action: drop, protocol: udp, source: 172.16.0.5}
        - {name: ping-only, action: accept, protocol: icmp}
        - {name: icmp-errors, action: accept, protocol: icmp, icmpTypes: [time-exceeded, destination-unreachable]}
        - {name: everything-v4, action: drop, source: 0.0.0.0/0, state: [untracked, invalid]}
        - {name: reject-ssh, action: reject, protocol: tcp, ports: [22]}
        - {name: last, action: reject}
    """

/// The policy named `name` from the lab plus `policies`.
func firewallPolicy(_ name: String, in policies: String) throws -> FirewallPolicySpec {
    let set = try manifestSet(firewallLabYAML + "\n---\n" + policies)
    return try #require(set[ResourceID(kind: FirewallPolicySpec.kind, name: name)]?.spec(as: FirewallPolicySpec.self))
}

/// The diagnostics `ManifestSet.load` reports for the lab plus `policy`, as `line:column: message`.
func firewallDiagnostics(_ policy: String) -> [String] {
    do {
        _ = try manifestSet(firewallLabYAML + "\n---\n" + policy)
        return []
    } catch let error as ManifestValidationError {
        return error.diagnostics.map { diagnostic in
            "\(diagnostic.location.map { "\($0.line - labLineCount):\($0.column)" } ?? "?"): \(diagnostic.message)"
        }
    } catch {
        return ["\(error)"]
    }
}

/// Lines before the policy document, so diagnostics can be given relative to it.
let labLineCount = firewallLabYAML.split(separator: "\n", omittingEmptySubsequences: false).count + 1

@Suite("FirewallPolicy manifests")
struct FirewallPolicyTests {
    @Test func decodesTheS1Policy() throws {
        let set = try manifestSet(firewallLabYAML + "\n---\n" + s1EdgePolicyYAML)
        let resource = try #require(set[ResourceID(kind: "FirewallPolicy", name: "s1-edge")])
        let policy = try #require(resource.spec(as: FirewallPolicySpec.self))
        #expect(policy.router == "s1-router")
        #expect(policy.defaultAction == .drop)
        #expect(policy.verify == ["s1-ping", "s1-http"])
        #expect(policy.verifyTimeout == 45_000_000_000)
        #expect(policy.rules.map(\.name) == ["allow-icmp", "allow-replies", "drop-http"])
        #expect(policy.rules[0] == FirewallRule(
            name: "allow-icmp", action: .accept, ipProtocol: .icmp,
            source: IPv4Network("192.168.100.0/24"), destination: IPv4Network("192.168.200.0/24"),
            icmpTypes: [.echoReply, .echoRequest]))
        #expect(policy.rules.map(\.canonicalText) == [
            "ip saddr 192.168.100.0/24 ip daddr 192.168.200.0/24 icmp type { echo-reply, echo-request } accept",
            "ct state { established, related } accept",
            "ip daddr 192.168.200.10 tcp dport 80 drop",
        ])
        #expect(resource.spec.references(in: set).map(\.target.description) == ["Router/s1-router", "Probe/s1-ping", "Probe/s1-http"])
        #expect(resource.spec.references(in: set).map(\.bindsLifetime) == [true, false, false], "a recreated router gets its policy again")
        #expect(resource.spec.target(in: set) == ResourceID(kind: "DockerHost", name: "local"))
        #expect(resource.isLiveObject)
    }

    @Test func defaultsAndEmptyRules() throws {
        let policy = try firewallPolicy("open", in: """
            apiVersion: converge.dev/v1alpha1
            kind: FirewallPolicy
            metadata: {name: open}
            spec: {router: s1-router, defaultAction: accept}
            """)
        #expect(policy.rules.isEmpty)
        #expect(policy.verify.isEmpty)
        #expect(policy.verifyTimeout == FirewallPolicySpec.defaultVerifyTimeout)
        #expect(NftablesRuleset.table(policy, name: "open") == """
            table inet converge_open {
            \tcomment "FirewallPolicy/open, managed by Converge: changes made here are undone"
            \tchain forward {
            \t\ttype filter hook forward priority 0; policy accept;
            \t}
            }

            """)
    }

    @Test func portsAreNormalisedAsNftablesStoresThem() throws {
        let policy = try firewallPolicy("lab.varied-1", in: variedPolicyYAML)
        let web = try #require(policy.rules.first)
        #expect(web.ports.map(\.description) == ["80-81", "443", "8000-8080"])
        #expect(web.canonicalText == "ip saddr 10.0.0.0/8 tcp dport { 80-81, 443, 8000-8080 } ct state new accept")
        let reordered = FirewallRule(name: "web", action: .accept, ipProtocol: .tcp, source: IPv4Network("10.0.0.0/8"),
                                     ports: [FirewallRule.PortRange(lower: 8000, upper: 8080), FirewallRule.PortRange(81), FirewallRule.PortRange(443), FirewallRule.PortRange(80)].compactMap { $0 },
                                     states: [.new])
        #expect(reordered == web)
        #expect(policy.rules.map(\.statement) == [
            "ip saddr 10.0.0.0/8 tcp dport { 80-81, 443, 8000-8080 } ct state new accept comment \"web\"",
            "ip daddr 10.1.0.53 udp dport 53 reject comment \"dns\"",
            "meta l4proto tcp accept comment \"any-tcp\"",
            "ip saddr 172.16.0.5 meta l4proto udp drop comment \"any-udp-from-host\"",
            "ip protocol icmp accept comment \"ping-only\"",
            "icmp type { destination-unreachable, time-exceeded } accept comment \"icmp-errors\"",
            "ip saddr 0.0.0.0/0 ct state { invalid, untracked } drop comment \"everything-v4\"",
            "tcp dport 22 reject comment \"reject-ssh\"",
            "reject comment \"last\"",
        ])
    }

    @Test func desiredFieldsCompareRulesOneByOneAndLeaveVerificationOut() throws {
        let policy = try firewallPolicy("s1-edge", in: s1EdgePolicyYAML)
        let fields = policy.desiredFields(metadata: Metadata(name: "s1-edge"))
        #expect(fields.keys == ["chain", "defaultAction", "extraObjects", "order", "rules"])
        #expect(fields["defaultAction"] == .string("drop"))
        #expect(fields["chain"] == .string("type filter hook forward priority 0"))
        #expect(fields["extraObjects"] == .list([]))
        #expect(fields["rules"] == .map(FieldMap([
            "allow-icmp": .string("ip saddr 192.168.100.0/24 ip daddr 192.168.200.0/24 icmp type { echo-reply, echo-request } accept"),
            "allow-replies": .string("ct state { established, related } accept"),
            "drop-http": .string("ip daddr 192.168.200.10 tcp dport 80 drop"),
        ])))
        #expect(fields["order"] == .map(FieldMap([
            "allow-icmp": .string("first"), "allow-replies": .string("after allow-icmp"), "drop-http": .string("after allow-replies"),
        ])))
        #expect(FirewallPolicySpec.changeMode(forField: "rules") == .inPlace)
        #expect(FirewallPolicySpec.changeMode(forField: "defaultAction") == .inPlace)
    }

    @Test func planShowsRuleLevelChanges() throws {
        let before = try firewallPolicy("s1-edge", in: s1EdgePolicyYAML)
        // Stage 3 of S1: HTTP is now accepted, by a new rule inserted before the drop.
        let after = s1EdgePolicyYAML.replacingOccurrences(of: """
                - name: drop-http
            """, with: """
                - name: allow-http
                  action: accept
                  protocol: tcp
                  destination: 192.168.200.10
                  ports: [80]
                - name: drop-http
            """)
        let set = try manifestSet(firewallLabYAML + "\n---\n" + after)
        let id = ResourceID(kind: "FirewallPolicy", name: "s1-edge")
        var observed = inSyncObservation(of: set)
        let index = try #require(observed.firstIndex { $0.id == id })
        observed[index].fields = before.desiredFields(metadata: Metadata(name: "s1-edge"))
        let result = try Planner(observedKinds: ["FirewallPolicy"]).plan(desired: set, observed: observed, source: testSource, instance: "test")
        let change = try #require(result.changes.first { $0.resource == id })
        #expect(result.changes.count == 1)
        #expect(change.action == .update)
        #expect(change.fields.map(\.path) == ["order.allow-http", "order.drop-http", "rules.allow-http"])
        #expect(change.fields.map(\.before) == [nil, .string("after allow-replies"), nil])
        #expect(change.fields.map(\.after) == [.string("after allow-replies"), .string("after allow-http"), .string("ip daddr 192.168.200.10 tcp dport 80 accept")])
        let text = PlanRenderer.text(result, color: false)
        #expect(text.contains("+ rules.allow-http = \"ip daddr 192.168.200.10 tcp dport 80 accept\""))
    }

    @Test func verificationSettingsAreNotLiveState() throws {
        let set = try manifestSet(firewallLabYAML + "\n---\n" + s1EdgePolicyYAML.replacingOccurrences(of: "verifyTimeout: 45s", with: "verifyTimeout: 1m"))
        let policy = try firewallPolicy("s1-edge", in: s1EdgePolicyYAML)
        let id = ResourceID(kind: "FirewallPolicy", name: "s1-edge")
        var observed = inSyncObservation(of: set)
        let index = try #require(observed.firstIndex { $0.id == id })
        observed[index].fields = policy.desiredFields(metadata: Metadata(name: "s1-edge"))
        #expect(try plan(set, observed: observed).isEmpty)
    }

    // MARK: - Validation

    @Test func rejectsBadRulesWithTheirPositions() {
        let diagnostics = firewallDiagnostics("""
            apiVersion: converge.dev/v1alpha1
            kind: FirewallPolicy
            metadata: {name: broken}
            spec:
              router: s1-router
              defaultAction: reject
              rules:
                - {name: a, action: allow}
                - {name: b, action: accept, protocol: sctp}
                - {name: c, action: accept, protocol: icmp, ports: [80]}
                - {name: d, action: accept, ports: [80]}
                - {name: e, action: accept, protocol: tcp, icmpTypes: [echo-request]}
                - {name: f, action: accept, source: 192.168.300.0/24}
                - {name: g, action: accept, destination: 192.168.100.5/24}
                - {name: h, action: accept, protocol: udp, ports: [70000, "90-80", http, 53, 53, "50-60"]}
                - {name: i, action: accept, state: [establised, new]}
                - {name: j, action: accept, protocol: icmp, icmpTypes: [ping]}
                - {name: a, action: drop}
                - {name: "bad name", action: drop}
                - {action: drop}
              verifyTimeout: soon
            """)
        #expect(diagnostics == [
            "6:18: spec.defaultAction: the default action cannot be reject",
            "8:25: spec.rules[0].action: unknown action 'allow'",
            "9:43: spec.rules[1].protocol: unknown protocol 'sctp'",
            "10:56: spec.rules[2].ports: a port on an ICMP rule",
            "11:40: spec.rules[3].ports: a port on a rule for any protocol",
            "12:59: spec.rules[4].icmpTypes: ICMP types on a TCP rule",
            "13:41: spec.rules[5].source: '192.168.300.0/24' is not an IPv4 address or CIDR",
            "14:46: spec.rules[6].destination: '192.168.100.5/24' has host bits set",
            "15:56: spec.rules[7].ports[0]: port 70000 is out of range",
            "15:63: spec.rules[7].ports[1]: port range '90-80' is reversed",
            "15:72: spec.rules[7].ports[2]: 'http' is not a port or port range",
            "15:82: spec.rules[7].ports[4]: port 53 is listed twice",
            "15:86: spec.rules[7].ports[5]: port 50-60 overlaps 53",
            "16:41: spec.rules[8].state[0]: unknown connection state 'establised'",
            "17:61: spec.rules[9].icmpTypes[0]: unknown ICMP type 'ping'",
            "18:14: spec.rules[10].name: duplicate rule name 'a', also used by spec.rules[0].name",
            "19:14: spec.rules[11].name: invalid rule name 'bad name'",
            "20:7: spec.rules[12].name: required field is missing",
            "21:18: spec.verifyTimeout: 'soon' is not a positive duration",
        ])
    }

    @Test func unknownRouterAndProbesAreReported() {
        let diagnostics = firewallDiagnostics("""
            apiVersion: converge.dev/v1alpha1
            kind: FirewallPolicy
            metadata: {name: edge}
            spec:
              router: s1-routr
              defaultAction: drop
              verify: [s1-ping, s1-htp, s1-ping]
            """)
        #expect(diagnostics == [
            "5:11: spec.router: refers to Router/s1-routr, which is not defined",
            "7:21: spec.verify[1]: refers to Probe/s1-htp, which is not defined",
            "7:29: spec.verify[2]: probe 's1-ping' is listed twice",
        ])
    }

    @Test func missingFieldsAndOnePolicyPerRouter() {
        #expect(firewallDiagnostics("""
            apiVersion: converge.dev/v1alpha1
            kind: FirewallPolicy
            metadata: {name: edge}
            spec: {rules: [], extra: 1}
            """) == [
            "4:7: spec.router: required field is missing",
            "4:7: spec.defaultAction: required field is missing",
            "4:19: spec.extra: unknown field",
        ])
        #expect(firewallDiagnostics("""
            apiVersion: converge.dev/v1alpha1
            kind: FirewallPolicy
            metadata: {name: a-edge}
            spec: {router: s1-router, defaultAction: drop}
            ---
            apiVersion: converge.dev/v1alpha1
            kind: FirewallPolicy
            metadata: {name: b-edge}
            spec: {router: s1-router, defaultAction: accept}
            """) == ["9:16: spec.router: Router/s1-router already has FirewallPolicy/a-edge"])
    }
}
