import ConvergeCore
import Foundation

/// `FirewallPolicy` on a router container: observed with `nft -j list table`, applied in one
/// `nft -f` transaction after an `nft -c` check, and guarded like `commit confirmed` on
/// VyOS or Junos, except that probes confirm instead of a person: the previous table is kept,
/// the policy's `verify` probes run until they all pass or the deadline passes, and on a miss
/// the previous table comes back by itself and the step fails (so the run rolls back).
struct FirewallApplier {
    let engine: DockerEngine
    let instance: String
    /// Which tool each router has, found once per provider (one exec saved per step).
    let backends: FirewallBackendCache

    /// The live tables of the desired policies, and Converge tables on this instance's
    /// routers that no manifest describes any more (to prune).
    func observe(_ policies: [Resource], in set: ManifestSet) async throws -> [ObservedResource] {
        var observed: [ObservedResource] = []
        var described: Set<String> = []
        for policy in policies {
            guard let spec = policy.spec(as: FirewallPolicySpec.self) else { continue }
            described.insert(policy.id.name)
            guard let router = try await routerContainer(spec.router), router.state == "running",
                  let fields = try await liveFields(policy.id.name, in: router.id) else { continue }
            observed.append(ObservedResource(id: policy.id, fields: fields, ownership: .managed, externalID: router.id,
                                             dependencies: [ResourceID(kind: RouterSpec.kind, name: spec.router)]))
        }
        let routers = try await engine.listContainers(all: false, labelFilters: [
            "\(OwnershipLabel.managedBy)=\(instance)", "\(OwnershipLabel.resource)",
        ]).filter { $0.labels?[OwnershipLabel.resource]?.hasPrefix("\(RouterSpec.kind)/") == true }
        for router in routers {
            let listed = try await engine.exec(container: router.id, command: NftablesRuleset.listTablesCommand)
            guard listed.exitCode == 0 else { continue }
            for table in try NftablesJSON.tables(listed.stdout) where table.family == NftablesRuleset.family {
                guard let name = NftablesRuleset.policyName(forTable: table.name), !described.contains(name) else { continue }
                observed.append(ObservedResource(id: ResourceID(kind: FirewallPolicySpec.kind, name: name), fields: FieldMap(),
                                                 ownership: .managed, externalID: router.id,
                                                 dependencies: router.labels?[OwnershipLabel.resource].flatMap(ResourceID.init).map { [$0] } ?? []))
            }
        }
        return observed
    }

    /// The previous ruleset (nil when there is none), journaled before a change so a
    /// rollback can put it back.
    func snapshot(policy name: String, router: String) async throws -> String {
        let previous = try await previousRules(name, in: router, backend: try await backend(of: router))
        return String(decoding: try JSONEncoder().encode(FirewallSnapshot(router: router, table: previous)), as: UTF8.self)
    }

    /// Applies `policy` and confirms it with its probes; restores the previous rules if they
    /// do not all pass before the deadline.
    func apply(_ policy: Resource, in set: ManifestSet) async throws {
        guard let spec = policy.spec(as: FirewallPolicySpec.self), let router = try await routerContainer(spec.router) else {
            throw FirewallError.routerMissing(policy.id)
        }
        let name = policy.id.name
        let backend = try await backend(of: router.id)
        let previous = try await previousRules(name, in: router.id, backend: backend)
        switch backend {
        case .nftables:
            let script = NftablesRuleset.replaceScript(spec, name: name)
            try await run(["nft", "-c", "-f", "-"], script: script, in: router.id, what: "check \(policy.id)")
            try await run(["nft", "-f", "-"], script: script, in: router.id, what: "apply \(policy.id)")
        case .iptables:
            let script = IptablesRuleset.restoreScript(spec, name: name)
            try await run(["iptables-restore", "--noflush", "--test"], script: script, in: router.id, what: "check \(policy.id)")
            try await run(["iptables-restore", "--noflush"], script: script, in: router.id, what: "apply \(policy.id)")
            try await shell(IptablesRuleset.hookCommand(policyName: name), in: router.id, what: "hook \(policy.id) into FORWARD")
        }
        let results = try await confirm(spec, in: set)
        guard results.allSatisfy(\.passed) else {
            try await restore(name, previous: previous, in: router.id, backend: backend)
            throw FirewallError.verificationFailed(policy.id, results.filter { !$0.passed })
        }
    }

