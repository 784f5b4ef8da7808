import ConvergeCore
import Crypto
import Foundation

/// `PlaybookRun`: a playbook run on a host, a group or an environment of an inventory,
/// whenever its inputs change: the playbook's files, the variables, the hosts. A commit that
/// changes none of them runs nothing; one that changes any runs it once.
///
/// ```yaml
/// kind: PlaybookRun
/// metadata: {name: web-baseline}
/// spec:
///   playbook: baseline
///   inventory: lab          # optional when the set has one Inventory
///   target: web             # a host, a group (production/web when ambiguous) or an environment
///   extraVars: {release: "1.4"}   # over the playbook's
///   forks: 10               # default: the number of hosts, at most 50
///   checkMode: false        # default: the playbook's
///   snapshot: true          # snapshot the hosts that are vCenter VMs first
///   revertOnFailure: false  # revert those snapshots when the run fails
///   timeout: 30m            # default: the playbook's
/// ```
public struct PlaybookRunSpec: ResourceSpec, Equatable {
    public static let kind = "PlaybookRun"
    public static let maximumForks = 50

    public var playbook: String
    var playbookLocation: SourceLocation
    var inventory: TargetReference
    public var target: String
    var targetLocation: SourceLocation
    public var extraVars: [String: JSONValue]
    public var forks: Int?
    public var checkMode: Bool?
    public var snapshot: Bool
    public var revertOnFailure: Bool
    public var timeout: Duration?

    public init?(spec: MappingReader, metadata: Metadata) {
        let playbookNode = spec.required("playbook", hint: "the name of a Playbook manifest")
        playbook = playbookNode?.string ?? ""
        playbookLocation = playbookNode?.location ?? spec.location
        inventory = .inventory(reading: spec)
        let targetNode = spec.required("target", hint: "a host, a group or an environment of the inventory")
        target = targetNode?.string ?? ""
        targetLocation = targetNode?.location ?? spec.location
        extraVars = [:]
        if let varsNode = spec.optional("extraVars") {
            if case .object(let fields) = varsNode.jsonValue() {
                extraVars = fields
            } else {
                varsNode.report("expected a mapping of variable names to values")
            }
        }
        if let forksNode = spec.optional("forks") {
            if let value = forksNode.int, (1...Self.maximumForks).contains(value) {
                forks = value
            } else {
                forksNode.report("expected a number from 1 to \(Self.maximumForks)")
            }
        }
        checkMode = spec.optional("checkMode")?.bool
        snapshot = spec.optional("snapshot")?.bool ?? true
        revertOnFailure = spec.optional("revertOnFailure")?.bool ?? false
        timeout = PlaybookSpec.readTimeout(spec.optional("timeout"))
    }

    var playbookID: ResourceID { ResourceID(kind: PlaybookSpec.kind, name: playbook) }

    public func references(in set: ManifestSet) -> [Reference] {
        var references = [Reference(target: playbookID, field: "spec.playbook", location: playbookLocation)]
        if let reference = inventory.reference(in: set) { references.append(reference) }
        // Machines of the set it runs on: created first, and a replaced one is provisioned again.
        if let inventorySpec = inventorySpec(in: set) {
            for group in inventorySpec.environments.flatMap(\.groups) {
                for machine in inventorySpec.selectedMachines(group, in: set)
                where (inventorySpec.hosts(matching: target, in: set) ?? []).contains(where: { $0.name == machine.id.name }) {
                    references.append(Reference(target: machine.id, field: "spec.target", location: targetLocation, bindsLifetime: true))
                }
            }
        }
        return references
    }

    public func target(in set: ManifestSet) -> ResourceID? { inventory.resolve(in: set) }

    func inventorySpec(in set: ManifestSet) -> InventorySpec? {
        inventory.resolve(in: set).flatMap { set[$0]?.spec(as: InventorySpec.self) }
    }

    func playbookSpec(in set: ManifestSet) -> PlaybookSpec? { set[playbookID]?.spec(as: PlaybookSpec.self) }

