import ConvergeCore
import Foundation

/// `Inventory`: the hosts playbooks run on, as environments → groups → hosts, and how to reach
/// them over ssh. The target of `PlaybookRun`s: one Ansible provider per inventory.
///
/// ```yaml
/// kind: Inventory
/// metadata: {name: lab}
/// spec:
///   ssh: {user: converge, port: 22, privateKey: {file: /etc/converge/ssh/id_ed25519}}
///   knownHostsFile: /etc/converge/ssh/known_hosts   # absent: host keys are not checked
///   pipelining: true                                # off only for a sudo with requiretty
///   environments:
///     production:
///       vars: {tier: prod}
///       groups:
///         web:
///           vars: {http_port: 80}
///           hosts:
///             web-01: {address: 10.0.0.11, vm: {name: web-01}}   # snapshotted on its vCenter
///             web-02: {address: 10.0.0.12, ssh: {privateKey: {env: WEB_KEY}}, vars: {weight: 2}}
///           virtualMachines: {matchLabels: {role: web}}         # VirtualMachine manifests
/// ```
/// A host belongs to one environment (in any number of its groups). Keys come from a file or
/// an environment variable, never from Git.
public struct InventorySpec: MachineInventory, WorkerPoolTarget, Equatable {
    public static let kind = "Inventory"
    public static let isLiveObject = false
    /// The kind of target a host's `vm` names: the vCenter that snapshots it.
    public static let vmTargetKind = "VCenter"

    /// Where an ssh private key is read when a playbook runs.
    public enum PrivateKey: Sendable, Hashable {
        case file(String)
        case environment(String)

        var display: String {
            switch self {
            case .file(let path): return "file \(path)"
            case .environment(let name): return "environment variable \(name)"
            }
        }
    }

    /// ssh settings; a host's override its group's defaults field by field.
    public struct SSH: Sendable, Hashable {
        public var user: String?
        public var port: Int?
        public var privateKey: PrivateKey?
        var privateKeyLocation: SourceLocation?

        func overriding(_ base: SSH) -> SSH {
            SSH(
                user: user ?? base.user, port: port ?? base.port, privateKey: privateKey ?? base.privateKey,
                privateKeyLocation: privateKey == nil ? base.privateKeyLocation : privateKeyLocation)
        }
    }

    /// A vCenter VM a host is, for the snapshot guard: `name` in vCenter's inventory.
    public struct VMReference: Sendable, Hashable {
        public var name: String
        /// The `VCenter` manifest; nil: the set's only one.
        public var vcenter: String?
        var location: SourceLocation
    }

    public struct HostEntry: Sendable, Hashable {
        public var name: String
        public var address: String
        public var ssh: SSH
        public var vars: [String: JSONValue]
        public var vm: VMReference?
        var location: SourceLocation
    }

    public struct Group: Sendable, Hashable {
        public var name: String
        public var vars: [String: JSONValue]
        public var hosts: [HostEntry]
        /// Labels selecting `VirtualMachine`s (any `GuestMachine`) of the set as hosts.
        public var virtualMachines: [String: String]?
        var location: SourceLocation
    }

    public struct Environment: Sendable, Hashable {
        public var name: String
        public var vars: [String: JSONValue]
        public var groups: [Group]
        var location: SourceLocation
    }

    public var ssh: SSH
    public var knownHostsFile: String?
    /// ssh pipelining (fewer round trips per task; on by default). Off only for hosts whose
    /// sudo has `requiretty`.
    public var pipelining: Bool
    public var environments: [Environment]
    var location: SourceLocation

    /// The workers that reach its hosts, when not the controller's (`pool: dmz`).
    public var pool: String?