    func remove(policy name: String, router: String) async throws {
        do {
            switch try await backend(of: router) {
            case .nftables:
                try await run(["nft", "-f", "-"], script: NftablesRuleset.removeScript(policyName: name), in: router, what: "remove FirewallPolicy/\(name)")
            case .iptables:
                try await shell(IptablesRuleset.removeCommand(policyName: name), in: router, what: "remove FirewallPolicy/\(name)")
            }
        } catch let error as DockerEngineError where error.isNotFound {
            return
        }
    }

    /// Puts back the rules a snapshot recorded (or removes the policy when there were none).
    func restore(from snapshot: String, policy name: String) async throws {
        let saved = try JSONDecoder().decode(FirewallSnapshot.self, from: Data(snapshot.utf8))
        try await restore(name, previous: saved.table, in: saved.router, backend: try await backend(of: saved.router))
    }

    private func restore(_ name: String, previous: String?, in router: String, backend: Backend) async throws {
        guard let previous else { return try await remove(policy: name, router: router) }
        switch backend {
        case .nftables:
            try await run(["nft", "-f", "-"], script: NftablesRuleset.replaceScript(withTable: previous, policyName: name), in: router,
                          what: "restore the previous FirewallPolicy/\(name)")
        case .iptables:
            try await run(["iptables-restore", "--noflush"], script: previous, in: router, what: "restore the previous FirewallPolicy/\(name)")
            try await shell(IptablesRuleset.hookCommand(policyName: name), in: router, what: "hook FirewallPolicy/\(name) into FORWARD")
        }
    }

    /// nftables where the router has `nft`; iptables-restore where it does not.
    enum Backend {
        case nftables, iptables
    }

