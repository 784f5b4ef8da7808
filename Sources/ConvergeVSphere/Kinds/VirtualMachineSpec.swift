import ConvergeCore

/// `VirtualMachine`: a VM cloned from a template on a `VCenter`.
///
/// ```yaml
/// kind: VirtualMachine
/// metadata: {name: web-01}
/// spec:
///   vcenter: lab                  # optional when the set has one VCenter
///   template: tmpl-linux          # cloned at creation only; never compared afterwards
///   folder: converge              # under the datacenter's vm folder; absent: that folder
///   cluster: DC0_C0               # or resourcePool: DC0_C0/Resources/web (under the host folder)
///   datastore: LocalDS_0          # default: the template's
///   cpus: 2
///   memoryMB: 4096                # a multiple of 4
///   disks: [{sizeGB: 20}]         # sizes of the VM's disks, in order
///   network: {portGroup: VM Network, ipv4: 10.0.0.15/24, gateway: 10.0.0.1}
///   powerState: poweredOn         # or poweredOff
///   annotation: web frontend
///   guestId: otherGuest64
///   ipTimeout: 5m                 # how long a create waits for the guest's IP
///   allowPowerCycle: false        # true: a change that needs the VM off may power-cycle it
///   snapshots: {beforeChange: true}
///   provision: {playbook: base}   # run once it is made (an Inventory must reach it)
/// ```
/// Folder, placement and datastore are where the VM is: changing them replaces it. Every
/// other field changes in place, and an update is guarded by a snapshot unless
/// `snapshots.beforeChange` is false.
public struct VirtualMachineSpec: ResourceSpec {
    public static let kind = "VirtualMachine"
    /// vCenter's own limits: at most 80 characters; `/`, `\\` and `%` come back escaped in
    /// inventory paths (`%2f`), so a VM named with them could not be found by its name.
    public static let nameRule = NameRule { name in
        let escaped: Set<Character> = ["/", "\\", "%"]
        let acceptable = !name.isEmpty && name.count <= 80 && !name.contains { escaped.contains($0) || $0.isNewline }
            && name.first != " " && name.last != " "
        return acceptable ? nil : "use at most 80 characters, without '/', '\\' or '%' and without leading or trailing spaces"
    }
    public static let cpuRange = 1...768
    public static let memoryMBRange = 4...(24 * 1024 * 1024)
    public static let diskGBRange = 1...62_000
    public static let powerStates = ["poweredOn", "poweredOff"]
    public static let defaultIPTimeout = Duration.seconds(5 * 60)

    /// Where the VM runs: a cluster (its root resource pool) or a resource pool.
    public enum Placement: Sendable, Hashable {
        /// A cluster's name in the datacenter's host folder.
        case cluster(String)
        /// A resource pool's path under the datacenter's host folder (`DC0_C0/Resources/web`).
        case resourcePool(String)

        /// Reads `canonical` back (a journaled state).
        public init?(canonical: String) {
            if canonical.hasPrefix("cluster:") {
                self = .cluster(String(canonical.dropFirst("cluster:".count)))
            } else if canonical.hasPrefix("pool:") {
                self = .resourcePool(String(canonical.dropFirst("pool:".count)))
            } else {
                return nil
            }
        }

        /// `cluster:NAME` or `pool:PATH`, the form of the `placement` field.
        public var canonical: String {
            switch self {
            case .cluster(let name): return "cluster:\(name)"
            case .resourcePool(let path): return "pool:\(path)"
            }
        }
    }

    /// The VM's one network adapter.
    public struct VMNetwork: Sendable, Hashable {
        /// The port group (standard or distributed) the adapter connects to.
        public var portGroup: String
        /// The guest's fixed address with its prefix length (`10.0.0.15/24`): `address` is the
        /// VM's, `networkAddress` and `mask` its network's. Nil: the guest uses DHCP.
        public var ipv4: IPv4Network?
        /// The default gateway, inside `ipv4`'s network.
        public var gateway: IPv4Address?
        var ipv4Location: SourceLocation?
    }

    var vcenter: TargetReference
    public var template: String
    /// Path under the datacenter's vm folder, `/`-separated, no leading or trailing `/`;
    /// "" is the vm folder itself.
    public var folder: String
    public var placement: Placement
    public var datastore: String?
    public var cpus: Int
    public var memoryMB: Int
    /// Disk sizes in GB, in the order of the VM's disks; empty when the manifest sets none.
    public var disks: [Int]
    var disksDeclared: Bool
    public var network: VMNetwork?
    /// `poweredOn` or `poweredOff`, as vSphere names the states.
    public var powerState: String
    public var annotation: String
    public var guestId: String?
    public var ipTimeout: Duration
    public var allowPowerCycle: Bool
    public var snapshotBeforeChange: Bool
    /// The `Playbook` run on the VM once it is made, powered on and at its address; it is
    /// then marked active. Not compared afterwards: a running VM is not provisioned again.
    public var provisionPlaybook: String?
    var provisionLocation: SourceLocation?