    public init?(spec: MappingReader, metadata: Metadata) {
        location = spec.location
        pool = spec.workerPool()
        ssh = spec.optional("ssh").flatMap(Self.readSSH) ?? SSH()
        knownHostsFile = spec.optional("knownHostsFile")?.string
        pipelining = spec.optional("pipelining")?.bool ?? true
        environments = []
        guard
            let environmentsReader = spec.required(
                "environments", hint: "e.g. environments: {production: {groups: {web: {hosts: {web-01: {address: 10.0.0.11}}}}}}")?.mapping
        else {
            return nil
        }
        for name in environmentsReader.keys {
            guard let node = environmentsReader.optional(name), let reader = node.mapping else { continue }
            let vars = reader.optional("vars").map(Self.readVars) ?? [:]
            var groups: [Group] = []
            if let groupsReader = reader.required("groups")?.mapping {
                for groupName in groupsReader.keys {
                    guard let groupNode = groupsReader.optional(groupName), let group = Self.readGroup(groupName, groupNode) else {
                        continue
                    }
                    groups.append(group)
                }
                groupsReader.finish()
            }
            reader.finish()
            environments.append(Environment(name: name, vars: vars, groups: groups, location: environmentsReader.keyLocation(name)))
        }
        environmentsReader.finish()
    }

    private static func readSSH(_ node: ManifestNode) -> SSH? {
        guard let reader = node.mapping else { return nil }
        var ssh = SSH()
        ssh.user = reader.optional("user")?.string
        if let portNode = reader.optional("port") {
            if let port = portNode.int, (1...65535).contains(port) {
                ssh.port = port
            } else {
                portNode.report("expected a port from 1 to 65535")
            }
        }
        if let keyNode = reader.optional("privateKey"), let key = keyNode.mapping {
            let file = key.optional("file")?.string
            let variable = key.optional("env")?.string
            switch (file, variable) {
            case (let path?, nil): ssh.privateKey = .file(path)
            case (nil, let name?): ssh.privateKey = .environment(name)
            default:
                keyNode.report("give either file or env", hint: "privateKey: {file: /etc/converge/ssh/id_ed25519} or {env: DEPLOY_KEY}")
            }
            ssh.privateKeyLocation = keyNode.location
            key.finish()
        }
        reader.finish()
        return ssh
    }

    private static func readVars(_ node: ManifestNode) -> [String: JSONValue] {
        guard case .object(let fields) = node.jsonValue() else {
            node.report("expected a mapping of variable names to values")
            return [:]
        }
        return fields
    }

    private static func readGroup(_ name: String, _ node: ManifestNode) -> Group? {
        guard let reader = node.mapping else { return nil }
        let vars = reader.optional("vars").map(readVars) ?? [:]
        var hosts: [HostEntry] = []
        if let hostsReader = reader.optional("hosts")?.mapping {
            for hostName in hostsReader.keys {
                guard let hostNode = hostsReader.optional(hostName), let host = hostNode.mapping else { continue }
                let address = host.required("address", hint: "the host's IP address or DNS name")?.string ?? ""
                let ssh = host.optional("ssh").flatMap(readSSH) ?? SSH()
                let hostVars = host.optional("vars").map(readVars) ?? [:]
                var vm: VMReference?
                if let vmNode = host.optional("vm"), let vmReader = vmNode.mapping {
                    let vmName = vmReader.required("name", hint: "the VM's name in vCenter")?.string ?? ""
                    vm = VMReference(name: vmName, vcenter: vmReader.optional("vcenter")?.string, location: vmNode.location)
                    vmReader.finish()
                }
                host.finish()
                hosts.append(
                    HostEntry(
                        name: hostName, address: address, ssh: ssh, vars: hostVars, vm: vm, location: hostsReader.keyLocation(hostName)))
            }
            hostsReader.finish()
        }
        let selector = reader.optional("virtualMachines").flatMap { node -> [String: String]? in
            guard let selectorReader = node.mapping else { return nil }
            let labels = selectorReader.required("matchLabels")?.stringMap ?? [:]
            selectorReader.finish()
            return labels
        }
        reader.finish()
        return Group(name: name, vars: vars, hosts: hosts, virtualMachines: selector, location: node.location)
    }