    /// The hosts it runs on, in inventory order.
    public func hosts(in set: ManifestSet) -> [InventorySpec.Host] {
        inventorySpec(in: set)?.hosts(matching: target, in: set) ?? []
    }

    /// The run's settings with the playbook's defaults applied.
    func effectiveCheckMode(in set: ManifestSet) -> Bool { checkMode ?? playbookSpec(in: set)?.checkMode ?? false }

    /// The playbook's variables overridden by the run's.
    func variables(in set: ManifestSet) -> [String: JSONValue] {
        (playbookSpec(in: set)?.extraVars ?? [:]).merging(extraVars) { _, run in run }
    }

    public func validate(_ resource: Resource, in set: ManifestSet, collector: DiagnosticCollector) {
        inventory.validate(in: set, collector: collector)
        guard let inventorySpec = inventorySpec(in: set), !target.isEmpty else { return }
        if inventorySpec.hosts(matching: target, in: set) == nil {
            let names = inventorySpec.targetNames(in: set)
            collector.report(
                "spec.target: '\(target)' is not a host, group or environment of \(InventorySpec.kind)/\(inventory.resolve(in: set)?.name ?? "")",
                at: targetLocation,
                hint: closestName(to: target, among: names).map { "did you mean '\($0)'?" } ?? "known: \(names.joined(separator: ", "))")
        } else if !target.contains("/"), inventorySpec.isAmbiguousGroup(target),
            !inventorySpec.hosts(in: set).contains(where: { $0.name == target })
        {
            collector.report(
                "spec.target: group '\(target)' exists in several environments", at: targetLocation,
                hint:
                    "write ENVIRONMENT/\(target), e.g. \(inventorySpec.environments.first { $0.groups.contains { $0.name == target } }?.name ?? "production")/\(target)"
            )
        } else if hosts(in: set).isEmpty {
            collector.report("spec.target: '\(target)' has no hosts", at: targetLocation)
        }
    }

    /// What makes the playbook run again when it changes: the playbook and its files'
    /// digest, the hosts and how they are reached, every variable they get, check mode.
    public func desiredFields(metadata: Metadata, in set: ManifestSet) -> FieldMap {
        var fields = FieldMap()
        fields["playbook"] = .string(playbook)
        if let playbookSpec = playbookSpec(in: set) {
            fields["playbookDigest"] = .string(playbookSpec.bundle(in: set).digest)
        }
        let hosts = hosts(in: set)
        fields["hosts"] = .map(
            FieldMap(
                Dictionary(
                    hosts.map { host in
                        (host.name, FieldValue.string("\(host.ssh.user ?? "")@\(host.address):\(host.ssh.port ?? 22)"))
                    }, uniquingKeysWith: { first, _ in first })))
        fields["vars"] = .map(FieldMap(variables(in: set).mapValues { $0.fieldValue ?? .string($0.serialized) }))
        fields["inventoryVars"] = .string(inventoryVariablesDigest(hosts, in: set))
        fields["checkMode"] = .bool(effectiveCheckMode(in: set))
        return fields
    }

    /// `sha256:` of the environment, group and host variables the hosts get.
    func inventoryVariablesDigest(_ hosts: [InventorySpec.Host], in set: ManifestSet) -> String {
        var parts: [String] = []
        let inventorySpec = inventorySpec(in: set)
        for host in hosts {
            parts.append("host \(host.name) \(JSONValue.object(host.vars).serialized)")
            guard let environment = inventorySpec?.environments.first(where: { $0.name == host.environment }) else { continue }
            parts.append("environment \(environment.name) \(JSONValue.object(environment.vars).serialized)")
            for group in environment.groups where host.groups.contains(group.name) {
                parts.append("group \(environment.name)/\(group.name) \(JSONValue.object(group.vars).serialized)")
            }
        }
        let digest = SHA256.hash(data: Data(Set(parts).sorted().joined(separator: "\n").utf8))
        return "sha256:" + digest.map { String(format: "%02x", $0) }.joined()
    }

    public static func changeMode(forField field: String) -> ChangeMode { .inPlace }
}
