import ConvergeCore

/// Which VMs are this instance's: the `converge.dev/managed-by` custom field, or for a clone
/// cut off before that field was written, the marker its clone spec carried in extraConfig
/// from the VM's first moment.
extension VSphereProvider {
    /// The custom field that records which Converge instance owns a VM.
    public static let ownershipField = "converge.dev/managed-by"
    /// The extraConfig key `CloneVM_Task` writes with the clone itself.
    static let cloneMarkerKey = "converge.managed-by"

    func customFieldsManager(_ client: VimClient) async throws -> ManagedObjectReference {
        guard let manager = await client.serviceContent.customFieldsManager else {
            throw VSphereProviderError.unsupported("this vCenter has no custom fields manager", hint: "Converge records VM ownership in a custom field and needs vCenter, not a standalone ESXi host")
        }
        return manager
    }

    /// The key of the ownership custom field (for VMs); nil when it was never defined.
    func ownershipFieldKey(create: Bool) async throws -> Int? {
        let client = try await client()
        let manager = try await customFieldsManager(client)
        func lookup() async throws -> Int? {
            let definitions = try await client.retrieve([manager], properties: ["field"]).first?["field"]?.children ?? []
            return definitions.first {
                $0.child("name")?.text == Self.ownershipField && ($0.child("managedObjectType")?.text ?? "VirtualMachine") == "VirtualMachine"
            }?.child("key")?.int
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
        guard let key = try await lookup() else {
            throw VSphereProviderError.unsupported("vCenter did not keep the custom field \(Self.ownershipField)", hint: "check that the vCenter user may define custom fields (Global.ManageCustomFields)")
        }
        return key
    }

    /// Writes the ownership field on a VM.
    func markOwned(_ vm: ManagedObjectReference, key: Int, instance: String) async throws {
        let client = try await client()
        try await client.invoke("SetField", on: try await customFieldsManager(client)) { writer in
            writer.reference("entity", vm)
            writer.leaf("key", key)
            writer.leaf("value", instance)
        }
    }

    /// The instance named by a clone's extraConfig marker, if any.
    func cloneMarker(of vm: ManagedObjectReference) async throws -> String? {
        let options = try await client().retrieve([vm], properties: ["config.extraConfig"]).first?["config.extraConfig"]?.children ?? []
        return options.first { $0.child("key")?.text == Self.cloneMarkerKey }?.child("value")?.text
    }

    /// Whether `vm` is this instance's by its field, or by the clone marker alone.
    func ownership(of vm: VMRecord, fieldKey: Int?, instance: String) async throws -> (owned: Bool, markedOnly: Bool) {
        if let fieldKey, vm.customValues[fieldKey] == instance { return (true, false) }
        if fieldKey.flatMap({ vm.customValues[$0] }).map({ !$0.isEmpty }) == true { return (false, false) }
        let marked = try await cloneMarker(of: vm.ref) == instance
        return (marked, marked)
    }

    /// The VM a step acts on: by the reference observation found (names need not be unique
    /// across folders), else by name; either way only if this instance owns it.
    func ownedVM(named name: String, ref: String?, instance: String) async throws -> VMRecord {
        guard let vm = try await ownedVMIfAny(named: name, ref: ref, instance: instance) else {
            throw VSphereProviderError.ownership("VM '\(name)' no longer exists on vCenter; reconcile again to create it")
        }
        return vm
    }

    func ownedVMIfAny(named name: String, ref: String?, instance: String) async throws -> VMRecord? {
        var found: VMRecord?
        if let ref {
            do {
                found = try await read(ManagedObjectReference(type: "VirtualMachine", value: ref))
            } catch let fault as VimFault where fault.type == "ManagedObjectNotFound" {
                found = nil
            } catch let error as VSphereProviderError where error.code == .vanished {
                found = nil
            }
        }
        if found == nil { found = try await inventory(refresh: true).vm(named: name) }
        guard let vm = found else { return nil }
        guard try await ownership(of: vm, fieldKey: try await ownershipFieldKey(create: false), instance: instance).owned else {
            throw VSphereProviderError.ownership("VM '\(vm.name)' (\(vm.ref.value)) is not owned by Converge instance '\(instance)'; it was left alone")
        }
        return vm
    }

    func read(_ ref: ManagedObjectReference) async throws -> VMRecord {
        guard let content = try await client().retrieve([ref], properties: VSphereInventory.vmProperties).first else {
            throw VSphereProviderError.vanished(ref.value)
        }
        let vm = VMRecord(content)
        if let index = cachedInventory?.vms.firstIndex(where: { $0.ref == ref }) { cachedInventory?.vms[index] = vm }
        return vm
    }
}
