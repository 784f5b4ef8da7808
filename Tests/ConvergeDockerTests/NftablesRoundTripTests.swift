import ConvergeCore
import Foundation
import Testing

@testable import ConvergeDocker

/// Renders policies, applies them with the real nft in a throwaway `converge-lab/router:1`
/// container, lists the table back as JSON and parses it: the result must be the model that
/// was rendered, field for field, or the diff would report drift on every run. The container
/// is named `cvt-nft-<random>` and removed when the test ends, pass or fail.
@Suite("nftables round trip on the lab router")
struct NftablesRoundTripTests {
    static let image = "converge-lab/router:1"
    let engine = DockerEngine(requestTimeout: .seconds(60))

    static func rule(_ name: String, _ action: FirewallRule.Action, _ ipProtocol: FirewallRule.IPProtocol = .any,
                     source: String? = nil, destination: String? = nil, ports: [(Int, Int)] = [],
                     icmp: [FirewallRule.ICMPType] = [], states: [FirewallRule.ConnectionState] = []) -> FirewallRule {
        FirewallRule(name: name, action: action, ipProtocol: ipProtocol, source: source.flatMap(IPv4Network.init),
                     destination: destination.flatMap(IPv4Network.init),
                     ports: ports.compactMap { FirewallRule.PortRange(lower: $0.0, upper: $0.1) }, icmpTypes: icmp, states: states)
    }

    /// The S1 policy of stage 2.
    static let s1Edge = FirewallPolicySpec(router: "s1-router", defaultAction: .drop, rules: [
        rule("allow-icmp", .accept, .icmp, source: "192.168.100.0/24", destination: "192.168.200.0/24", icmp: [.echoRequest, .echoReply]),
        rule("allow-replies", .accept, states: [.established, .related]),
        rule("drop-http", .drop, .tcp, destination: "192.168.200.10/32", ports: [(80, 80)]),
    ])

    /// Every shape the renderer writes, including port lists nftables merges.
    static let varied = FirewallPolicySpec(router: "r", defaultAction: .accept, rules: [
        rule("web", .accept, .tcp, source: "10.0.0.0/8", ports: [(443, 443), (80, 80), (81, 81), (8000, 8080)], states: [.new]),
        rule("adjacent", .accept, .udp, ports: [(100, 100), (101, 101), (102, 102)]),
        rule("dns", .reject, .udp, destination: "10.1.0.53/32", ports: [(53, 53)]),
        rule("any-tcp", .accept, .tcp),
        rule("any-udp-from-host", .drop, .udp, source: "172.16.0.5/32"),
        rule("ping-only", .accept, .icmp),
        rule("icmp-errors", .accept, .icmp, icmp: [.timeExceeded, .destinationUnreachable, .parameterProblem]),
        rule("everything-v4", .drop, source: "0.0.0.0/0", states: [.untracked, .invalid]),
        rule("tcp-reject", .reject, .tcp, ports: [(22, 22)]),
        rule("all-ports", .accept, .tcp, ports: [(1, 65535)]),
        rule("last", .reject),
    ])

    /// A policy of 1,000 rules, as the benchmark applies.
    static let large = FirewallPolicySpec(router: "r", defaultAction: .drop, rules: (0..<1000).map { index in
        rule(String(format: "rule-%04d", index), index % 3 == 0 ? .drop : .accept, index % 2 == 0 ? .tcp : .udp,
             source: "10.\(index / 256).\(index % 256).0/24", destination: "192.168.\(index % 200).0/24",
             ports: [(10000 + index, 10000 + index)], states: index % 5 == 0 ? [.new] : [])
    })

    @Test("apply, list and parse give back the rendered policy", arguments: ["s1-edge", "varied", "large"])
    func roundTrip(_ name: String) async throws {
        let policy = try #require(["s1-edge": Self.s1Edge, "varied": Self.varied, "large": Self.large][name])
        try await withRouter { router in
            let started = ContinuousClock.now
            try await apply(NftablesRuleset.replaceScript(policy, name: name), in: router)
            let elapsed = ContinuousClock.now - started
            if name == "large" { print("nft -f of \(policy.rules.count) rules in one transaction, through exec: \(elapsed)") }
            let live = try await list(name, in: router)
            #expect(live.rules == policy.rules.map(LiveFirewallRule.rule))
            #expect(live.defaultAction == policy.defaultAction)
            #expect(live.extraObjects.isEmpty)
            #expect(live.fields == policy.desiredFields(metadata: Metadata(name: name)))
            // Applying the same policy again changes nothing observable.
            try await apply(NftablesRuleset.replaceScript(policy, name: name), in: router)
            #expect(try await list(name, in: router).fields == policy.desiredFields(metadata: Metadata(name: name)))
        }
    }

    /// 3,000 rules make a script of about 300 KB, over Linux's 128 KiB limit for one exec
    /// argument: `shellCommand` passes it in pieces, and the `nft -c` check sees all of it.
    @Test func aScriptLargerThanOneArgumentIsPassedInPieces() async throws {
        let policy = FirewallPolicySpec(router: "r", defaultAction: .drop, rules: (0..<3000).map { index in
            Self.rule(String(format: "rule-%04d", index), .accept, .tcp, source: "10.\(index / 256).\(index % 256).0/24",
                      destination: "192.168.\(index % 200).0/24", ports: [(10000 + index, 10000 + index), (443, 443)], states: [.new, .established])
        })
        let script = NftablesRuleset.replaceScript(policy, name: "huge")
        let command = NftablesRuleset.shellCommand(nft: ["-c", "-f", "-"], script: script)
        #expect(script.utf8.count > 131_072)
        #expect(command.count > 5)
        try await withRouter { router in
            let check = try await exec(command, in: router)
            #expect(check.exitCode == 0, "nft -c failed: \(check.stderr)")
            try await apply(script, in: router)
            #expect(try await list("huge", in: router).fields == policy.desiredFields(metadata: Metadata(name: "huge")))
        }
    }

