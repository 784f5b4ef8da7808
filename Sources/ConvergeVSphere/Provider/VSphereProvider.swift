import ConvergeCore
import Foundation

/// The provider for one `VCenter`: observes, creates, changes and removes the
/// `VirtualMachine`s of its datacenter, guarding changes with snapshots.
///
/// One session is opened on first use and kept for the provider's life; the inventory read
/// by `observe` is reused by the steps that follow it.
public actor VSphereProvider: Provider {
    public nonisolated let managedKinds: Set<String> = [VirtualMachineSpec.kind]
    public nonisolated let target: ResourceID
    let spec: VCenterSpec
    private var connecting: Task<VimClient, any Error>?
    private var cachedInventory: VSphereInventory?

    /// The custom field that records which Converge instance owns a VM.
    public static let ownershipField = "converge.dev/managed-by"

    public init(target: ResourceID, spec: VCenterSpec) {
        self.target = target
        self.spec = spec
    }

    /// The logged-in client, connecting on first use.
    public func client() async throws -> VimClient {
        if let connecting { return try await connecting.value }
        let spec = self.spec
        let target = self.target
        let task = Task {
            let client = try await VCenterConnection.connect(spec, target: target)
            // vCenter drops sessions idle for 30 minutes by default; a controller keeps its own.
            await client.startKeepAlive(every: .seconds(600))
            return client
        }
        connecting = task
        do {
            return try await task.value
        } catch {
            connecting = nil
            throw error
        }
    }

    /// Logs out (the CLI calls this when a command ends).
    public func close() async {
        if let connecting, let client = try? await connecting.value { await client.logout() }
        connecting = nil
    }

    func inventory(refresh: Bool = false) async throws -> VSphereInventory {
        if !refresh, let cachedInventory { return cachedInventory }
        let inventory = try await VSphereInventory.read(try await client(), datacenter: spec.datacenter)
        cachedInventory = inventory
        return inventory
    }

    // MARK: Observe

    public func observe(desired: [Resource], in set: ManifestSet, instance: String) async throws -> [ObservedResource] {
        let inventory = try await inventory(refresh: true)
        let fieldKey = try await ownershipFieldKey(create: false)
        let wanted = Dictionary(desired.compactMap { resource in resource.spec(as: VirtualMachineSpec.self).map { (resource.id.name, ($0, resource)) } }, uniquingKeysWith: { first, _ in first })

        var problems: [String] = []
        for (name, (spec, resource)) in wanted.sorted(by: { $0.key < $1.key }) {
            problems += unresolvedNames(spec, of: resource.id, exists: inventory.vm(named: name) != nil, in: inventory)
        }
        if !problems.isEmpty { throw VSphereProviderError.invalidReferences(problems) }

        var observed: [ObservedResource] = []
        for vm in inventory.vms {
            let owner = fieldKey.flatMap { vm.customValues[$0] }.flatMap { $0.isEmpty ? nil : $0 }
            let ownership: ObservedResource.Ownership
            switch owner {
            case instance?: ownership = .managed
            case let other?: ownership = .otherInstance(other)
            case nil: ownership = .unmanaged
            }
            guard ownership == .managed || wanted[vm.name] != nil else { continue }
            let id = ResourceID(kind: VirtualMachineSpec.kind, name: vm.name)
            var object = ObservedResource(id: id, fields: Self.fields(of: vm, desired: wanted[vm.name]?.0, in: inventory), ownership: ownership, externalID: vm.ref.value)
            object.facts["snapshotSupported"] = vm.snapshotSupported ? "true" : "false"
            observed.append(object)
        }
        return observed
    }

    /// The names a manifest gives that vCenter lacks. The template matters only for a VM
    /// still to be made.
    private func unresolvedNames(_ spec: VirtualMachineSpec, of id: ResourceID, exists: Bool, in inventory: VSphereInventory) -> [String] {
        var problems: [String] = []
        let where_ = "in datacenter \(inventory.datacenterName)"
        if !exists, inventory.templates[spec.template] == nil {
            problems.append("\(id): template '\(spec.template)' not found \(where_) (spec.template; templates there: \(inventory.templates.keys.sorted().joined(separator: ", ").ifEmpty("none")))")
        }
        if inventory.folder(atPath: spec.folder) == nil {
            problems.append("\(id): folder '\(spec.folder)' not found under the vm folder of \(inventory.datacenterName) (spec.folder; create it in vCenter first)")
        }
        if inventory.pool(for: spec.placement) == nil {
            switch spec.placement {
            case .cluster(let name):
                problems.append("\(id): cluster '\(name)' not found \(where_) (spec.cluster; clusters: \(inventory.available("ClusterComputeResource", under: inventory.hostFolder).joined(separator: ", ").ifEmpty("none")))")
            case .resourcePool(let path):
                problems.append("\(id): resource pool '\(path)' not found \(where_) (spec.resourcePool; pools: \(inventory.available("ResourcePool", under: inventory.hostFolder).joined(separator: ", ").ifEmpty("none")))")
            }
        }
        if let datastore = spec.datastore, inventory.datastores[datastore] == nil {
            problems.append("\(id): datastore '\(datastore)' not found \(where_) (spec.datastore; datastores: \(inventory.datastores.keys.sorted().joined(separator: ", ").ifEmpty("none")))")
        }
        if let portGroup = spec.network?.portGroup, inventory.networks[portGroup] == nil {
            problems.append("\(id): port group '\(portGroup)' not found \(where_) (spec.network.portGroup; networks: \(inventory.networks.keys.sorted().joined(separator: ", ").ifEmpty("none")))")
        }
        return problems
    }

    /// The live VM in the shape `VirtualMachineSpec.desiredFields` uses. Optional fields are
    /// read only when the manifest sets them; without a manifest (a VM to prune) all are.
    static func fields(of vm: VMRecord, desired spec: VirtualMachineSpec?, in inventory: VSphereInventory) -> FieldMap {
        var fields = FieldMap()
        fields["cpus"] = .int(vm.cpus)
        fields["memoryMB"] = .int(vm.memoryMB)
        fields["powerState"] = .string(vm.powerState)
        fields["annotation"] = .string(vm.annotation)
        fields["folder"] = .string(vm.folder.flatMap { inventory.path(of: $0, under: inventory.vmFolder) } ?? "")
        if let pool = vm.pool { fields["placement"] = .string(inventory.placement(ofPool: pool)) }
        if spec == nil || spec?.disks.isEmpty == false {
            fields["disks"] = .list(vm.disks.map { .int(VMRecord.diskSizeGB($0)) })
        }
        if spec == nil || spec?.datastore != nil, let datastore = vm.datastores.first {
            fields["datastore"] = .string(inventory.datastores.first { $0.value == datastore }?.key ?? datastore.value)
        }
        if spec == nil || spec?.network != nil, let portGroup = vm.portGroup(in: inventory) {
            fields["portGroup"] = .string(portGroup)
        }
        if let declared = spec?.network?.ipv4 {
            // The guest reports its address only while running with tools; until then the
            // declared one stands, so a stopped VM is not shown as drifting.
            let reported = vm.powerState == "poweredOn" ? vm.guestIP : nil
            fields["ipv4"] = .string(reported ?? declared.address.description)
        }
        if spec == nil || spec?.guestId != nil { fields["guestId"] = .string(vm.guestId) }
        return fields
    }

    // MARK: Execute

    public func execute(_ step: PlanStep, change: ResourceChange, desired: Resource?, observed: ObservedResource?, in set: ManifestSet, instance: String) async throws {
        let name = step.resource.name
        switch step.action {
        case .create:
            guard let spec = desired?.spec(as: VirtualMachineSpec.self) else { throw ReconcileError.notInPlan(step.resource) }
            try await create(name: name, spec: spec, instance: instance)
        case .update:
            guard let spec = desired?.spec(as: VirtualMachineSpec.self) else { throw ReconcileError.notInPlan(step.resource) }
            let vm = try await currentVM(named: name, ref: observed?.externalID)
            try await converge(vm, to: spec)
        case .delete:
            try await destroy(named: name, instance: instance)
        }
    }

    private func create(name: String, spec: VirtualMachineSpec, instance: String) async throws {
        let client = try await client()
        let inventory = try await inventory(refresh: true)
        let fieldKey = try await ownershipFieldKey(create: true)!
        var vm: VMRecord
        if let existing = inventory.vm(named: name) {
            // A create cut off by a crash: carry on with the VM it made.
            guard existing.customValues[fieldKey] == instance else {
                throw VSphereProviderError.ownership("a VM named '\(name)' appeared that Converge instance '\(instance)' does not own; it was left alone")
            }
            vm = existing
        } else {
            guard let template = inventory.templates[spec.template], let pool = inventory.pool(for: spec.placement),
                  let folder = inventory.folder(atPath: spec.folder) else {
                throw VSphereProviderError.invalidReferences(unresolvedNames(spec, of: ResourceID(kind: VirtualMachineSpec.kind, name: name), exists: false, in: inventory))
            }
            let datastore = spec.datastore.flatMap { inventory.datastores[$0] }
            let result = try await client.runTask("CloneVM_Task", on: template, objectName: spec.template) { writer in
                writer.reference("folder", folder)
                writer.leaf("name", name)
                writer.element("spec") { writer in
                    writer.element("location") { writer in
                        writer.reference("datastore", datastore)
                        writer.reference("pool", pool)
                    }
                    writer.leaf("template", false)
                    writer.leaf("powerOn", false)
                }
            }
            guard let ref = result.result?.reference else { throw SOAPParser.Malformed(detail: "CloneVM_Task returned no VM") }
            try await client.invoke("SetField", on: try customFieldsManager(client), body: { writer in
                writer.reference("entity", ref)
                writer.leaf("key", fieldKey)
                writer.leaf("value", instance)
            })
            vm = try await read(ref)
        }
        try await reconfigure(&vm, to: spec, allowPowerCycle: spec.allowPowerCycle)
        if let ipv4 = spec.network?.ipv4, vm.powerState == "poweredOff", vm.guestIP == nil {
            try await client.runTask("CustomizeVM_Task", on: vm.ref, objectName: name) { writer in
                GuestCustomization.write(&writer, hostName: name, address: ipv4, gateway: spec.network?.gateway)
            }
        }
        try await setPower(&vm, to: spec.powerState)
        if let ipv4 = spec.network?.ipv4, spec.powerState == "poweredOn" {
            try await waitForGuestIP(vm, expected: ipv4.address.description, timeout: spec.ipTimeout)
        }
    }

    /// Brings an existing VM to `spec`: one reconfigure for the hardware, then power.
    private func converge(_ vm: VMRecord, to spec: VirtualMachineSpec) async throws {
        var vm = vm
        if let declared = spec.network?.ipv4?.address.description, vm.powerState == "poweredOn", let reported = vm.guestIP, reported != declared {
            throw VSphereProviderError.unsupported("VM '\(vm.name)' has IPv4 \(reported) and the manifest says \(declared); Converge sets the address only when it creates a VM", hint: "change the address inside the guest, or recreate the VM")
        }
        try await reconfigure(&vm, to: spec, allowPowerCycle: spec.allowPowerCycle)
        try await setPower(&vm, to: spec.powerState)
    }

    /// Sends the hardware differences between `vm` and `spec` in one `ReconfigVM_Task`,
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
                throw VSphereProviderError.unsupported("VM '\(vm.name)' must be powered off for this CPU or memory change (hot-add is off or the value goes down)", hint: "set spec.allowPowerCycle: true to let Converge power it off and on again, or power it off yourself")
            }
            try await setPower(&vm, to: "poweredOff")
        }
        try await client.runTask("ReconfigVM_Task", on: vm.ref, objectName: vm.name) { $0.append(spec) }
        vm = try await read(vm.ref)
    }

    private func reconfigure(_ vm: inout VMRecord, to spec: VirtualMachineSpec, allowPowerCycle: Bool) async throws {
        try await reconfigure(&vm, to: VMState(spec), allowPowerCycle: allowPowerCycle)
    }

    func setPower(_ vm: inout VMRecord, to state: String) async throws {
        guard vm.powerState != state else { return }
        let client = try await client()
        switch state {
        case "poweredOn":
            try await client.runTask("PowerOnVM_Task", on: vm.ref, objectName: vm.name)
        default:
            try await client.runTask("PowerOffVM_Task", on: vm.ref, objectName: vm.name)
        }
        vm = try await read(vm.ref)
    }

    /// Powers off and destroys the VM `name`; one this instance does not own is an error, or
    /// skipped with `leaveForeign` (undoing a create that never got to mark its VM).
    func destroy(named name: String, instance: String, leaveForeign: Bool = false) async throws {
        let inventory = try await inventory(refresh: true)
        guard var vm = inventory.vm(named: name) else { return }
        let fieldKey = try await ownershipFieldKey(create: false)
        guard let fieldKey, vm.customValues[fieldKey] == instance else {
            if leaveForeign { return }
            throw VSphereProviderError.ownership("VM '\(name)' is not owned by Converge instance '\(instance)'; it was left alone")
        }
        try await setPower(&vm, to: "poweredOff")
        try await client().runTask("Destroy_Task", on: vm.ref, objectName: name)
        cachedInventory?.vms.removeAll { $0.ref == vm.ref }
    }

    /// Polls the guest's reported address until it shows up or `timeout` passes, and checks it.
    private func waitForGuestIP(_ vm: VMRecord, expected: String, timeout: Duration) async throws {
        let client = try await client()
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var delay = Duration.milliseconds(200)
        while true {
            let reported = try await client.retrieve([vm.ref], properties: ["guest.ipAddress"]).first?["guest.ipAddress"]?.text
            if let reported {
                guard reported == expected else {
                    throw VSphereProviderError.guestIP("VM '\(vm.name)' came up with IPv4 \(reported), not the declared \(expected); check the template's guest customization and the port group")
                }
                return
            }
            guard clock.now < deadline else {
                throw VSphereProviderError.guestIP("VM '\(vm.name)' reported no IPv4 address within \(timeout) (spec.ipTimeout); check that VMware Tools run in the template and that the network works")
            }
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(2))
        }
    }

    // MARK: Reading

    func read(_ ref: ManagedObjectReference) async throws -> VMRecord {
        guard let content = try await client().retrieve([ref], properties: VSphereInventory.vmProperties).first else {
            throw VSphereProviderError.ownership("VM \(ref.value) disappeared from vCenter")
        }
        let vm = VMRecord(content)
        if let index = cachedInventory?.vms.firstIndex(where: { $0.ref == ref }) { cachedInventory?.vms[index] = vm }
        return vm
    }

    func currentVM(named name: String, ref: String?) async throws -> VMRecord {
        if let ref, let vm = try? await read(ManagedObjectReference(type: "VirtualMachine", value: ref)), vm.name == name { return vm }
        guard let vm = try await inventory(refresh: true).vm(named: name) else {
            throw VSphereProviderError.ownership("VM '\(name)' no longer exists on vCenter; run converge reconcile again to create it")
        }
        return vm
    }

    private func customFieldsManager(_ client: VimClient) async throws -> ManagedObjectReference {
        guard let manager = await client.serviceContent.customFieldsManager else {
            throw VSphereProviderError.unsupported("this vCenter has no custom fields manager", hint: "Converge records VM ownership in a custom field and needs vCenter, not a standalone ESXi host")
        }
        return manager
    }

    /// The key of the ownership custom field; created on first need when `create` is set.
    private func ownershipFieldKey(create: Bool) async throws -> Int? {
        let client = try await client()
        let manager = try await customFieldsManager(client)
        func lookup() async throws -> Int? {
            let definitions = try await client.retrieve([manager], properties: ["field"]).first?["field"]?.children ?? []
            return definitions.first { $0.child("name")?.text == Self.ownershipField }?.child("key")?.int
        }
        if let key = try await lookup() { return key }
        guard create else { return nil }
        do {
            let added = try await client.invoke("AddCustomFieldDef", on: manager) { writer in
                writer.leaf("name", Self.ownershipField)
                writer.leaf("moType", "VirtualMachine")
            }
            if let key = added.child("returnval")?.child("key")?.int { return key }
        } catch let fault as VimFault where fault.type == "DuplicateName" {
            // Another process defined it a moment ago.
        }
        return try await lookup()
    }
}

extension String {
    func ifEmpty(_ replacement: String) -> String { isEmpty ? replacement : self }
}
