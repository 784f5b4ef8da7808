import ConvergeCore
import Foundation

/// Making, changing and removing VMs.
extension VSphereProvider {
    /// Clone (marked as this instance's from its first moment), ownership field, reconfigure,
    /// guest customization with the declared address, power on, wait for that address. A
    /// create cut off anywhere (a crash, a retry) carries on with the VM it made.
    func create(name: String, spec: VirtualMachineSpec, instance: String) async throws {
        let client = try await client()
        let inventory = try await inventory(refresh: true)
        guard let fieldKey = try await ownershipFieldKey(create: true) else { return }
        var vm: VMRecord
        if let existing = inventory.vm(named: name) {
            let owner = try await ownership(of: existing, fieldKey: fieldKey, instance: instance)
            guard owner.owned else {
                throw VSphereProviderError.ownership("a VM named '\(name)' appeared that Converge instance '\(instance)' does not own; it was left alone")
            }
            if owner.markedOnly { try await markOwned(existing.ref, key: fieldKey, instance: instance) }
            vm = existing
        } else {
            guard let template = inventory.templates[spec.template], let pool = inventory.pool(for: spec.placement),
                  let folder = inventory.folder(atPath: spec.folder) else {
                throw VSphereProviderError.invalidReferences(unresolvedNames(spec, of: ResourceID(kind: VirtualMachineSpec.kind, name: name), exists: false, in: inventory))
            }
            let datastore = spec.datastore.flatMap { inventory.datastores[$0] }
            let host = try await hostIfDRSIsOff(for: pool, in: inventory)
            let result = try await client.runTask("CloneVM_Task", on: template, objectName: spec.template) { writer in
                writer.reference("folder", folder)
                writer.leaf("name", name)
                writer.element("spec") { writer in
                    writer.element("location") { writer in
                        writer.reference("datastore", datastore)
                        writer.reference("pool", pool)
                        writer.reference("host", host)
                    }
                    writer.leaf("template", false)
                    writer.element("config") { writer in
                        writer.element("extraConfig", type: "OptionValue") { writer in
                            writer.leaf("key", Self.cloneMarkerKey)
                            writer.leaf("value", instance, type: "xsd:string")
                        }
                    }
                    writer.leaf("powerOn", false)
                }
            }
            guard let ref = result.result?.reference else { throw SOAPParser.Malformed(detail: "CloneVM_Task returned no VM") }
            try await markOwned(ref, key: fieldKey, instance: instance)
            vm = try await read(ref)
        }
        try await reconfigure(&vm, to: VMState(spec), allowPowerCycle: spec.allowPowerCycle)
        if let ipv4 = spec.network?.ipv4, vm.powerState == "poweredOff", !vm.guestIPv4.contains(ipv4.address.description) {
            do {
                try await client.runTask("CustomizeVM_Task", on: vm.ref, objectName: name) { writer in
                    GuestCustomization.write(&writer, hostName: name, address: ipv4, gateway: spec.network?.gateway)
                }
            } catch let fault as VimFault where fault.type == "CustomizationPending" {
                // Set by the attempt a crash cut off; it applies at power-on all the same.
            }
        }
        try await setPower(&vm, to: spec.powerState)
        if let ipv4 = spec.network?.ipv4, spec.powerState == "poweredOn" {
            try await waitForGuestIP(vm, expected: ipv4.address.description, timeout: spec.ipTimeout)
        }
    }

    /// A running VM reporting addresses, none of them the declared one: Converge sets the
    /// address only when it creates a VM, so this is reported rather than forced.
    func checkAddress(of vm: VMRecord, against spec: VirtualMachineSpec) async throws {
        guard let declared = spec.network?.ipv4?.address.description, vm.powerState == "poweredOn",
              !vm.guestIPv4.isEmpty, !vm.guestIPv4.contains(declared) else { return }
        throw VSphereProviderError.unsupported("VM '\(vm.name)' has IPv4 \(vm.guestIPv4.joined(separator: ", ")) and the manifest says \(declared); Converge sets the address only when it creates a VM", hint: "change the address inside the guest, or recreate the VM")
    }

    /// Takes `vm` to `state`: moves it (folder, then pool and datastore, migrating it as
    /// vCenter does), reconfigures its hardware, then sets its power state.
    func apply(_ state: VMState, to vm: inout VMRecord, allowPowerCycle: Bool) async throws {
        try await relocate(&vm, to: state)
        try await reconfigure(&vm, to: state, allowPowerCycle: allowPowerCycle)
        try await setPower(&vm, to: state.powerState)
    }