    public func references(in set: ManifestSet) -> [Reference] {
        var references: [Reference] = []
        for environment in environments {
            for group in environment.groups {
                for host in group.hosts {
                    if let vm = host.vm, let vcenter = vm.vcenter ?? set.defaultTarget(kind: Self.vmTargetKind)?.name {
                        references.append(
                            Reference(
                                target: ResourceID(kind: Self.vmTargetKind, name: vcenter), field: "spec…hosts.\(host.name).vm.vcenter",
                                location: vm.location))
                    }
                }
            }
        }
        return references
    }

    public func target(in set: ManifestSet) -> ResourceID? { nil }

    // MARK: Hosts

    /// One host as a playbook reaches it, its groups and variables resolved against the set.
    public struct Host: Sendable, Hashable {
        public var name: String
        public var environment: String
        public var groups: [String]
        public var address: String
        public var ssh: SSH
        /// Host variables (group and environment ones are kept on their groups).
        public var vars: [String: JSONValue]
        /// The vCenter VM the host is, if any: snapshotted before a playbook runs on it.
        public var vm: (vcenter: ResourceID, name: String)?

        public static func == (lhs: Host, rhs: Host) -> Bool {
            lhs.name == rhs.name && lhs.environment == rhs.environment && lhs.groups == rhs.groups && lhs.address == rhs.address
                && lhs.ssh == rhs.ssh && lhs.vars == rhs.vars && lhs.vm?.vcenter == rhs.vm?.vcenter && lhs.vm?.name == rhs.vm?.name
        }

        public func hash(into hasher: inout Hasher) { hasher.combine(name) }
    }

    /// Every host, by name, with its groups: declared hosts and the machines of the set the
    /// groups select. A host in two environments keeps its first (validation reports it).
    public func hosts(in set: ManifestSet) -> [Host] {
        var byName: [String: Host] = [:]
        var order: [String] = []
        for environment in environments {
            for group in environment.groups {
                var members: [(HostEntry, (ResourceID, String)?)] = group.hosts.map { host in
                    let vm = host.vm.flatMap { vm in
                        (vm.vcenter.map { ResourceID(kind: Self.vmTargetKind, name: $0) } ?? set.defaultTarget(kind: Self.vmTargetKind)).map
                        { ($0, vm.name) }
                    }
                    return (host, vm)
                }
                for machine in selectedMachines(group, in: set) {
                    let address = (machine.spec as? any GuestMachine)?.declaredAddress ?? ""
                    let entry = HostEntry(
                        name: machine.id.name, address: address, ssh: SSH(), vars: [:], vm: nil, location: machine.location)
                    members.append((entry, machine.spec.target(in: set).map { ($0, machine.id.name) }))
                }
                for (entry, vm) in members {
                    if var known = byName[entry.name] {
                        guard known.environment == environment.name else { continue }
                        if !known.groups.contains(group.name) { known.groups.append(group.name) }
                        known.vars.merge(entry.vars) { _, new in new }
                        byName[entry.name] = known
                        continue
                    }
                    order.append(entry.name)
                    byName[entry.name] = Host(
                        name: entry.name, environment: environment.name, groups: [group.name], address: entry.address,
                        ssh: entry.ssh.overriding(ssh), vars: entry.vars, vm: vm.map { (vcenter: $0.0, name: $0.1) })
                }
            }
        }
        return order.compactMap { byName[$0] }
    }

    public func includes(_ machine: ResourceID, in set: ManifestSet) -> Bool {
        environments.flatMap(\.groups).contains { group in selectedMachines(group, in: set).contains { $0.id == machine } }
    }

    /// The machines of the set whose labels match the group's selector.
    func selectedMachines(_ group: Group, in set: ManifestSet) -> [Resource] {
        guard let selector = group.virtualMachines else { return [] }
        return set.resources.filter { resource in
            resource.spec is any GuestMachine && selector.allSatisfy { resource.metadata.labels[$0.key] == $0.value }
        }
    }

