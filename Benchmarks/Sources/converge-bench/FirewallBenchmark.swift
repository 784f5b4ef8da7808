import ConvergeCore
import ConvergeDocker
import Foundation

/// `firewall`: what a firewall change costs end to end, and what one nftables transaction of
/// 1,000 rules costs against the seed's one `iptables -A` per rule.
///
/// 1. Scenario S1 (the example manifests, approvals left out) under this run's own names and
///    subnets; after one untimed creating reconcile, each round toggles one rule (`allow-dns`,
///    udp 53 accept) in the FirewallPolicy's file and times `converge reconcile` as a
///    subprocess until it returns: nft check, one `nft -f` transaction, the policy's `verify`
///    probes (ping and HTTP through the router) passing, the run's end.
/// 2. In a throwaway router container (`converge-lab/router:1`, NET_ADMIN, no network): a
///    rendered 1,000-rule `FirewallPolicy` applied through `DockerEngine.exec`, timed from the
///    exec call to its return; then, on the same container, the seed's way: 1,000
///    `docker exec ROUTER iptables -A FORWARD …`, one CLI process each, and the same 1,000
///    `iptables -A` through the Engine API's exec (no CLI start-up), for a fair comparison.
///
/// Everything it makes is named `cvb-<random>-*` (converge's objects also carry the
/// `bench-<random>` instance label) and is removed at the end, on failure and on SIGINT/SIGTERM,
/// with the temporary folder holding the manifests and the run journal.
final class FirewallBenchmark: @unchecked Sendable {
    static let name = "firewall"
    static let routerImage = "converge-lab/router:1"
    static let busyboxImage = "converge-lab/busybox:1"
    static let ruleCount = 1_000
    /// The rule the rounds add and remove, inserted after `allow-http`.
    static let toggledRule = "    - {name: allow-dns, action: accept, protocol: udp, ports: [53]}"

    let suffix = randomSuffix()
    var prefix: String { "cvb-\(suffix)" }
    var instance: String { "bench-\(suffix)" }
    let root: String
    let converge: String
    let packagePath: String
    var manifests: String { root + "/manifests" }
    var stateFile: String { root + "/state.db" }
    var firewallFile: String { manifests + "/40-firewall.yaml" }
    /// S1's router and policy under this run's names.
    var s1Router: String { "\(prefix)-router" }
    var s1Policy: String { "\(prefix)-edge" }
    /// The throwaway router of part 2 and its policy.
    var bulkRouter: String { "\(prefix)-fwrouter" }
    var bulkPolicy: String { "\(prefix)-bulk" }
    let engine = DockerEngine()
    private var cleanedUp = false
    private let lock = NSLock()

    init(converge: String, packagePath: String) throws {
        self.converge = converge
        self.packagePath = packagePath
        root = try makeTemporaryDirectory(prefix: "cvb-firewall-")
    }

    static func run(runs: Int, seedRuns: Int, converge: String?, packagePath: String) throws -> [Row] {
        let binary = try converge ?? DockerBenchmark.buildConverge(packagePath: packagePath)
        let bench = try FirewallBenchmark(converge: binary, packagePath: packagePath)
        Interruption.onInterrupt { bench.cleanUp() }
        defer { bench.cleanUp() }
        for image in [routerImage, busyboxImage] {
            guard (try? Subprocess.check(["docker", "image", "inspect", image])) != nil else {
                throw Subprocess.Failure(description: "image \(image) is missing; build the lab images with scripts/lab-images.sh")
            }
        }
        log("firewall: prefix \(bench.prefix), converge instance \(bench.instance), \(runs) runs, \(seedRuns) seed runs")
        var rows = try bench.measureRuleChange(runs: runs)
        rows += try bench.measureBulk(runs: runs, seedRuns: seedRuns)
        return rows
    }

    // MARK: 1. One rule change, reconcile to verified

