import ConvergeCore
import Foundation

/// What undoing a VM step needs, journaled before the step runs.
struct VMUndoRecord: Sendable, Codable {
    var vm: ManagedObjectReference
    var name: String
    /// The guard snapshot; nil when the VM cannot take snapshots or the manifest turned them off.
    var snapshot: ManagedObjectReference?
    var snapshotName: String?
    /// The VM as observed before the step.
    var before: VMState
    /// Its disk sizes then (`before` leaves disks alone: a revert is what shrinks them back).
    var diskGB: [Int]
}

/// The names automatic snapshots carry; retention only ever deletes snapshots named so.
public enum SnapshotNaming {
    public static let automaticPrefix = "Before executing "

    /// `Before executing <what> - <local time>`.
    public static func name(for what: String, at date: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return "\(automaticPrefix)\(what) - \(formatter.string(from: date))"
    }
}

extension VSphereProvider {
    /// Before an update: records the VM as it is and, when the plan guards the step, takes a
    /// snapshot (memory off, quiesced when the guest allows) that a rollback reverts to.
    public func snapshot(_ step: PlanStep, observed: ObservedResource?, in set: ManifestSet, instance: String) async throws -> String? {
        guard step.action == .update else { return nil }
        let vm = try await ownedVM(named: step.resource.name, ref: observed?.externalID, instance: instance)
        var record = VMUndoRecord(vm: vm.ref, name: vm.name, snapshot: nil, snapshotName: nil,
                                  before: VMState(vm, in: try await inventory()), diskGB: vm.disks.map(VMRecord.diskSizeGB))
        if let guardian = step.guard, guardian.kind == .snapshot, guardian.warning == nil, vm.snapshotSupported {
            let name = SnapshotNaming.name(for: "update of \(step.resource)")
            record.snapshot = try await createSnapshot(
                of: vm, name: name, description: "Taken by Converge before changing \(step.resource); reverted if the run fails")
            record.snapshotName = name
        }
        return String(decoding: try JSONEncoder().encode(record), as: UTF8.self)
    }

    /// A snapshot of the VM without its memory, quiesced when the guest allows (a guest without
    /// working tools cannot quiesce; a crash-consistent snapshot still guards).
    func createSnapshot(of vm: VMRecord, name: String, description: String) async throws -> ManagedObjectReference? {
        func take(quiesce: Bool) async throws -> TaskResult {
            try await client().runTask("CreateSnapshot_Task", on: vm.ref, objectName: vm.name) { writer in
                writer.leaf("name", name)
                writer.leaf("description", description)
                writer.leaf("memory", false)
                writer.leaf("quiesce", quiesce)
            }
        }
        do {
            return try await take(quiesce: true).result?.reference
        } catch let fault as VimFault where fault.type.contains("Quiesce") || fault.type == "ToolsUnavailable" {
            return try await take(quiesce: false).result?.reference
        }
    }

    /// Undoes a step. A create's VM is powered off and destroyed. An update that changed
    /// something is reverted to its snapshot, then the VM is compared with the state recorded
    /// before the step and whatever the revert did not restore is set again; one that changed
    /// nothing (refused, or failed before acting) is left alone, since a revert powers a VM
    /// off. A destroyed VM cannot come back.
    public func compensate(_ step: PlanStep, snapshot: String?, instance: String) async throws {
        switch step.action {
        case .create:
            guard let vm = try await inventory(refresh: true).vm(named: step.resource.name) else { return }
            let owner = try await ownership(of: vm, fieldKey: try await ownershipFieldKey(create: false), instance: instance)
            if owner.owned { try await destroy(vm) }
        case .update:
            guard let snapshot else { return }
            guard let record = try? JSONDecoder().decode(VMUndoRecord.self, from: Data(snapshot.utf8)) else {
                throw VSphereProviderError.unsupported("the journaled state of \(step.resource) is unreadable, so it cannot be restored", hint: "compare the VM with the manifest of the previous commit and restore it by hand")
            }
            var vm = try await read(record.vm)
            let inventory = try await inventory()
            guard VMState(vm, in: inventory) != record.before || vm.disks.map(VMRecord.diskSizeGB) != record.diskGB else { return }
            if let guardSnapshot = record.snapshot {
                try await client().runTask("RevertToSnapshot_Task", on: guardSnapshot, objectName: record.snapshotName) { writer in
                    writer.leaf("suppressPowerOn", true)
                }
                vm = try await read(record.vm)
            }
            // Restoring the recorded state may lower CPUs or memory, which needs the VM off:
            // the rollback puts back what was there, power state included.
            try await apply(record.before, to: &vm, allowPowerCycle: true)
        case .delete:
            if try await inventory(refresh: true).vm(named: step.resource.name) != nil { return }
            throw VSphereProviderError.unsupported("VM '\(step.resource.name)' was destroyed by this run and cannot be brought back", hint: "restore it from backup if it is needed; Converge will create a new one from its template if the manifest returns")
        }
    }
}

extension VSphereProvider: GuestSnapshotting {
    /// The record key prefix of the VMs this vCenter snapshotted for others: retention covers
    /// exactly those, besides the VMs the instance owns.
    nonisolated var snapshottedRecordPrefix: String { "\(target)/snapshotted/" }

    /// Snapshots VM `name` before a playbook (`Before executing <what> - <time>`), whoever owns
    /// it, and records that this instance did so.
    public func snapshotGuest(named name: String, before what: String, instance: String) async throws -> GuestSnapshot {
        guard let vm = try await inventory(refresh: true).vm(named: name) else {
            throw VSphereProviderError.notFound("VM '\(name)'", available: try await inventory().vms.map(\.name).sorted(), field: "the inventory host's vm.name")
        }
        guard vm.snapshotSupported else {
            throw VSphereProviderError.unsupported("VM '\(name)' cannot be snapshotted", hint: "set snapshot: false on the PlaybookRun to run without one")
        }
        let snapshotName = SnapshotNaming.name(for: what)
        // Recorded first: a snapshot whose record a crash lost would never be collected.
        try await context.records()?.put(snapshottedRecordPrefix + name, value: #"{"vm":"\#(vm.ref.value)"}"#)
        guard let ref = try await createSnapshot(of: vm, name: snapshotName, description: "Taken by Converge before running \(what); kept for the retention of \(target)") else {
            throw VSphereProviderError.unsupported("vCenter did not return the snapshot of VM '\(name)'", hint: "look at the VM's tasks in vCenter")
        }
        return GuestSnapshot(object: name, objectID: vm.ref.value, name: snapshotName, snapshotID: ref.value)
    }

    /// Reverts the VM to `snapshot` and powers it on again (a snapshot without memory comes
    /// back powered off).
    public func revertGuest(to snapshot: GuestSnapshot) async throws {
        let ref = ManagedObjectReference(type: "VirtualMachineSnapshot", value: snapshot.snapshotID)
        try await client().runTask("RevertToSnapshot_Task", on: ref, objectName: snapshot.name) { writer in
            writer.leaf("suppressPowerOn", false)
        }
        var vm = try await read(ManagedObjectReference(type: "VirtualMachine", value: snapshot.objectID))
        try await setPower(&vm, to: "poweredOn")
    }
}
