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

    /// The live tables of the desired policies, and Converge tables on this instance's
    /// routers that no manifest describes any more (to prune).
    func observe(_ policies: [Resource], in set: ManifestSet) async throws -> [ObservedResource] {
        var observed: [ObservedResource] = []
        var described: Set<String> = []
        for policy in policies {
            guard let spec = policy.spec(as: FirewallPolicySpec.self) else { continue }
            described.insert(policy.id.name)
            guard let router = try await routerContainer(spec.router), router.state == "running",
                  let table = try await liveTable(policy.id.name, in: router.id) else { continue }
            observed.append(ObservedResource(id: policy.id, fields: table.fields, ownership: .managed, externalID: router.id,
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

    /// The previous table as `nft list table` prints it (nil when there is none), journaled
    /// before a change so a rollback can put it back.
    func snapshot(policy name: String, router: String) async throws -> String {
        let previous = try await tableText(name, in: router)
        return String(decoding: try JSONEncoder().encode(FirewallSnapshot(router: router, table: previous)), as: UTF8.self)
    }

    /// Applies `policy` and confirms it with its probes; restores the previous table if they
    /// do not all pass before the deadline.
    func apply(_ policy: Resource, in set: ManifestSet) async throws {
        guard let spec = policy.spec(as: FirewallPolicySpec.self), let router = try await routerContainer(spec.router) else {
            throw FirewallError.routerMissing(policy.id)
        }
        let previous = try await tableText(policy.id.name, in: router.id)
        let script = NftablesRuleset.replaceScript(spec, name: policy.id.name)
        try await nft(["-c", "-f", "-"], script: script, in: router.id, what: "check \(policy.id)")
        try await nft(["-f", "-"], script: script, in: router.id, what: "apply \(policy.id)")
        let results = try await confirm(spec, in: set)
        guard results.allSatisfy(\.passed) else {
            try await restore(policy.id.name, previous: previous, in: router.id)
            throw FirewallError.verificationFailed(policy.id, results.filter { !$0.passed })
        }
    }

    /// Removes the policy's table; nothing to do when its router is gone with it.
    func remove(policy name: String, router: String) async throws {
        do {
            try await nft(["-f", "-"], script: NftablesRuleset.removeScript(policyName: name), in: router, what: "remove FirewallPolicy/\(name)")
        } catch let error as DockerEngineError where error.isNotFound {
            return
        }
    }

    /// Puts back the table a snapshot recorded (or removes the table when there was none).
    func restore(from snapshot: String, policy name: String) async throws {
        let saved = try JSONDecoder().decode(FirewallSnapshot.self, from: Data(snapshot.utf8))
        try await restore(name, previous: saved.table, in: saved.router)
    }

    private func restore(_ name: String, previous: String?, in router: String) async throws {
        guard let previous else { return try await remove(policy: name, router: router) }
        try await nft(["-f", "-"], script: NftablesRuleset.replaceScript(withTable: previous, policyName: name), in: router,
                      what: "restore the previous FirewallPolicy/\(name)")
    }

    /// Runs the `verify` probes until all pass or `verifyTimeout` passes; the last results.
    private func confirm(_ spec: FirewallPolicySpec, in set: ManifestSet) async throws -> [ProbeResult] {
        let probes = spec.verify.compactMap { set[ResourceID(kind: ProbeSpec.kind, name: $0)] }
        guard !probes.isEmpty else { return [] }
        let runner = ProbeRunner(engine: engine)
        let deadline = ContinuousClock.now + .nanoseconds(spec.verifyTimeout)
        while true {
            var results: [ProbeResult] = []
            for probe in probes { results.append(try await runner.run(probe, in: set)) }
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

    /// `nft ARGS` with `script` on its standard input (exec has no stdin here: the script is
    /// passed as arguments, in pieces under the kernel's per-argument limit, and piped).
    private func nft(_ arguments: [String], script: String, in router: String, what: String) async throws {
        let result = try await engine.exec(container: router, command: NftablesRuleset.shellCommand(nft: arguments, script: script))
        guard result.exitCode == 0 else { throw FirewallError.nftFailed(what, result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}

struct FirewallSnapshot: Codable {
    var router: String
    var table: String?
}

public enum FirewallError: Error, CustomStringConvertible {
    case routerMissing(ResourceID)
    case nftFailed(String, String)
    case verificationFailed(ResourceID, [ProbeResult])

    public var description: String {
        switch self {
        case .routerMissing(let id):
            return "\(id): its router is not running; reconcile the Router first"
        case .nftFailed(let what, let message):
            return "nft could not \(what): \(message)"
        case .verificationFailed(let id, let failed):
            let probes = failed.map { "\($0.probe) (\($0.summary): \($0.reachable ? "reachable" : "unreachable"), expected \($0.expected ? "reachable" : "unreachable"))" }
            return "\(id) was applied but its verification failed, so the previous ruleset was restored: " + probes.joined(separator: "; ")
        }
    }
}