    func measureRuleChange(runs: Int) throws -> [Row] {
        let (client, server) = try pickSubnets()
        try writeScenario(clientOctet: client, serverOctet: server)
        let base = try String(contentsOfFile: firewallFile, encoding: .utf8)
        guard let httpLine = base.split(separator: "\n").first(where: { $0.contains("name: allow-http,") }) else {
            throw Subprocess.Failure(description: "\(firewallFile) has no allow-http rule to insert allow-dns after")
        }
        let withDNS = base.replacingOccurrences(of: String(httpLine), with: String(httpLine) + "\n" + Self.toggledRule)

        log("firewall: S1 as \(prefix)-* on 10.214.\(client).0/24 and 10.214.\(server).0/24: creating reconcile (untimed)")
        let setup = try reconcile()
        guard setup.status == 0, setup.stderr.contains("succeeded") else {
            throw Subprocess.Failure(description: "the creating reconcile did not succeed: \(setup.summary)")
        }
        log("firewall: S1 created in \(Table.format(setup.seconds, .seconds))")

        var wall: [Double] = [], stepSeconds: [Double] = []
        for round in 0..<runs {
            // The first round adds the rule, the next removes it again, and so on: one rule changes every round.
            let adding = round % 2 == 0
            try write(adding ? withDNS : base, to: firewallFile)
            let result = try reconcile()
            guard result.status == 0, result.stderr.contains("succeeded"),
                result.stdout.contains("Plan: 0 to add, 1 to change, 0 to destroy.")
            else {
                throw Subprocess.Failure(
                    description: "round \(round + 1): the reconcile did not apply one policy change: \(result.summary)\n\(result.stdout)")
            }
            // Not timed: the rule really is (or is no longer) in the router's table.
            let live = try Subprocess.check([
                "docker", "exec", s1Router, "nft", "list", "table", NftablesRuleset.family,
                NftablesRuleset.tableName(forPolicy: s1Policy),
            ]).stdout
            guard live.contains("\"allow-dns\"") == adding else {
                throw Subprocess.Failure(
                    description: "round \(round + 1): allow-dns is \(adding ? "missing from" : "still in") the live table:\n\(live)")
            }
            wall.append(result.seconds)
            if let step = Self.stepMilliseconds(result.stderr, resource: "FirewallPolicy/\(s1Policy)") { stepSeconds.append(step / 1000) }
            log(
                "firewall: round \(round + 1)/\(runs): \(adding ? "+" : "-") allow-dns: reconcile \(Table.format(result.seconds, .seconds))"
                    + (stepSeconds.count == round + 1 ? " (policy step \(Table.format(stepSeconds[round], .seconds)))" : ""))
        }
        return [
            Row(
                Self.name, "one rule change: converge reconcile -> verified", samples: wall, target: "< 2 s", bound: 2,
                note: "release binary, subprocess wall time; each round adds or removes allow-dns (udp 53 accept) in S1's policy: plan, "
                    + "nft -c + nft -f, verify probes ping + HTTP through the router, then the run's closing probe pass"),
            Row(
                Self.name, "  of which the FirewallPolicy update step", samples: stepSeconds,
                note:
                    "as converge reports it (`updated FirewallPolicy/... (N ms)`): router lookup, backend probe, previous table, nft -c, nft -f, verify probes; not the journaled snapshot taken before it"
            ),
        ]
    }

    /// `[1/1] updated FirewallPolicy/x (287 ms)` → 287.
    static func stepMilliseconds(_ stderr: String, resource: String) -> Double? {
        for line in stderr.split(separator: "\n") where line.contains(" \(resource) (") && line.hasSuffix(" ms)") {
            guard let open = line.lastIndex(of: "(") else { continue }
            return Double(line[line.index(after: open)...].dropLast(4))
        }
        return nil
    }

    private func reconcile() throws -> Subprocess.Result {
        try Subprocess.run(
            [converge, "reconcile", manifests, "--instance", instance, "--state", stateFile, "--color", "never"],
            environment: ["NO_COLOR": "1"])
    }

    /// Two adjacent /24s in 10.214.0.0/16 that no Docker network on this engine overlaps.
    private func pickSubnets() throws -> (Int, Int) {
        let first = try freeSubnets(count: 2, in: 214)
        return (first, first + 1)
    }

    /// The example manifests without approvals, renamed `s1-` → `cvb-<random>-` and moved to
    /// this run's subnets.
    private func writeScenario(clientOctet: Int, serverOctet: Int) throws {
        let source = packagePath + "/manifests"
        let manager = FileManager.default
        try manager.createDirectory(atPath: manifests, withIntermediateDirectories: true)
        let files = try manager.contentsOfDirectory(atPath: source).filter { $0.hasSuffix(".yaml") && $0 != "60-approvals.yaml" }.sorted()
        guard files.contains("40-firewall.yaml") else { throw Subprocess.Failure(description: "\(source) has no 40-firewall.yaml") }
        for file in files {
            let text = try String(contentsOfFile: source + "/" + file, encoding: .utf8)
                .replacingOccurrences(of: "s1-", with: prefix + "-")
                .replacingOccurrences(of: "192.168.100.", with: "10.214.\(clientOctet).")
                .replacingOccurrences(of: "192.168.200.", with: "10.214.\(serverOctet).")
            try write(text, to: manifests + "/" + file)
        }
    }

    private func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    // MARK: 2. 1,000 rules in one transaction, against the seed's iptables -A per rule