    /// The kind `provision.playbook` names (the Ansible plug-in's).
    public static let provisionKind = "Playbook"

    public init(spec: MappingReader, metadata: Metadata) {
        vcenter = .vCenter(reading: spec)
        template = spec.required("template", hint: "the template to clone, e.g. tmpl-linux")?.string ?? ""
        folder = spec.optional("folder").flatMap(Self.decodeFolder) ?? ""
        let clusterNode = spec.optional("cluster")
        let poolNode = spec.optional("resourcePool")
        let cluster = clusterNode?.string
        let pool = poolNode?.string
        placement = pool.map(Placement.resourcePool) ?? .cluster(cluster ?? "")
        switch (cluster, pool) {
        case (_?, _?):
            poolNode?.report("cannot be combined with spec.cluster", hint: "place the VM on a cluster or in a resource pool, not both")
        case (nil, nil) where clusterNode == nil && poolNode == nil:
            spec.node.collector.report("spec.cluster: required field is missing", at: spec.location,
                                       hint: "name a cluster, or set resourcePool to a resource pool path such as DC0_C0/Resources/web")
        default:
            break
        }
        datastore = spec.optional("datastore")?.string
        cpus = Self.decodeInt(spec.required("cpus", hint: "the number of virtual CPUs, e.g. 2"), range: Self.cpuRange) ?? 1
        memoryMB = Self.decodeInt(spec.required("memoryMB", hint: "the memory in MB, a multiple of 4, e.g. 4096"), range: Self.memoryMBRange) ?? 4
        if memoryMB % 4 != 0 {
            spec.optional("memoryMB")?.report("\(memoryMB) is not a multiple of 4", hint: "vSphere sizes memory in steps of 4 MB, e.g. \(max(4, (memoryMB + 2) / 4 * 4))")
        }
        let diskNodes = spec.optional("disks")?.list
        disksDeclared = diskNodes != nil
        disks = (diskNodes ?? []).compactMap { node in
            guard let reader = node.mapping else { return nil }
            defer { reader.finish() }
            return Self.decodeInt(reader.required("sizeGB", hint: "the disk's size in GB, e.g. 20"), range: Self.diskGBRange)
        }
        network = spec.optional("network")?.mapping.flatMap(Self.decodeNetwork)
        powerState = "poweredOn"
        if let node = spec.optional("powerState"), let text = node.string {
            if Self.powerStates.contains(text) { powerState = text } else {
                node.report("invalid power state '\(text)'", hint: "use poweredOn or poweredOff")
            }
        }
        annotation = spec.optional("annotation")?.string ?? ""
        guestId = spec.optional("guestId")?.string
        ipTimeout = Self.defaultIPTimeout
        if let node = spec.optional("ipTimeout"), let text = node.string {
            if let nanoseconds = DurationText.nanoseconds(text), nanoseconds > 0 {
                ipTimeout = .nanoseconds(nanoseconds)
            } else {
                node.report("'\(text)' is not a positive duration", hint: "write it as 5m, 90s or 1h")
            }
        }
        allowPowerCycle = spec.optional("allowPowerCycle")?.bool ?? false
        snapshotBeforeChange = true
        if let snapshots = spec.optional("snapshots")?.mapping {
            snapshotBeforeChange = snapshots.optional("beforeChange")?.bool ?? true
            snapshots.finish()
        }
        if let node = spec.optional("provision"), let provision = node.mapping {
            provisionPlaybook = provision.required("playbook", hint: "the Playbook to run on the new VM")?.string
            provisionLocation = node.location
            provision.finish()
        }
    }

