import ConvergeCore
import ConvergeDocker
import Foundation
import ConvergeTestSupport
import Testing

/// Fixtures captured from nft 1.0.6 in `converge-lab/router:1`: `<name>.nft` is the script
/// Converge renders, `<name>.json` what `nft -j list table` printed after `nft -f <name>.nft`.
/// `s1-edge-hand-edited.json` is s1-edge after `hand-edits.nft` (rules, a chain and a set added
/// by hand); `s1-edge-reapplied.json` is after applying `s1-edge.nft` again on top of that.
enum NftablesFixture {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/nftables", isDirectory: true)

    static func text(_ name: String) throws -> String {
        try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
    }
}

@Suite("nftables rendering and parsing")
struct NftablesTests {
    @Test func tableNamesMapBackToPolicies() {
        #expect(NftablesRuleset.tableName(forPolicy: "s1-edge") == "converge_s1-edge")
        #expect(NftablesRuleset.tableName(forPolicy: "lab.varied-1") == "converge_lab.varied-1")
        #expect(NftablesRuleset.tableName(forPolicy: "odd name/é") == "converge_odd_name__")
        #expect(NftablesRuleset.policyName(forTable: "converge_s1-edge") == "s1-edge")
        #expect(NftablesRuleset.policyName(forTable: "filter") == nil)
        #expect(NftablesRuleset.policyName(forTable: "converge_") == nil)
        #expect(NftablesRuleset.listCommand(policyName: "s1-edge") == ["nft", "-j", "list", "table", "inet", "converge_s1-edge"])
        #expect(NftablesRuleset.removeScript(policyName: "s1-edge") == "table inet converge_s1-edge {}\ndelete table inet converge_s1-edge\n")
    }

    /// Policy name → its manifest and fixture base name.
    static let fixturePolicies = ["s1-edge": (s1EdgePolicyYAML, "s1-edge"), "lab.varied-1": (variedPolicyYAML, "varied")]

    @Test("the replace script is the captured one", arguments: ["s1-edge", "lab.varied-1"])
    func rendersTheFixtureScript(_ name: String) throws {
        let (yaml, file) = try #require(Self.fixturePolicies[name])
        let policy = try firewallPolicy(name, in: yaml)
        #expect(NftablesRuleset.replaceScript(policy, name: name) == (try NftablesFixture.text("\(file).nft")))
    }

    @Test("what nft lists parses back into the manifest's rules", arguments: ["s1-edge", "lab.varied-1"])
    func parsesTheFixtureListing(_ name: String) throws {
        let (yaml, file) = try #require(Self.fixturePolicies[name])
        let policy = try firewallPolicy(name, in: yaml)
        let live = try NftablesJSON.parseTable(try NftablesFixture.text("\(file).json"), table: NftablesRuleset.tableName(forPolicy: name))
        #expect(live.rules == policy.rules.map(LiveFirewallRule.rule))
        #expect(live.defaultAction == policy.defaultAction)
        #expect(live.forwardChain?.declaration == NftablesRuleset.forwardChainType)
        #expect(live.extraObjects.isEmpty)
        #expect(live.fields == policy.desiredFields(metadata: Metadata(name: name)))
    }