    /// Rule i: tcp from 10.215.x.y (one address each) to 10.216.0.0/24, port 10000 + i, accept:
    /// the same traffic in both the nftables policy and the iptables rules.
    static func bulkRule(_ index: Int) -> (source: String, destination: String, port: Int) {
        ("10.215.\(index / 250).\(index % 250 + 1)", "10.216.0.0/24", 10_000 + index)
    }

    func bulkPolicySpec() throws -> FirewallPolicySpec {
        let rules = try (0..<Self.ruleCount).map { index in
            let rule = Self.bulkRule(index)
            guard let source = IPv4Network(rule.source + "/32"), let destination = IPv4Network(rule.destination),
                let port = FirewallRule.PortRange(rule.port)
            else {
                throw Subprocess.Failure(description: "bad generated rule \(index)")
            }
            return FirewallRule(
                name: String(format: "r%04d", index), action: .accept, ipProtocol: .tcp,
                source: source, destination: destination, ports: [port])
        }
        return FirewallPolicySpec(router: bulkRouter, defaultAction: .drop, rules: rules)
    }

    func measureBulk(runs: Int, seedRuns: Int) throws -> [Row] {
        try Subprocess.check([
            "docker", "run", "-d", "--name", bulkRouter, "--network", "none", "--cap-add", "NET_ADMIN",
            "--label", "converge-bench=\(suffix)", Self.routerImage,
        ])
        let spec = try bulkPolicySpec()
        let script = NftablesRuleset.replaceScript(spec, name: bulkPolicy)
        let apply = NftablesRuleset.shellCommand(nft: ["-f", "-"], script: script)
        let check = NftablesRuleset.shellCommand(nft: ["-c", "-f", "-"], script: script)
        let remove = NftablesRuleset.shellCommand(nft: ["-f", "-"], script: NftablesRuleset.removeScript(policyName: bulkPolicy))
        let pieces = apply.count - 4
        log("firewall: 1,000-rule policy in \(bulkRouter): script \(script.utf8.count / 1024) KiB in \(pieces) argument piece(s)")

        let engine = self.engine
        let router = bulkRouter
        /// One exec, timed from the call to its return; fails on a non-zero exit.
        func exec(_ command: [String], _ what: String) throws -> Double {
            let (result, seconds) = try blocking {
                let started = Clock.now()
                let result = try await engine.exec(container: router, command: command)
                return (result, Clock.now() - started)
            }
            guard result.exitCode == 0 else {
                throw Subprocess.Failure(description: "\(what) exited with \(result.exitCode): \(result.stderr.prefix(2000))")
            }
            return seconds
        }
        // Untimed: negotiates the API version and warms the exec path.
        _ = try exec(["nft", "--version"], "nft --version")
        let table = NftablesRuleset.tableName(forPolicy: bulkPolicy)

        var applied: [Double] = [], checkedAndApplied: [Double] = []
        for round in 0..<runs {
            _ = try exec(remove, "remove the table")
            let seconds = try exec(apply, "nft -f (1,000 rules)")
            try expectRuleCount(nft: table)
            _ = try exec(remove, "remove the table")
            let checked = try exec(check, "nft -c (1,000 rules)") + exec(apply, "nft -f (1,000 rules)")
            try expectRuleCount(nft: table)
            applied.append(seconds)
            checkedAndApplied.append(checked)
            log(
                "firewall: run \(round + 1)/\(runs): nft -f \(Table.format(seconds, .seconds)), nft -c + nft -f \(Table.format(checked, .seconds))"
            )
        }
        _ = try exec(remove, "remove the table")

        var seedCLI: [Double] = [], seedAPI: [Double] = []
        for round in 0..<seedRuns {
            try Subprocess.check(["docker", "exec", bulkRouter, "iptables", "-F", "FORWARD"])
            var started = Clock.now()
            for index in 0..<Self.ruleCount {
                let rule = Self.bulkRule(index)
                try Subprocess.check([
                    "docker", "exec", bulkRouter, "iptables", "-A", "FORWARD", "-s", rule.source, "-d", rule.destination,
                    "-p", "tcp", "--dport", String(rule.port), "-j", "ACCEPT",
                ])
            }
            seedCLI.append(Clock.now() - started)
            try expectRuleCount(iptables: true)
            log("firewall: seed run \(round + 1)/\(seedRuns): 1,000 x docker exec iptables -A \(Table.format(seedCLI[round], .seconds))")

            try Subprocess.check(["docker", "exec", bulkRouter, "iptables", "-F", "FORWARD"])
            started = Clock.now()
            for index in 0..<Self.ruleCount {
                let rule = Self.bulkRule(index)
                _ = try exec(
                    [
                        "iptables", "-A", "FORWARD", "-s", rule.source, "-d", rule.destination, "-p", "tcp",
                        "--dport", String(rule.port), "-j", "ACCEPT",
                    ], "iptables -A (rule \(index))")
            }
            seedAPI.append(Clock.now() - started)
            try expectRuleCount(iptables: true)
            try Subprocess.check(["docker", "exec", bulkRouter, "iptables", "-F", "FORWARD"])
            log(
                "firewall: seed run \(round + 1)/\(seedRuns): 1,000 x Engine API exec iptables -A \(Table.format(seedAPI[round], .seconds))"
            )
        }

        let converge = Stats.median(applied)
        let version =
            (try? Subprocess.run(["docker", "exec", bulkRouter, "iptables", "--version"]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)) ?? "iptables"
        return [
            Row(
                Self.name, "1,000-rule policy: one nft -f transaction (Engine API exec)", samples: applied, target: "< 1 s", bound: 1,
                note: "NftablesRuleset.replaceScript (\(script.utf8.count / 1024) KiB) through NftablesRuleset.shellCommand and "
                    + "DockerEngine.exec, from the call to its return, into a table-less router; \(Self.ruleCount) rules counted back each run"
            ),
            Row(Self.name, "1,000-rule policy: nft -c + nft -f (as FirewallApplier.apply)", samples: checkedAndApplied),
            Row(
                Self.name, "seed: 1,000 x `docker exec ROUTER iptables -A FORWARD`", samples: seedCLI,
                note: "one docker CLI process per rule, FORWARD flushed first, on the same router (\(version))"),
            Row(
                Self.name, "seed rules through the Engine API exec (no CLI)", samples: seedAPI,
                note: "the same 1,000 iptables -A, each through DockerEngine.exec"),
            Row(Self.name, "ratio seed (CLI) / converge nft -f (medians)", samples: [Stats.median(seedCLI) / converge], unit: .ratio),
            Row(
                Self.name, "ratio seed (Engine API) / converge nft -f (medians)", samples: [Stats.median(seedAPI) / converge], unit: .ratio),
        ]
    }

