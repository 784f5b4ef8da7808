import ConvergeCore
import Foundation

/// The provider for one `VCenter`: observes, creates, changes and removes the
/// `VirtualMachine`s of its datacenter, guarding changes with snapshots.
///
/// One session is opened on first use and kept for the provider's life; the inventory read
/// by `observe` is reused by the steps that follow it. ``shutdown()`` logs out and closes
/// the session's connections.
public actor VSphereProvider: Provider {
    public nonisolated let managedKinds: Set<String> = [VirtualMachineSpec.kind]
    public nonisolated let target: ResourceID
    let spec: VCenterSpec
    /// Where the VMs snapshotted for others (playbooks) are recorded, for retention.
    let context: ProviderContext
    private var connecting: Task<VimClient, any Error>?
    private var isShutDown = false
    var cachedInventory: VSphereInventory?
    /// Finished by `shutdown()`, which ends a running `run()`.
    private let shutdownSignal = AsyncStream<Void>.makeStream()

    public init(target: ResourceID, spec: VCenterSpec, context: ProviderContext = .isolated) {
        self.target = target
        self.spec = spec
        self.context = context
    }

    /// The logged-in client, connecting on first use.
    public func client() async throws -> VimClient {
        if let connecting { return try await connecting.value }
        let spec = self.spec
        let target = self.target
        // A task, not a child: the connect is shared by every call that comes while it is in
        // flight, so it must not end when the first of them is cancelled.
        let task = Task { try await VCenterConnection.connect(spec, target: target) }
        connecting = task
        do {
            return try await task.value
        } catch {
            connecting = nil
            throw error
        }
    }

    /// The provider's long-lived work: keeps the session warm (vCenter drops sessions idle
    /// for 30 minutes by default) until the calling task is cancelled or ``shutdown()`` is
    /// called. A long-lived owner (the controller) runs it in its task group beside the work
    /// the provider serves; a command that ends sooner needs none, since an expired session
    /// is renewed on the next call.
    ///
    /// The session is opened by that work, not by `run()`: until then `run()` looks for it
    /// every `interval`, so a session idles at most two intervals.
    /// Keeps the session warm every 10 minutes (vCenter drops sessions idle for 30 by
    /// default) until cancelled or shut down; the runtime runs it beside the provider's work.
    public func run() async {
        await run(keepAliveEvery: .seconds(600), clock: ContinuousClock())
    }

    public func run(keepAliveEvery interval: Duration, clock: any Clock<Duration>) async {
        let signal = shutdownSignal.stream
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in signal {}
            }
            group.addTask {
                while !Task.isCancelled {
                    if let client = await self.openClient() {
                        await client.keepAlive(every: interval, clock: clock)
                        return
                    }
                    do { try await clock.sleep(for: interval) } catch { return }
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// The client once a session is open; nil while none is (or it failed).
    private func openClient() async -> VimClient? {
        guard let connecting, !isShutDown else { return nil }
        return try? await connecting.value
    }

    /// Logs out (sessions are a limited resource on a vCenter), closes the connections, and
    /// ends a running ``run(keepAliveEvery:clock:)``.
    public func shutdown() async {
        isShutDown = true
        shutdownSignal.continuation.finish()
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
            // A clone whose create was cut off before its ownership field: the plan creates
            // it again, and the create step carries on with it.
            if ownership == .unmanaged, try await cloneMarker(of: vm.ref) == instance { continue }
            let id = ResourceID(kind: VirtualMachineSpec.kind, name: vm.name)
            var object = ObservedResource(id: id, fields: Self.fields(of: vm, desired: wanted[vm.name]?.0, in: inventory), ownership: ownership, externalID: vm.ref.value)
            object.facts[VirtualMachineSpec.snapshotSupportedFact] = vm.snapshotSupported ? "true" : "false"
            object.facts[VirtualMachineSpec.snapshotCountFact] = String(vm.snapshots.count)
            observed.append(object)
        }
        return observed
    }

    /// The names a manifest gives that vCenter lacks. The template matters only for a VM
    /// still to be made.
    func unresolvedNames(_ spec: VirtualMachineSpec, of id: ResourceID, exists: Bool, in inventory: VSphereInventory) -> [String] {
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
        // A VM inside a vApp has no folder of its own: the declared one stands.
        if let folder = vm.folder {
            fields["folder"] = .string(inventory.path(of: folder, under: inventory.vmFolder) ?? folder.value)
        } else if let spec {
            fields["folder"] = .string(spec.folder)
        }
        if let pool = vm.pool { fields["placement"] = .string(inventory.placement(ofPool: pool)) }
        if spec == nil || spec?.disks.isEmpty == false {
            fields["disks"] = .list(vm.disks.map { .int(VMRecord.diskSizeGB($0)) })
        }
        if spec == nil || spec?.datastore != nil, let datastore = vm.homeDatastore {
            fields["datastore"] = .string(datastore)
        }
        if spec == nil || spec?.network != nil, let portGroup = vm.portGroup(in: inventory) {
            fields["portGroup"] = .string(portGroup)
        }
        if let declared = spec?.network?.ipv4 {
            // The guest reports addresses only while running with tools; until then the
            // declared one stands, so a stopped VM is not shown as drifting. Any NIC having
            // it counts (a second NIC, IPv6 and link-local addresses come first at times).
            let address = declared.address.description
            let reported = vm.powerState == "poweredOn" ? vm.guestIPv4 : []
            fields["ipv4"] = .string(reported.isEmpty || reported.contains(address) ? address : reported[0])
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
            if let playbook = spec.provisionPlaybook {
                // Part of the create: a VM whose provisioning failed is destroyed with it.
                guard let provisioner = context.provisioner(of: step.resource, in: set) else {
                    throw VSphereProviderError.unsupported("no Inventory of this process reaches \(step.resource) to provision it", hint: "select it in an Inventory")
                }
                try await provisioner.provision(step.resource, with: playbook, in: set, instance: instance)
                let status = MachineStatus(status: "active", playbook: playbook, since: Date())
                try await context.records()?.put(
                    MachineStatus.recordKey(target: target, machine: name), value: String(decoding: try JSONEncoder().encode(status), as: UTF8.self))
            }
        case .update:
            guard let spec = desired?.spec(as: VirtualMachineSpec.self) else { throw ReconcileError.notInPlan(step.resource) }
            var vm = try await ownedVM(named: name, ref: observed?.externalID, instance: instance)
            try await checkAddress(of: vm, against: spec)
            try await apply(VMState(spec), to: &vm, allowPowerCycle: spec.allowPowerCycle)
        case .delete:
            guard let vm = try await ownedVMIfAny(named: name, ref: observed?.externalID, instance: instance) else { return }
            try await destroy(vm)
        }
    }
}

extension String {
    func ifEmpty(_ replacement: String) -> String { isEmpty ? replacement : self }
}