    /// An integer field within `range`; nil (reported) when it is not.
    private static func decodeInt(_ node: ManifestNode?, range: ClosedRange<Int>) -> Int? {
        guard let node, let value = node.int else { return nil }
        guard range.contains(value) else {
            node.report("\(value) is out of range", hint: "use \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return value
    }

    private static func decodeFolder(_ node: ManifestNode) -> String? {
        guard let text = node.string else { return nil }
        // A leading or trailing `/` is tolerated; `a//b` is a mistake.
        var names = text.split(separator: "/", omittingEmptySubsequences: false)[...]
        while names.first?.isEmpty == true { names = names.dropFirst() }
        while names.last?.isEmpty == true { names = names.dropLast() }
        guard !names.contains(where: \.isEmpty) else {
            node.report("'\(text)' has an empty folder name", hint: "separate folder names with a single '/', e.g. converge/web")
            return nil
        }
        return names.joined(separator: "/")
    }

    private static func decodeNetwork(_ reader: MappingReader) -> VMNetwork? {
        defer { reader.finish() }
        let portGroup = reader.required("portGroup", hint: "the port group to connect to, e.g. VM Network")?.string
        var network = VMNetwork(portGroup: portGroup ?? "", ipv4: nil, gateway: nil)
        let ipNode = reader.optional("ipv4")
        if let ipNode, let text = ipNode.string {
            network.ipv4Location = ipNode.location
            if let interface = IPv4Network(text) {
                if interface.prefixLength == 0 || !interface.isUsableHost(interface.address) {
                    ipNode.report("'\(text)' is not a host address of its network", hint: "use an address inside \(interface.networkAddress)/\(interface.prefixLength) other than its network and broadcast addresses")
                } else {
                    network.ipv4 = interface
                }
            } else if let address = IPv4Address(text) {
                ipNode.report("'\(text)' has no prefix length", hint: "write the address with its prefix, e.g. \(address)/24")
            } else {
                ipNode.report("'\(text)' is not an IPv4 address with a prefix", hint: "write it as 10.0.0.15/24")
            }
        }
        if let node = reader.optional("gateway"), let text = node.string {
            if let gateway = IPv4Address(text) {
                network.gateway = gateway
                if let ipv4 = network.ipv4 {
                    let subnet = "\(ipv4.networkAddress)/\(ipv4.prefixLength)"
                    if !ipv4.contains(gateway) {
                        node.report("\(gateway) is outside \(subnet), the network of ipv4 \(ipv4)", hint: "use an address in \(subnet), or correct the prefix of ipv4")
                    } else if !ipv4.isUsableHost(gateway) {
                        node.report("\(gateway) is the network or broadcast address of \(subnet)", hint: "use the address of the network's router")
                    } else if gateway == ipv4.address {
                        node.report("\(gateway) is the VM's own address", hint: "use the address of the network's router")
                    }
                } else if ipNode == nil {
                    node.report("a gateway needs ipv4", hint: "add spec.network.ipv4, e.g. 10.0.0.15/24")
                }
            } else {
                node.report("'\(text)' is not an IPv4 address")
            }
        }
        return portGroup == nil ? nil : network
    }

    public func references(in set: ManifestSet) -> [Reference] {
        var references = vcenter.reference(in: set).map { [$0] } ?? []
        if let provisionPlaybook, let provisionLocation {
            references.append(
                Reference(target: ResourceID(kind: Self.provisionKind, name: provisionPlaybook), field: "spec.provision.playbook", location: provisionLocation))
        }
        return references
    }

    public func target(in set: ManifestSet) -> ResourceID? { vcenter.resolve(in: set) }

    public func validate(_ resource: Resource, in set: ManifestSet, collector: DiagnosticCollector) {
        vcenter.validate(in: set, collector: collector)
        guard provisionPlaybook != nil, let location = provisionLocation else { return }
        if powerState != "poweredOn" || network?.ipv4 == nil {
            collector.report(
                "spec.provision: a VM is provisioned over the network once it runs", at: location,
                hint: "set powerState: poweredOn and network.ipv4, the address the playbook reaches it at")
        }
        if !set.resources.contains(where: { ($0.spec as? any MachineInventory)?.includes(resource.id, in: set) == true }) {
            collector.report(
                "spec.provision: no Inventory has \(resource.id) among its hosts, so nothing says how to reach it", at: location,
                hint: "select it in an Inventory group: virtualMachines: {matchLabels: {...}} with its labels")
        }
    }

    /// A fixed address belongs to one VM per vCenter: the first holder (by name) keeps it and
    /// every later one is reported. Addresses of Docker networks are another world.
    public static func validate(_ resources: [Resource], in set: ManifestSet, collector: DiagnosticCollector) {
        var holders: [String: ResourceID] = [:]
        for resource in resources {
            guard let spec = resource.spec(as: VirtualMachineSpec.self), let network = spec.network, let ipv4 = network.ipv4,
                  let target = spec.target(in: set) else { continue }
            if let holder = holders.claim("\(target.name)/\(ipv4.address)", for: resource.id) {
                collector.report(Diagnostic(
                    "spec.network.ipv4: \(ipv4.address) is also given to \(holder)",
                    at: network.ipv4Location ?? resource.location, resource: resource.id,
                    hint: "each VM needs its own address"))
            }
        }
    }

    /// The fields the diff compares. The vSphere provider reports a live VM in exactly this
    /// shape:
    ///
    /// | key | value | when |
    /// |---|---|---|
    /// | `cpus` | `.int` | always |
    /// | `memoryMB` | `.int` | always |
    /// | `disks` | `.list` of `.int` (GB, in disk order) | when the manifest sets `disks` |
    /// | `folder` | `.string`, path under the vm folder, "" for the vm folder itself | always |
    /// | `placement` | `.string`, `cluster:NAME` or `pool:PATH` | always |
    /// | `datastore` | `.string` | when the manifest sets `datastore` |
    /// | `portGroup` | `.string` | when the manifest sets `network` |
    /// | `ipv4` | `.string`, the address without prefix (`10.0.0.15`) | when the manifest sets `network.ipv4` |
    /// | `powerState` | `.string`, `poweredOn` or `poweredOff` | always |
    /// | `annotation` | `.string` | always |
    /// | `guestId` | `.string` | when the manifest sets `guestId` |
    ///
    /// `template`, `ipTimeout`, `allowPowerCycle` and `snapshots` say how to act, not what
    /// the VM is, and are never compared.
    public func desiredFields(metadata: Metadata) -> FieldMap {
        var fields = FieldMap()
        fields["cpus"] = .int(cpus)
        fields["memoryMB"] = .int(memoryMB)
        if disksDeclared { fields["disks"] = .list(disks.map(FieldValue.int)) }
        fields["folder"] = .string(folder)
        fields["placement"] = .string(placement.canonical)
        if let datastore { fields["datastore"] = .string(datastore) }
        if let network {
            fields["portGroup"] = .string(network.portGroup)
            if let ipv4 = network.ipv4 { fields["ipv4"] = .string(ipv4.address.description) }
        }
        fields["powerState"] = .string(powerState)
        fields["annotation"] = .string(annotation)
        if let guestId { fields["guestId"] = .string(guestId) }
        return fields
    }

    /// Moving a VM to another folder, cluster, pool or datastore is not done in place.
    /// Every field changes in place: a new folder, pool or datastore migrates the VM (as
    /// vCenter and Terraform's provider do) instead of destroying it with its data.
    public static func changeMode(forField field: String) -> ChangeMode { .inPlace }

    /// An update is guarded by a snapshot (unless `snapshots.beforeChange` is false). When
    /// the provider found that the VM cannot take one (`snapshotSupported: false`), the
    /// guard carries a warning: the plan says up front that the change runs unguarded.
    public func stepGuard(for action: PlanStep.Action, observed: ObservedResource?) -> StepGuard? {
        guard action == .update, snapshotBeforeChange else { return nil }
        var snapshot = StepGuard(kind: .snapshot)
        guard let observed else { return snapshot }
        let name = observed.id.name
        if observed.facts[Self.snapshotSupportedFact] == "false" {
            snapshot.warning = "vCenter reports that VM '\(name)' cannot take snapshots; this change runs without a snapshot guard"
        } else if growsADisk(observed) {
            // vSphere cannot extend a disk that has snapshots: the guard would defeat the change.
            let existing = Int(observed.facts[Self.snapshotCountFact] ?? "") ?? 0
            snapshot.warning = existing > 0
                ? "VM '\(name)' has \(existing) snapshot\(existing == 1 ? "" : "s") and vSphere cannot extend a disk that has snapshots: this step will fail until they are removed (the snapshot retention pass removes automatic ones past their retention)"
                : "growing a disk of VM '\(name)' cannot be guarded by a snapshot (vSphere cannot extend a disk that has snapshots); this change runs without one"
        }
        return snapshot
    }

    /// The fact (`"true"`/`"false"`) by which a provider says whether a VM can be snapshotted.
    public static let snapshotSupportedFact = "snapshotSupported"
    /// The provider fact giving how many snapshots the VM has.
    public static let snapshotCountFact = "snapshotCount"

    /// Whether the manifest asks for a larger size of a disk the VM already has.
    func growsADisk(_ observed: ObservedResource) -> Bool {
        guard case .list(let live)? = observed.fields["disks"] else { return false }
        return zip(disks, live).contains { wanted, current in
            if case .int(let size) = current { return wanted > size }
            return false
        }
    }
}

extension VirtualMachineSpec: GuestMachine {
    public var declaredAddress: String? { network?.ipv4?.address.description }
}