    @Test func handEditsAreSeenAndTheNextApplyRemovesThem() async throws {
        try await withRouter { router in
            let desired = Self.s1Edge.desiredFields(metadata: Metadata(name: "s1-edge"))
            try await apply(NftablesRuleset.replaceScript(Self.s1Edge, name: "s1-edge"), in: router)
            // Someone adds a rule, a chain and a set inside Converge's table, and a table of their own.
            try await apply("""
                insert rule inet converge_s1-edge forward tcp dport 22 accept
                add chain inet converge_s1-edge input { type filter hook input priority 0; policy accept; }
                add set inet converge_s1-edge blocked { type ipv4_addr; }
                add table ip theirs
                """, in: router)
            let edited = try await list("s1-edge", in: router)
            #expect(edited.rules.first == .unknown(comment: nil, expression: #"[{"match":{"left":{"payload":{"field":"dport","protocol":"tcp"}},"op":"==","right":22}},{"accept":null}]"#))
            #expect(Set(edited.extraObjects) == ["chain input", "set blocked"])
            #expect(edited.fields != desired)

            try await apply(NftablesRuleset.replaceScript(Self.s1Edge, name: "s1-edge"), in: router)
            #expect(try await list("s1-edge", in: router).fields == desired)
            // Tables that are not Converge's are left alone.
            let tables = try await exec(NftablesRuleset.listTablesCommand, in: router)
            #expect(try NftablesJSON.tables(tables.stdout).map(\.name).contains("theirs"))
        }
    }

    @Test func removalIsIdempotentAndLeavesOtherTables() async throws {
        try await withRouter { router in
            try await apply(NftablesRuleset.replaceScript(Self.s1Edge, name: "s1-edge"), in: router)
            try await apply(NftablesRuleset.replaceScript(Self.varied, name: "varied"), in: router)
            try await apply(NftablesRuleset.removeScript(policyName: "s1-edge"), in: router)
            try await apply(NftablesRuleset.removeScript(policyName: "s1-edge"), in: router)
            let missing = try await exec(NftablesRuleset.listCommand(policyName: "s1-edge"), in: router)
            #expect(missing.exitCode != 0)
            #expect(NftablesJSON.isMissingTable(stderr: missing.stderr))
            #expect(try await list("varied", in: router).fields == Self.varied.desiredFields(metadata: Metadata(name: "varied")))
            // A snapshot (the text nft lists) put back with the replace idiom restores the table.
            let snapshot = try await exec(["nft", "list", "table", "inet", "converge_varied"], in: router)
            try await apply(NftablesRuleset.replaceScript(Self.s1Edge, name: "varied"), in: router)
            try await apply(NftablesRuleset.replaceScript(withTable: snapshot.stdout, policyName: "varied"), in: router)
            #expect(try await list("varied", in: router).fields == Self.varied.desiredFields(metadata: Metadata(name: "varied")))
        }
    }

    @Test func aBrokenScriptFailsTheCheckAndChangesNothing() async throws {
        try await withRouter { router in
            try await apply(NftablesRuleset.replaceScript(Self.s1Edge, name: "s1-edge"), in: router)
            let broken = NftablesRuleset.replaceScript(Self.varied, name: "s1-edge").replacingOccurrences(of: "tcp dport 22", with: "tcp dport 99999")
            let result = try await nft(broken, in: router)
            #expect(result.exitCode != 0)
            #expect(try await list("s1-edge", in: router).fields == Self.s1Edge.desiredFields(metadata: Metadata(name: "s1-edge")))
        }
    }

    // MARK: - Helpers

    /// Runs `body` with a fresh router container (NET_ADMIN, no network) and removes it after.
    func withRouter(_ body: (String) async throws -> Void) async throws {
        let name = "cvt-nft-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
        let create = ContainerCreate(
            image: Self.image, labels: ["converge.test/run": name],
            hostConfig: DockerHostConfig(networkMode: "none", capAdd: ["NET_ADMIN"]))
        do {
            let id = try await engine.createContainer(name: name, create)
            try await engine.startContainer(id)
            try await body(id)
        } catch {
            await remove(name)
            throw error
        }
        await remove(name)
    }

    private func remove(_ name: String) async {
        do {
            try await engine.removeContainer(name, force: true)
        } catch let error as DockerEngineError where error.isNotFound {
        } catch {
            Issue.record("cleanup of \(name) failed: \(error)")
        }
    }

    /// `nft -f -` with `script` piped in (exec has no stdin: the script travels as arguments).
    func nft(_ script: String, in router: String) async throws -> ExecResult {
        try await exec(NftablesRuleset.shellCommand(nft: ["-f", "-"], script: script), in: router)
    }

    func apply(_ script: String, in router: String) async throws {
        let result = try await nft(script, in: router)
        #expect(result.exitCode == 0, "nft -f failed: \(result.stderr)\n\(script.prefix(2000))")
        if result.exitCode != 0 { throw NftFailed(stderr: result.stderr) }
    }

    struct NftFailed: Error {
        var stderr: String
    }

    func exec(_ command: [String], in router: String) async throws -> ExecResult {
        try await engine.exec(container: router, command: command)
    }

    func list(_ policy: String, in router: String) async throws -> LiveFirewallTable {
        let result = try await exec(NftablesRuleset.listCommand(policyName: policy), in: router)
        try #require(result.exitCode == 0, "nft list failed: \(result.stderr)")
        return try NftablesJSON.parseTable(result.stdout, table: NftablesRuleset.tableName(forPolicy: policy))
    }
}