    private func relocate(_ vm: inout VMRecord, to state: VMState) async throws {
        let inventory = try await inventory()
        let client = try await client()
        if let path = state.folder, let current = vm.folder, inventory.path(of: current, under: inventory.vmFolder) != path {
            guard let folder = inventory.folder(atPath: path) else {
                throw VSphereProviderError.notFound("folder '\(path)'", available: inventory.available("Folder", under: inventory.vmFolder), field: "spec.folder")
            }
            try await client.runTask("MoveIntoFolder_Task", on: folder, objectName: path) { $0.reference("list", vm.ref) }
        }
        var pool: ManagedObjectReference?
        if let placement = state.placement.flatMap(VirtualMachineSpec.Placement.init(canonical:)), let current = vm.pool,
           inventory.placement(ofPool: current) != placement.canonical {
            pool = inventory.pool(for: placement)
        }
        let datastore = state.datastore.flatMap { $0 == vm.homeDatastore ? nil : inventory.datastores[$0] }
        if pool != nil || datastore != nil {
            let host = pool == nil ? nil : try await hostIfDRSIsOff(for: pool!, in: inventory)
            try await client.runTask("RelocateVM_Task", on: vm.ref, objectName: vm.name) { writer in
                writer.element("spec") { writer in
                    writer.reference("datastore", datastore)
                    writer.reference("pool", pool)
                    writer.reference("host", host)
                }
                writer.leaf("priority", "defaultPriority")
            }
        }
        vm = try await read(vm.ref)
    }

    /// Sends the hardware differences between `vm` and `state` in one `ReconfigVM_Task`,
    /// powering the VM off for it only when the change needs that and it is allowed.
    func reconfigure(_ vm: inout VMRecord, to state: VMState, allowPowerCycle: Bool) async throws {
        let inventory = try await inventory()
        let change = state.change(from: vm, in: inventory)
        guard !change.isEmpty else { return }
        let client = try await client()
        // Written first, so an impossible change (a disk to shrink) fails before the VM is touched.
        var spec = SOAPWriter()
        try change.write(&spec, vm: vm, inventory: inventory)
        if change.needsPowerOff(vm) {
            guard allowPowerCycle else {
                throw VSphereProviderError.unsupported("VM '\(vm.name)' must be powered off for this change (CPU or memory going down or without hot-add, or a guest OS change)", hint: "set spec.allowPowerCycle: true to let Converge power it off and on again, or power it off yourself")
            }
            try await setPower(&vm, to: "poweredOff")
        }
        try await client.runTask("ReconfigVM_Task", on: vm.ref, objectName: vm.name) { $0.append(spec) }
        vm = try await read(vm.ref)
    }

    /// Powers the VM on or off. Off is a guest shutdown when VMware Tools run (a power
    /// cycle for a change should not cut the guest's power), and a hard power-off otherwise
    /// or if the guest has not stopped within `shutdownTimeout`.
    func setPower(_ vm: inout VMRecord, to state: String, shutdownTimeout: Duration = .seconds(120)) async throws {
        let wantOn = state == "poweredOn"
        guard wantOn != (vm.powerState == "poweredOn") else { return }
        let client = try await client()
        if !wantOn, vm.toolsRunning, shutdownTimeout > .zero {
            try await client.invoke("ShutdownGuest", on: vm.ref, objectName: vm.name)
            let clock = ContinuousClock()
            let deadline = clock.now + shutdownTimeout
            while clock.now < deadline {
                vm = try await read(vm.ref)
                if vm.powerState != "poweredOn" { return }
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        try await client.runTask(wantOn ? "PowerOnVM_Task" : "PowerOffVM_Task", on: vm.ref, objectName: vm.name)
        vm = try await read(vm.ref)
    }

    /// Powers the VM off (no guest shutdown: it is about to go), destroys it, and forgets its
    /// provisioning status.
    func destroy(_ vm: VMRecord) async throws {
        var vm = vm
        try await setPower(&vm, to: "poweredOff", shutdownTimeout: .zero)
        try await client().runTask("Destroy_Task", on: vm.ref, objectName: vm.name)
        cachedInventory?.vms.removeAll { $0.ref == vm.ref }
        try await context.records()?.remove(MachineStatus.recordKey(target: target, machine: vm.name))
    }

    /// A pool in a cluster without DRS needs a host named in the relocate spec (vCenter
    /// refuses the clone or move otherwise); with DRS, vCenter picks one.
    private func hostIfDRSIsOff(for pool: ManagedObjectReference, in inventory: VSphereInventory) async throws -> ManagedObjectReference? {
        var owner = inventory.parents[pool]
        while let current = owner, current.type == "ResourcePool" { owner = inventory.parents[current] }
        guard let cluster = owner, cluster.type == "ClusterComputeResource" else { return nil }
        let content = try await client().retrieve([cluster], properties: ["configurationEx", "host"]).first
        guard content?["configurationEx"]?.descendant("drsConfig.enabled")?.bool == false else { return nil }
        return content?["host"]?.children.compactMap(\.reference).first
    }

    /// Polls the addresses the guest reports until the declared one is among them or
    /// `timeout` passes: a guest often shows its template's or a link-local address first,
    /// until customization has run.
    private func waitForGuestIP(_ vm: VMRecord, expected: String, timeout: Duration) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var delay = Duration.milliseconds(200)
        var seen: [String] = []
        while true {
            seen = try await read(vm.ref).guestIPv4
            if seen.contains(expected) { return }
            guard clock.now < deadline else {
                let reported = seen.isEmpty ? "reported no IPv4 address" : "reported \(seen.joined(separator: ", ")), not the declared \(expected),"
                throw VSphereProviderError.guestIP("VM '\(vm.name)' \(reported) within \(timeout) (spec.ipTimeout); check that VMware Tools run in the template, its guest customization, and the port group")
            }
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(2))
        }
    }
}