    private func backend(of router: String) async throws -> Backend {
        if let known = backends[router] { return known }
        let probe = try await engine.exec(container: router, command: [
            "sh", "-c", "command -v nft >/dev/null && echo nft || { command -v iptables-restore >/dev/null && echo iptables; }",
        ])
        let backend: Backend
        switch probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines) {
        case "nft": backend = .nftables
        case "iptables": backend = .iptables
        default: throw FirewallError.noFirewallTool(router)
        }
        backends[router] = backend
        return backend
    }

    /// The policy as the router holds it, in the plan's field shape; nil when absent.
    private func liveFields(_ policy: String, in router: String) async throws -> FieldMap? {
        switch try await backend(of: router) {
        case .nftables: return try await liveTable(policy, in: router)?.fields
        case .iptables: return IptablesRuleset.fields(fromSave: try await iptablesSave(router), policyName: policy)
        }
    }

    /// What to restore the policy to: the nft table's text, or an iptables-restore script of
    /// the chain's rules; nil when the policy is not there.
    private func previousRules(_ policy: String, in router: String, backend: Backend) async throws -> String? {
        switch backend {
        case .nftables:
            return try await tableText(policy, in: router)
        case .iptables:
            let chain = IptablesRuleset.chainName(forPolicy: policy)
            let saved = try await iptablesSave(router).split(separator: "\n")
            guard saved.contains(where: { $0.hasPrefix(":\(chain) ") }) else { return nil }
            let rules = saved.filter { $0.hasPrefix("-A \(chain) ") }.map(String.init)
            return (["*filter", ":\(chain) - [0:0]", "-F \(chain)"] + rules + ["COMMIT"]).joined(separator: "\n") + "\n"
        }
    }

    private func iptablesSave(_ router: String) async throws -> String {
        let result = try await engine.exec(container: router, command: ["iptables-save", "-t", "filter"])
        guard result.exitCode == 0 else { throw DockerProviderError.command(container: router, command: "iptables-save -t filter", result: result) }
        return result.stdout
    }

    /// Runs the `verify` probes until all pass or `verifyTimeout` passes; the last results.
    private func confirm(_ spec: FirewallPolicySpec, in set: ManifestSet) async throws -> [ProbeResult] {
        let probes = spec.verify.compactMap { set[ResourceID(kind: ProbeSpec.kind, name: $0)] }
        guard !probes.isEmpty else { return [] }
        let runner = ProbeRunner(engine: engine)
        let deadline = ContinuousClock.now + .nanoseconds(spec.verifyTimeout)
        while true {
            let results = try await concurrentMap(probes, limit: probes.count) { probe in try await runner.run(probe, in: set) }
            if results.allSatisfy(\.passed) || ContinuousClock.now >= deadline { return results }
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    private func routerContainer(_ name: String) async throws -> ContainerSummary? {
        try await engine.listContainers(all: true, labelFilters: [
            "\(OwnershipLabel.managedBy)=\(instance)", "\(OwnershipLabel.resource)=\(RouterSpec.kind)/\(name)",
        ]).first
    }

    private func liveTable(_ policy: String, in router: String) async throws -> LiveFirewallTable? {
        let result = try await engine.exec(container: router, command: NftablesRuleset.listCommand(policyName: policy))
        if result.exitCode != 0, NftablesJSON.isMissingTable(stderr: result.stderr) { return nil }
        guard result.exitCode == 0 else {
            throw DockerProviderError.command(container: router, command: NftablesRuleset.listCommand(policyName: policy).joined(separator: " "), result: result)
        }
        return try NftablesJSON.parseTable(result.stdout, table: NftablesRuleset.tableName(forPolicy: policy))
    }

    private func tableText(_ policy: String, in router: String) async throws -> String? {
        let command = ["nft", "list", "table", NftablesRuleset.family, NftablesRuleset.tableName(forPolicy: policy)]
        let result = try await engine.exec(container: router, command: command)
        if result.exitCode != 0, NftablesJSON.isMissingTable(stderr: result.stderr) { return nil }
        guard result.exitCode == 0 else { throw DockerProviderError.command(container: router, command: command.joined(separator: " "), result: result) }
        return result.stdout
    }

    /// `COMMAND` with `script` on its standard input (exec has no stdin here: the script is
    /// passed as arguments, in pieces under the kernel's per-argument limit, and piped).
    private func run(_ command: [String], script: String, in router: String, what: String) async throws {
        let result = try await engine.exec(container: router, command: NftablesRuleset.pipedCommand(command, script: script))
        guard result.exitCode == 0 else { throw FirewallError.commandFailed(what, result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    private func shell(_ script: String, in router: String, what: String) async throws {
        let result = try await engine.exec(container: router, command: ["sh", "-c", script])
        guard result.exitCode == 0 else { throw FirewallError.commandFailed(what, result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}

/// Router container id → its firewall tool, shared by the steps of one provider.
final class FirewallBackendCache: @unchecked Sendable {
    private let lock = NSLock()
    private var known: [String: FirewallApplier.Backend] = [:]

    subscript(router: String) -> FirewallApplier.Backend? {
        get { lock.withLock { known[router] } }
        set { lock.withLock { known[router] = newValue } }
    }
}

struct FirewallSnapshot: Codable {
    var router: String
    var table: String?
}

public enum FirewallError: Error, CustomStringConvertible {
    case routerMissing(ResourceID)
    case commandFailed(String, String)
    case noFirewallTool(String)
    case verificationFailed(ResourceID, [ProbeResult])

    public var description: String {
        switch self {
        case .routerMissing(let id):
            return "\(id): its router is not running; reconcile the Router first"
        case .commandFailed(let what, let message):
            return "could not \(what): \(message)"
        case .noFirewallTool(let router):
            return "router container \(router.prefix(12)) has neither nft nor iptables-restore; use an image with nftables or iptables"
        case .verificationFailed(let id, let failed):
            let probes = failed.map { "\($0.probe) (\($0.summary): \($0.reachable ? "reachable" : "unreachable"), expected \($0.expected ? "reachable" : "unreachable"))" }
            return "\(id) was applied but its verification failed, so the previous ruleset was restored: " + probes.joined(separator: "; ")
        }
    }
}