    /// Not timed: the router really holds the 1,000 rules (nft: in the policy's table; iptables:
    /// in FORWARD).
    private func expectRuleCount(nft table: String? = nil, iptables: Bool = false) throws {
        let listed = table.map { ["nft", "list", "table", NftablesRuleset.family, $0] } ?? ["iptables", "-S", "FORWARD"]
        let output = try Subprocess.check(["docker", "exec", bulkRouter] + listed).stdout
        let count = output.split(separator: "\n").filter { table == nil ? $0.hasPrefix("-A FORWARD") : $0.contains("comment \"r") }.count
        guard count == Self.ruleCount else {
            throw Subprocess.Failure(description: "\(listed.joined(separator: " ")) shows \(count) rules, expected \(Self.ruleCount)")
        }
    }

    // MARK: Cleaning up

    /// converge's objects (by its instance label), anything named with the prefix, then the
    /// temporary folder (manifests and journal).
    func cleanUp() {
        lock.lock()
        defer { lock.unlock() }
        guard !cleanedUp else { return }
        cleanedUp = true
        for filter in ["label=\(OwnershipLabel.managedBy)=\(instance)", "label=converge-bench=\(suffix)", "name=\(prefix)-"] {
            let containers =
                (try? Subprocess.run(["docker", "ps", "-aq", "--filter", filter], evenIfInterrupted: true).stdout
                    .split(separator: "\n").map(String.init)) ?? []
            if !containers.isEmpty { _ = try? Subprocess.run(["docker", "rm", "-f"] + containers, evenIfInterrupted: true) }
        }
        for filter in ["label=\(OwnershipLabel.managedBy)=\(instance)", "name=\(prefix)-"] {
            let networks =
                (try? Subprocess.run(["docker", "network", "ls", "-q", "--filter", filter], evenIfInterrupted: true).stdout
                    .split(separator: "\n").map(String.init)) ?? []
            if !networks.isEmpty { _ = try? Subprocess.run(["docker", "network", "rm"] + networks, evenIfInterrupted: true) }
        }
        let left =
            ((try? Subprocess.run(["docker", "ps", "-aq", "--filter", "name=\(prefix)-"], evenIfInterrupted: true).stdout) ?? "")
            + ((try? Subprocess.run(["docker", "network", "ls", "-q", "--filter", "name=\(prefix)-"], evenIfInterrupted: true).stdout) ?? "")
        if !left.isEmpty { log("firewall: WARNING: objects named \(prefix)-* are still there: \(left)") }
        try? FileManager.default.removeItem(atPath: root)
        log("firewall: cleaned up \(prefix)-*, instance \(instance), \(root)")
    }
}
