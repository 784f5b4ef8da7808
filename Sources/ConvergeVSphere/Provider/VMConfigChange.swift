/// What one `ReconfigVM_Task` changes: only the fields set are sent, so everything else on
/// the VM stays as it is.
struct VMConfigChange: Sendable, Equatable {
    var cpus: Int?
    var memoryMB: Int?
    var annotation: String?
    var guestId: String?
    /// Wanted disk sizes in GB, in device order; larger sizes grow a disk, extra entries add one.
    var disks: [Int]?
    /// The port group the first NIC should be on (a NIC is added when the VM has none).
    var portGroup: String?

    var isEmpty: Bool { self == VMConfigChange() }

    /// Whether the change needs the VM powered off: CPUs or memory going down, or going up
    /// without hot-add enabled, or another guest OS.
    func needsPowerOff(_ vm: VMRecord) -> Bool {
        guard vm.powerState == "poweredOn" else { return false }
        if guestId != nil { return true }
        if let cpus, cpus < vm.cpus || (cpus > vm.cpus && !vm.cpuHotAdd) { return true }
        if let memoryMB, memoryMB < vm.memoryMB || (memoryMB > vm.memoryMB && !vm.memoryHotAdd) { return true }
        return false
    }

    /// Writes the `spec` parameter of `ReconfigVM_Task`, in the WSDL's element order.
    func write(_ writer: inout SOAPWriter, vm: VMRecord, inventory: VSphereInventory) throws {
        var deviceChanges: [(operation: String, fileOperation: String?, device: SOAPNode)] = []
        if let disks {
            let existing = vm.disks
            for (position, sizeGB) in disks.enumerated() {
                if position < existing.count {
                    let current = VMRecord.diskSizeGB(existing[position])
                    if sizeGB < current {
                        throw VSphereProviderError.unsupported("disk \(position + 1) of VM '\(vm.name)' is \(current) GB; vSphere cannot shrink a disk to \(sizeGB) GB", hint: "keep the size, or create a new VM with the smaller disk")
                    }
                    if sizeGB > current {
                        guard vm.snapshots.isEmpty else {
                            throw VSphereProviderError.unsupported("VM '\(vm.name)' has \(vm.snapshots.count) snapshot\(vm.snapshots.count == 1 ? "" : "s"), and vSphere cannot extend a disk that has snapshots", hint: "remove them (the snapshot retention pass removes automatic ones past their retention) and run again")
                        }
                        deviceChanges.append(("edit", nil, Self.resized(existing[position], gigabytes: sizeGB)))
                    }
                } else {
                    deviceChanges.append(("add", "create", try Self.newDisk(sizeGB, vm: vm, offset: position - existing.count)))
                }
            }
            if existing.count > disks.count {
                throw VSphereProviderError.unsupported("VM '\(vm.name)' has \(existing.count) disks and the manifest lists \(disks.count); Converge does not remove disks (their data would be lost)", hint: "list every disk the VM has")
            }
        }
        if let portGroup {
            guard let network = inventory.networks[portGroup] else {
                throw VSphereProviderError.notFound("port group '\(portGroup)'", available: inventory.networks.keys.sorted(), field: "spec.network.portGroup")
            }
            let backing: SOAPNode
            if let group = inventory.distributedPortGroups[network] {
                guard let uuid = inventory.switchUUIDs[group.switch] else {
                    throw VSphereProviderError.unsupported("the distributed switch of port group '\(portGroup)' could not be read", hint: "check that the vCenter user may read the switch (System.Read on it)")
                }
                backing = SOAPNode(name: "backing", xsiType: "VirtualEthernetCardDistributedVirtualPortBackingInfo", children: [
                    SOAPNode(name: "port", children: [
                        SOAPNode(name: "switchUuid", text: uuid),
                        SOAPNode(name: "portgroupKey", text: group.key),
                    ]),
                ])
            } else if network.type == "Network" {
                backing = SOAPNode(name: "backing", xsiType: "VirtualEthernetCardNetworkBackingInfo", children: [
                    SOAPNode(name: "deviceName", text: portGroup),
                    SOAPNode(name: "network", referenceType: network.type, text: network.value),
                ])
            } else {
                throw VSphereProviderError.unsupported("port group '\(portGroup)' is a \(network.type), which Converge cannot attach a NIC to yet", hint: "use a standard or distributed port group")
            }
            if let nic = vm.nics.first {
                deviceChanges.append(("edit", nil, nic.replacing("backing", with: backing)))
            } else {
                deviceChanges.append(("add", nil, SOAPNode(name: "device", xsiType: "VirtualVmxnet3", children: [
                    SOAPNode(name: "key", text: "-200"), backing,
                    SOAPNode(name: "addressType", text: "generated"),
                ])))
            }
        }
        writer.element("spec") { writer in
            writer.leaf("guestId", guestId)
            writer.leaf("annotation", annotation)
            writer.leaf("numCPUs", cpus)
            writer.leaf("memoryMB", memoryMB)
            for change in deviceChanges {
                writer.element("deviceChange") { writer in
                    writer.leaf("operation", change.operation)
                    writer.leaf("fileOperation", change.fileOperation)
                    writer.node(change.device, as: "device")
                }
            }
        }
    }

