import ConvergeCore

/// The parts of a VM Converge sets after creation: what a manifest asks for, and what the
/// snapshot guard records before a change so a rollback can check the VM is back.
struct VMState: Sendable, Codable, Equatable {
    var cpus: Int
    var memoryMB: Int
    var annotation: String
    var guestId: String?
    /// nil: leave the disks as they are.
    var disks: [Int]?
    var portGroup: String?
    var powerState: String
    /// Where it lives: folder path, `VirtualMachineSpec.Placement.canonical`, datastore name;
    /// nil leaves that as it is.
    var folder: String?
    var placement: String?
    var datastore: String?

    init(_ spec: VirtualMachineSpec) {
        cpus = spec.cpus
        memoryMB = spec.memoryMB
        annotation = spec.annotation
        guestId = spec.guestId
        disks = spec.disks.isEmpty ? nil : spec.disks
        portGroup = spec.network?.portGroup
        powerState = spec.powerState
        folder = spec.folder
        placement = spec.placement.canonical
        datastore = spec.datastore
    }

    /// The VM as it is. Disks are left out: a disk cannot shrink, and reverting the snapshot
    /// is what brings a grown one back.
    init(_ vm: VMRecord, in inventory: VSphereInventory) {
        cpus = vm.cpus
        memoryMB = vm.memoryMB
        annotation = vm.annotation
        guestId = vm.guestId.isEmpty ? nil : vm.guestId
        disks = nil
        portGroup = vm.portGroup(in: inventory)
        powerState = vm.powerState
        folder = vm.folder.flatMap { inventory.path(of: $0, under: inventory.vmFolder) }
        placement = vm.pool.map { inventory.placement(ofPool: $0) }
        datastore = vm.homeDatastore
    }

    /// The reconfiguration that takes `vm` to this state.
    func change(from vm: VMRecord, in inventory: VSphereInventory) -> VMConfigChange {
        var change = VMConfigChange()
        if cpus != vm.cpus { change.cpus = cpus }
        if memoryMB != vm.memoryMB { change.memoryMB = memoryMB }
        if annotation != vm.annotation { change.annotation = annotation }
        if let guestId, guestId != vm.guestId { change.guestId = guestId }
        if let disks, disks != vm.disks.map(VMRecord.diskSizeGB) { change.disks = disks }
        if let portGroup, portGroup != vm.portGroup(in: inventory) { change.portGroup = portGroup }
        return change
    }
}