    @Test func handEditsInsideTheTableAreDrift() throws {
        let live = try NftablesJSON.parseTable(try NftablesFixture.text("s1-edge-hand-edited.json"), table: "converge_s1-edge")
        let policy = try firewallPolicy("s1-edge", in: s1EdgePolicyYAML)
        #expect(live.rules.map(\.name) == [nil, "allow-icmp", "allow-replies", "drop-http", "allow-icmp", "ssh", "negated", "rst", "bitmask", "blocked"])
        #expect(Array(live.rules[1...3]) == policy.rules.map(LiveFirewallRule.rule))
        // Equivalent spellings parse into the model: `meta l4proto tcp tcp dport 22` (listed by
        // nft as `tcp dport 22`) and the `ct state a,b` bitmask.
        #expect(live.rules[5] == .rule(FirewallRule(name: "ssh", action: .accept, ipProtocol: .tcp, ports: [FirewallRule.PortRange(22)].compactMap { $0 })))
        #expect(live.rules[8] == .rule(FirewallRule(name: "bitmask", action: .accept, states: [.established, .related])))
        #expect(live.rules[0] == .unknown(comment: nil, expression: #"[{"match":{"left":{"payload":{"field":"saddr","protocol":"ip"}},"op":"==","right":"10.9.9.9"}},{"drop":null}]"#))
        #expect(live.rules[4] == .unknown(comment: "allow-icmp", expression: #"[{"counter":{"bytes":0,"packets":0}},{"accept":null}]"#))
        for index in [6, 7, 9] {
            guard case .unknown = live.rules[index] else {
                Issue.record("rule \(index) (\(live.rules[index])) should be unknown")
                continue
            }
        }
        #expect(live.extraObjects == ["set blocked", "chain input", #"rule in chain input: [{"counter":{"bytes":0,"packets":0}}]"#])

        let fields = live.fields
        guard case .map(let rules)? = fields["rules"], case .map(let order)? = fields["order"] else {
            Issue.record("no rules/order maps in \(fields)")
            return
        }
        #expect(rules.keys.sorted() == ["#1", "allow-icmp", "allow-icmp#5", "allow-replies", "bitmask", "blocked", "drop-http", "negated", "rst", "ssh"].sorted())
        #expect(rules["#1"] == .string(#"unknown rule: [{"match":{"left":{"payload":{"field":"saddr","protocol":"ip"}},"op":"==","right":"10.9.9.9"}},{"drop":null}]"#))
        #expect(order["allow-icmp"] == .string("after #1"))

        // The plan removes every hand-made thing and relinks allow-icmp to the start.
        let set = try manifestSet(firewallLabYAML + "\n---\n" + s1EdgePolicyYAML)
        let id = ResourceID(kind: FirewallPolicySpec.kind, name: "s1-edge")
        var observed = inSyncObservation(of: set)
        let index = try #require(observed.firstIndex { $0.id == id })
        observed[index].fields = fields
        let result = try Planner(observedKinds: [FirewallPolicySpec.kind]).plan(desired: set, observed: observed, source: testSource, instance: "test")
        let change = try #require(result.changes.first)
        #expect(result.changes.count == 1 && change.action == .update)
        #expect(change.fields.filter { $0.after != nil }.map(\.path) == ["extraObjects", "order.allow-icmp"])
        #expect(change.fields.filter { $0.after == nil }.map(\.path) == [
            "order.#1", "order.allow-icmp#5", "order.bitmask", "order.blocked", "order.negated", "order.rst", "order.ssh",
            "rules.#1", "rules.allow-icmp#5", "rules.bitmask", "rules.blocked", "rules.negated", "rules.rst", "rules.ssh",
        ])
    }

    @Test func reapplyingRemovesEveryHandEdit() throws {
        let policy = try firewallPolicy("s1-edge", in: s1EdgePolicyYAML)
        let live = try NftablesJSON.parseTable(try NftablesFixture.text("s1-edge-reapplied.json"), table: "converge_s1-edge")
        #expect(live.fields == policy.desiredFields(metadata: Metadata(name: "s1-edge")))
    }

    @Test func shellCommandCutsLongScriptsAtLineEnds() {
        let script = (0..<50).map { "line \($0) é" }.joined(separator: "\n") + "\n" + String(repeating: "x", count: 120) + "\n"
        let command = NftablesRuleset.shellCommand(nft: ["-c", "-f", "-", "it's"], script: script, pieceLimit: 40)
        #expect(Array(command.prefix(4)) == ["sh", "-c", #"printf %s "$@" | nft '-c' '-f' '-' 'it'\''s'"#, "sh"])
        let pieces = command.dropFirst(4)
        #expect(pieces.joined() == script)
        #expect(pieces.allSatisfy { $0.utf8.count <= 40 })
        #expect(pieces.dropLast(4).allSatisfy { $0.hasSuffix("\n") })
        #expect(NftablesRuleset.shellCommand(nft: ["-f", "-"], script: "flush ruleset\n").dropFirst(4) == ["flush ruleset\n"])
    }

    @Test func tablesListingAndErrors() throws {
        let tables = try NftablesJSON.tables(try NftablesFixture.text("tables.json"))
        #expect(tables.map { "\($0.family) \($0.name)" } == ["inet converge_s1-edge", "inet converge_lab.varied-1", "ip other"])
        #expect(tables.compactMap { NftablesRuleset.policyName(forTable: $0.name) } == ["s1-edge", "lab.varied-1"])
        #expect(NftablesJSON.isMissingTable(stderr: try NftablesFixture.text("missing-table.stderr")))
        #expect(!NftablesJSON.isMissingTable(stderr: "Error: Could not process rule: Operation not permitted"))

        #expect(throws: NftablesJSONError.tableMissing("converge_other")) {
            try NftablesJSON.parseTable(try NftablesFixture.text("s1-edge.json"), table: "converge_other")
        }
        #expect(throws: NftablesJSONError.self) { try NftablesJSON.parseTable("Error: nope", table: "converge_x") }
        #expect(throws: NftablesJSONError.unexpectedShape("expected {\"nftables\": [...]}")) {
            try NftablesJSON.parseTable("{\"rules\": []}", table: "converge_x")
        }
    }

    @Test func aTableWithoutItsChainShowsTheChainMissing() throws {
        let json = #"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "inet", "name": "converge_x", "handle": 1}}]}"#
        let live = try NftablesJSON.parseTable(json, table: "converge_x")
        #expect(live.forwardChain == nil)
        #expect(live.fields["defaultAction"] == nil)
        #expect(live.fields["chain"] == nil)
        #expect(live.fields["rules"] == .map(FieldMap()))
    }

    @Test func rulesTheModelCannotSayAreUnknown() throws {
        func parse(_ expressions: String, comment: String? = "r") throws -> LiveFirewallRule {
            let commentField = comment.map { #", "comment": "\#($0)""# } ?? ""
            let json = """
                {"nftables": [{"table": {"family": "inet", "name": "t"}},
                 {"rule": {"family": "inet", "table": "t", "chain": "forward", "handle": 2\(commentField), "expr": \(expressions)}}]}
                """
            return try #require(try NftablesJSON.parseTable(json, table: "t").rules.first)
        }
        let tcp = #"{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}"#
        let udpPort = #"{"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 53}}"#
        let icmpProto = #"{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "protocol"}}, "right": "icmp"}}"#
        // Recognised: numeric protocol, explicit protocol before ports.
        #expect(try parse(#"[{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "protocol"}}, "right": 6}}, {"accept": null}]"#)
            == .rule(FirewallRule(name: "r", action: .accept, ipProtocol: .tcp)))
        #expect(try parse(#"[{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "udp"}}, \#(udpPort), {"reject": null}]"#)
            == .rule(FirewallRule(name: "r", action: .reject, ipProtocol: .udp, ports: [FirewallRule.PortRange(53)].compactMap { $0 })))
        // Not recognised: no comment, no verdict, a statement after the verdict, conflicting
        // protocols, a repeated match, other reject kinds, a ct direction.
        for (expressions, comment) in [
            (#"[{"accept": null}]"#, nil),
            ("[\(tcp)]", "r"),
            (#"[{"accept": null}, {"counter": null}]"#, "r"),
            ("[\(tcp), \(udpPort), {\"accept\": null}]", "r"),
            ("[\(icmpProto), \(udpPort), {\"drop\": null}]", "r"),
            ("[\(udpPort), \(udpPort), {\"drop\": null}]", "r"),
            (#"[{"reject": {"type": "tcp reset"}}]"#, "r"),
            (#"[{"match": {"op": "==", "left": {"ct": {"key": "state", "dir": "original"}}, "right": "new"}}, {"accept": null}]"#, "r"),
            (#"[{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "10.0.0.1", "len": 8}}}}, {"accept": null}]"#, "r"),
            (#"[{"jump": {"target": "elsewhere"}}]"#, "r"),
        ] as [(String, String?)] {
            let rule = try parse(expressions, comment: comment)
            guard case .unknown(let found, _) = rule else {
                Issue.record("\(expressions) parsed as \(rule)")
                continue
            }
            #expect(found == comment)
        }
    }
}
