import ConvergeCore

/// One datacenter's inventory as read in one bulk call: the VMs with the properties the diff
/// needs, and the folders, pools, clusters, datastores and networks their references name.
struct VSphereInventory: Sendable {
    var datacenter: ManagedObjectReference
    var datacenterName: String
    var vmFolder: ManagedObjectReference
    var hostFolder: ManagedObjectReference
    var names: [ManagedObjectReference: String] = [:]
    var parents: [ManagedObjectReference: ManagedObjectReference] = [:]
    /// A compute resource (cluster or standalone host) → its root resource pool.
    var rootPools: [ManagedObjectReference: ManagedObjectReference] = [:]
    var datastores: [String: ManagedObjectReference] = [:]
    var networks: [String: ManagedObjectReference] = [:]
    /// A distributed port group → its key and switch, and each switch's UUID: what a NIC's
    /// backing names instead of the port group itself.
    var distributedPortGroups: [ManagedObjectReference: (key: String, switch: ManagedObjectReference)] = [:]
    var switchUUIDs: [ManagedObjectReference: String] = [:]
    var vms: [VMRecord] = []
    var templates: [String: ManagedObjectReference] = [:]

    static var vmProperties: [String] { VSphereProvider.observedVMProperties }
}

extension VSphereProvider {
    /// The VirtualMachine properties read for every VM. The benchmark hands the same list to
    /// its pyVmomi script, so the comparison stays fair.
    public static let observedVMProperties = [
        "name", "customValue", "config.template", "config.hardware.numCPU", "config.hardware.memoryMB",
        "config.hardware.device", "config.annotation", "config.guestId", "config.cpuHotAddEnabled",
        "config.memoryHotAddEnabled", "config.files.vmPathName", "runtime.powerState", "guest.ipAddress", "guest.net", "guest.toolsRunningStatus",
        "resourcePool", "parent",
        "datastore", "network", "snapshot", "capability.snapshotOperationsSupported",
    ]
}

extension VSphereInventory {

    /// Reads the datacenter named `name` and everything under it.
    static func read(_ client: VimClient, datacenter name: String) async throws -> VSphereInventory {
        let root = await client.serviceContent.rootFolder
        let datacenters = try await client.retrieve(under: root, properties: ["Datacenter": ["name", "vmFolder", "hostFolder"]])
        guard let dc = datacenters.first(where: { $0["name"]?.text == name }),
              let vmFolder = dc["vmFolder"]?.reference, let hostFolder = dc["hostFolder"]?.reference else {
            let found = datacenters.compactMap { $0["name"]?.text }.sorted()
            throw VSphereProviderError.notFound("datacenter '\(name)'", available: found, field: "spec.datacenter of the VCenter")
        }
        var inventory = VSphereInventory(datacenter: dc.object, datacenterName: name, vmFolder: vmFolder, hostFolder: hostFolder)
        let objects = try await client.retrieve(under: dc.object, properties: [
            "VirtualMachine": vmProperties,
            "Folder": ["name", "parent"],
            "ResourcePool": ["name", "parent"],
            "ComputeResource": ["name", "parent", "resourcePool"],
            "Datastore": ["name"],
            "Network": ["name"],
            "DistributedVirtualPortgroup": ["name", "key", "config.distributedVirtualSwitch"],
            "DistributedVirtualSwitch": ["uuid"],
        ])
        for object in objects {
            let name = object["name"]?.text ?? ""
            switch object.object.type {
            case "VirtualMachine":
                let vm = VMRecord(object)
                if vm.isTemplate { inventory.templates[vm.name] = vm.ref } else { inventory.vms.append(vm) }
                inventory.names[object.object] = name
            case "Datastore":
                inventory.datastores[name] = object.object
            case "Network", "DistributedVirtualPortgroup", "OpaqueNetwork":
                inventory.networks[name] = object.object
                inventory.names[object.object] = name
                if let key = object["key"]?.text, let dvs = object["config.distributedVirtualSwitch"]?.reference {
                    inventory.distributedPortGroups[object.object] = (key, dvs)
                }
            case "DistributedVirtualSwitch", "VmwareDistributedVirtualSwitch":
                if let uuid = object["uuid"]?.text { inventory.switchUUIDs[object.object] = uuid }
            default:
                inventory.names[object.object] = name
                if let parent = object["parent"]?.reference { inventory.parents[object.object] = parent }
                if let pool = object["resourcePool"]?.reference { inventory.rootPools[object.object] = pool }
            }
        }
        return inventory
    }

    /// The path of `object` below `root`, names joined by `/`; "" for `root` itself.
    func path(of object: ManagedObjectReference, under root: ManagedObjectReference) -> String? {
        var parts: [String] = []
        var current = object
        while current != root {
            guard let name = names[current], let parent = parents[current] else { return nil }
            parts.append(name)
            current = parent
        }
        return parts.reversed().joined(separator: "/")
    }

    func folder(atPath path: String) -> ManagedObjectReference? {
        if path.isEmpty { return vmFolder }
        return names.keys.first { $0.type == "Folder" && self.path(of: $0, under: vmFolder) == path }
    }

    /// `cluster:NAME` when the pool is a cluster's root pool, else `pool:PATH` under the host folder.
    func placement(ofPool pool: ManagedObjectReference) -> String {
        if let owner = parents[pool], rootPools[owner] == pool, let name = path(of: owner, under: hostFolder) {
            return "cluster:\(name)"
        }
        return "pool:\(path(of: pool, under: hostFolder) ?? pool.value)"
    }