    private static func resized(_ disk: SOAPNode, gigabytes: Int) -> SOAPNode {
        var disk = disk
        disk = disk.replacing("capacityInKB", with: SOAPNode(name: "capacityInKB", text: String(gigabytes << 20)))
        if disk.child("capacityInBytes") != nil {
            disk = disk.replacing("capacityInBytes", with: SOAPNode(name: "capacityInBytes", text: String(gigabytes << 30)))
        }
        return disk
    }

    /// A new thin disk on the first disk's controller, at the next free unit (7 is the
    /// SCSI controller's own).
    private static func newDisk(_ gigabytes: Int, vm: VMRecord, offset: Int) throws -> SOAPNode {
        guard let controller = vm.disks.first?.child("controllerKey")?.text
                ?? vm.devices.first(where: { $0.xsiType?.contains("SCSIController") == true || $0.xsiType == "VirtualLsiLogicController" })?.child("key")?.text else {
            throw VSphereProviderError.unsupported("VM '\(vm.name)' has no disk controller to add a disk to", hint: "use a template with a SCSI controller")
        }
        let used = Set(vm.devices.filter { $0.child("controllerKey")?.text == controller }.compactMap { $0.child("unitNumber")?.int })
        let free = (0..<16).filter { $0 != 7 && !used.contains($0) }
        guard offset < free.count else {
            throw VSphereProviderError.unsupported("VM '\(vm.name)' has no free unit on its disk controller", hint: "use fewer disks")
        }
        return SOAPNode(name: "device", xsiType: "VirtualDisk", children: [
            SOAPNode(name: "key", text: String(-100 - offset)),
            SOAPNode(name: "backing", xsiType: "VirtualDiskFlatVer2BackingInfo", children: [
                SOAPNode(name: "fileName", text: ""),
                SOAPNode(name: "diskMode", text: "persistent"),
                SOAPNode(name: "thinProvisioned", text: "true"),
            ]),
            SOAPNode(name: "controllerKey", text: controller),
            SOAPNode(name: "unitNumber", text: String(free[offset])),
            SOAPNode(name: "capacityInKB", text: String(gigabytes << 20)),
        ])
    }
}

extension SOAPNode {
    /// A copy with the child `name` replaced (kept in place), or appended when absent.
    func replacing(_ name: String, with replacement: SOAPNode) -> SOAPNode {
        var copy = self
        if let index = copy.children.firstIndex(where: { $0.name == name }) {
            copy.children[index] = replacement
        } else {
            copy.children.append(replacement)
        }
        return copy
    }
}