    /// The hosts `target` names: a host, a group (`web`, or `production/web` when several
    /// environments have one), or an environment. Nil when it names nothing.
    public func hosts(matching target: String, in set: ManifestSet) -> [Host]? {
        let all = hosts(in: set)
        if let host = all.first(where: { $0.name == target }) { return [host] }
        let parts = target.split(separator: "/", maxSplits: 1).map(String.init)
        if parts.count == 2 {
            let found = all.filter { $0.environment == parts[0] && $0.groups.contains(parts[1]) }
            return environments.contains { $0.name == parts[0] && $0.groups.contains { $0.name == parts[1] } } ? found : nil
        }
        if environments.contains(where: { $0.name == target }) { return all.filter { $0.environment == target } }
        guard environments.contains(where: { $0.groups.contains { $0.name == target } }) else { return nil }
        return all.filter { $0.groups.contains(target) }
    }

    /// Every name `hosts(matching:in:)` accepts, for hints.
    public func targetNames(in set: ManifestSet) -> [String] {
        environments.map(\.name) + environments.flatMap { $0.groups.map(\.name) } + hosts(in: set).map(\.name)
    }

    /// The environment whose groups are named `group` more than once: such a group must be
    /// written `environment/group`.
    func isAmbiguousGroup(_ group: String) -> Bool {
        environments.filter { $0.groups.contains { $0.name == group } }.count > 1
    }

    // MARK: Validation

    public func validate(_ resource: Resource, in set: ManifestSet, collector: DiagnosticCollector) {
        var environmentOf: [String: (String, SourceLocation)] = [:]
        for environment in environments {
            for group in environment.groups {
                for host in group.hosts {
                    if let (first, _) = environmentOf[host.name], first != environment.name {
                        collector.report(
                            "host '\(host.name)' is in environments '\(first)' and '\(environment.name)'", at: host.location,
                            hint: "a host belongs to one environment; use groups inside it")
                    }
                    environmentOf[host.name] = environmentOf[host.name] ?? (environment.name, host.location)
                    if let vm = host.vm, vm.vcenter == nil, set.defaultTarget(kind: Self.vmTargetKind) == nil {
                        collector.report(
                            "host '\(host.name)': vm.vcenter is missing", at: vm.location,
                            hint:
                                "name the \(Self.vmTargetKind) manifest that holds VM '\(vm.name)' (the set has \(set.resources(ofKind: Self.vmTargetKind).count))"
                        )
                    }
                }
                if group.hosts.isEmpty, group.virtualMachines == nil {
                    collector.report(
                        "group '\(group.name)' has no hosts", at: group.location,
                        hint: "add hosts, or virtualMachines: {matchLabels: {...}}")
                }
                for machine in selectedMachines(group, in: set) where (machine.spec as? any GuestMachine)?.declaredAddress == nil {
                    collector.report(
                        "group '\(group.name)' selects \(machine.id), which declares no address", at: group.location,
                        hint: "give the VM a fixed address (spec.network.ipv4), or list it under hosts with its address")
                }
            }
        }
        var checkedKeys = Set<String>()
        for host in hosts(in: set) {
            if host.ssh.user == nil {
                collector.report("host '\(host.name)' has no ssh user", at: location, hint: "set spec.ssh.user, or ssh.user on the host")
            }
            guard let key = host.ssh.privateKey else {
                collector.report(
                    "host '\(host.name)' has no ssh private key", at: location,
                    hint: "set spec.ssh.privateKey: {file: PATH} or {env: VARIABLE}")
                continue
            }
            if case .file(let path) = key, checkedKeys.insert(path).inserted, !FileManager.default.isReadableFile(atPath: path) {
                collector.report(
                    "ssh private key file '\(path)' (for host '\(host.name)') does not exist or cannot be read",
                    at: host.ssh.privateKeyLocation ?? location,
                    hint: "keys stay out of Git: put the file on the machine that runs Converge, or use {env: VARIABLE}")
            }
        }
        if let knownHostsFile, !FileManager.default.isReadableFile(atPath: knownHostsFile) {
            collector.report("knownHostsFile '\(knownHostsFile)' does not exist or cannot be read", at: location)
        }
    }
}

extension TargetReference {
    /// `inventory:`, naming the Inventory a playbook runs against.
    static func inventory(reading spec: MappingReader) -> TargetReference {
        TargetReference(kind: InventorySpec.kind, field: "inventory", example: "spec.environments with groups and hosts", reading: spec)
    }
}