    func pool(for placement: VirtualMachineSpec.Placement) -> ManagedObjectReference? {
        switch placement {
        case .cluster(let name):
            return rootPools.first { $0.key.type == "ClusterComputeResource" && path(of: $0.key, under: hostFolder) == name }?.value
        case .resourcePool(let path):
            return names.keys.first { $0.type == "ResourcePool" && self.path(of: $0, under: hostFolder) == path }
        }
    }

    func vm(named name: String) -> VMRecord? { vms.first { $0.name == name } }

    /// Names of the objects of one type, for "found: …" hints.
    func available(_ type: String, under root: ManagedObjectReference) -> [String] {
        names.keys.filter { $0.type == type }.compactMap { path(of: $0, under: root) }.sorted()
    }
}

/// One VM as read from vCenter.
struct VMRecord: Sendable {
    var ref: ManagedObjectReference
    var name: String
    var isTemplate: Bool
    var cpus: Int
    var memoryMB: Int
    var annotation: String
    var guestId: String
    var powerState: String
    /// Every IPv4 address the guest reports, the primary one first.
    var guestIPv4: [String]
    var pool: ManagedObjectReference?
    /// The VM's folder; nil when its parent is not a folder (a vApp).
    var folder: ManagedObjectReference?
    /// The datastore holding the VM's configuration, by name (`[name] dir/vm.vmx`): stable,
    /// unlike the order of the `datastore` list, which also names ISO and extra-disk stores.
    var homeDatastore: String?
    var devices: [SOAPNode]
    var customValues: [Int: String]
    var snapshotSupported: Bool
    var cpuHotAdd: Bool
    /// VMware Tools run in the guest, so it can be shut down cleanly.
    var toolsRunning: Bool
    var memoryHotAdd: Bool
    var snapshots: [SnapshotInfo]
    var currentSnapshot: ManagedObjectReference?

    init(_ content: ObjectContent) {
        ref = content.object
        name = content["name"]?.text ?? ""
        isTemplate = content["config.template"]?.bool ?? false
        cpus = content["config.hardware.numCPU"]?.int ?? 0
        memoryMB = content["config.hardware.memoryMB"]?.int ?? 0
        annotation = content["config.annotation"]?.text ?? ""
        guestId = content["config.guestId"]?.text ?? ""
        powerState = content["runtime.powerState"]?.text ?? "poweredOff"
        let reported = [content["guest.ipAddress"]?.text].compactMap { $0 }
            + (content["guest.net"]?.children.flatMap { $0.children("ipAddress").map(\.text) } ?? [])
        var seen: Set<String> = []
        guestIPv4 = reported.filter { IPv4Address($0) != nil && seen.insert($0).inserted }
        pool = content["resourcePool"]?.reference
        folder = content["parent"]?.reference.flatMap { $0.type == "Folder" ? $0 : nil }
        homeDatastore = content["config.files.vmPathName"].flatMap { path in
            path.text.hasPrefix("[") ? path.text.dropFirst().prefix { $0 != "]" }.description : nil
        }
        devices = content["config.hardware.device"]?.children ?? []
        customValues = [:]
        for value in content["customValue"]?.children ?? [] {
            if let key = value.child("key")?.int { customValues[key] = value.child("value")?.text ?? "" }
        }
        snapshotSupported = content["capability.snapshotOperationsSupported"]?.bool ?? true
        cpuHotAdd = content["config.cpuHotAddEnabled"]?.bool ?? false
        toolsRunning = content["guest.toolsRunningStatus"]?.text == "guestToolsRunning"
        memoryHotAdd = content["config.memoryHotAddEnabled"]?.bool ?? false
        let tree = content["snapshot"]
        currentSnapshot = tree?.child("currentSnapshot")?.reference
        snapshots = SnapshotInfo.flatten(tree?.children("rootSnapshotList") ?? [])
    }

    var disks: [SOAPNode] { devices.filter { $0.xsiType == "VirtualDisk" } }

    /// Network cards: every device whose backing is an Ethernet card backing.
    var nics: [SOAPNode] { devices.filter { $0.child("backing")?.xsiType?.hasPrefix("VirtualEthernetCard") == true } }

    static func diskSizeGB(_ disk: SOAPNode) -> Int {
        if let bytes = disk.child("capacityInBytes")?.int { return bytes / (1 << 30) }
        return (disk.child("capacityInKB")?.int ?? 0) / (1 << 20)
    }

    /// The port group of the first NIC, by name.
    func portGroup(in inventory: VSphereInventory) -> String? {
        guard let backing = nics.first?.child("backing") else { return nil }
        if let network = backing.child("network")?.reference, let name = inventory.names[network] { return name }
        if let key = backing.descendant("port.portgroupKey")?.text,
           let group = inventory.distributedPortGroups.first(where: { $0.value.key == key })?.key {
            return inventory.names[group]
        }
        return backing.child("deviceName")?.text
    }
}

/// One snapshot in a VM's tree.
struct SnapshotInfo: Sendable {
    var ref: ManagedObjectReference
    var name: String
    var createTime: String

    static func flatten(_ nodes: [SOAPNode]) -> [SnapshotInfo] {
        nodes.flatMap { node -> [SnapshotInfo] in
            var found: [SnapshotInfo] = []
            if let ref = node.child("snapshot")?.reference {
                found.append(SnapshotInfo(ref: ref, name: node.child("name")?.text ?? "", createTime: node.child("createTime")?.text ?? ""))
            }
            return found + flatten(node.children("childSnapshotList"))
        }
    }
}
