import ConvergeCore
import Foundation

/// The provider for one `Inventory`: runs `PlaybookRun`s on its hosts with `ansible-playbook`.
///
/// No live system says which playbook ran with which inputs, so the inputs of each run that
/// succeeded are kept in the store's provider records (`PlaybookRun/<name>`); `observe` reads
/// them back, and a run whose inputs differ is planned again.
public actor AnsibleProvider: Provider {
    public nonisolated let managedKinds: Set<String> = [PlaybookRunSpec.kind]
    public nonisolated let target: ResourceID
    let spec: InventorySpec
    let context: ProviderContext
    /// Snapshots taken by `snapshot(_:)` for a step, for that step's report.
    private var snapshotsTaken: [ResourceID: [GuestSnapshot]] = [:]

    public init(target: ResourceID, spec: InventorySpec, context: ProviderContext) {
        self.target = target
        self.spec = spec
        self.context = context
    }

    /// What is recorded after a run that succeeded: the inputs it ran with.
    struct AppliedRun: Codable {
        var inventory: String
        var fields: [String: FieldValue]
        var ranAt: Date
    }

    static func recordKey(_ id: ResourceID) -> String { id.description }

    private func records() throws -> any ProviderRecords {
        guard let records = context.records() else {
            throw AnsibleError(
                "PlaybookRuns need Converge's store, which remembers the inputs each one last ran with; none is open",
                hint: "run through converge reconcile or the controller, which open the store (--state or --store)")
        }
        return records
    }

    // MARK: Observe

    public func observe(desired: [Resource], in set: ManifestSet, instance: String) async throws -> [ObservedResource] {
        try await records().records(prefix: "\(PlaybookRunSpec.kind)/").compactMap { record in
            guard let applied = try? JSONDecoder().decode(AppliedRun.self, from: Data(record.value.utf8)), applied.inventory == target.name
            else {
                return nil
            }
            let id = ResourceID(kind: PlaybookRunSpec.kind, name: String(record.key.dropFirst(PlaybookRunSpec.kind.count + 1)))
            return ObservedResource(id: id, fields: FieldMap(applied.fields), ownership: .managed, externalID: record.key)
        }
    }

    // MARK: Execute

    public func execute(
        _ step: PlanStep, change: ResourceChange, desired: Resource?, observed: ObservedResource?, in set: ManifestSet, instance: String
    ) async throws {
        if step.action == .delete {
            try await records().remove(Self.recordKey(step.resource))
            return
        }
        guard let desired, let run = Self.playbookRun(of: desired) else { throw ReconcileError.notInPlan(step.resource) }
        let limit = change.fields.first { $0.path == ActionField.limit }?.after?.stringValue
        let checkMode = change.fields.first { $0.path == "checkMode" }?.after?.boolValue ?? run.effectiveCheckMode(in: set)
        // The digest the plan showed: the change's, or (unchanged) the one the set was read with.
        let pinned =
            change.fields.first { $0.path == "playbookDigest" }?.after?.stringValue
            ?? run.desiredFields(metadata: desired.metadata, in: set)["playbookDigest"]?.stringValue
        let runner = PlaybookRunner(inventory: spec, set: set)
        let job = try runner.job(for: run, named: desired.id.description, limit: limit, checkMode: checkMode)
        var result = try await runner.run(job, pinnedDigest: pinned)
        result.snapshots = snapshotsTaken.removeValue(forKey: step.resource) ?? []
        StepReporter.current?.report(result.json)
        guard result.summary == .allOK else {
            throw AnsibleError("playbook \(run.playbook) on \(limit ?? run.target): \(result.line)", hint: nil)
        }
        // A schedule's run, an action on part of the hosts, or one in check mode when the
        // manifest is not, is not the run the manifest asks for: what was recorded stays.
        guard desired.id.kind == PlaybookRunSpec.kind, limit == nil, checkMode == run.effectiveCheckMode(in: set) else { return }
        let applied = AppliedRun(
            inventory: target.name,
            fields: Dictionary(
                run.desiredFields(metadata: desired.metadata, in: set).entries.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 }),
            ranAt: Date())
        try await records().put(Self.recordKey(step.resource), value: String(decoding: try JSONEncoder().encode(applied), as: UTF8.self))
    }

    // MARK: Guard and rollback

    /// What a step on `resource` runs: a `PlaybookRun`, or what a `ScheduledPlaybook` runs.
    static func playbookRun(of resource: Resource) -> PlaybookRunSpec? {
        resource.spec(as: PlaybookRunSpec.self) ?? resource.spec(as: ScheduledPlaybookSpec.self)?.run
    }

    /// What undoing the step needs: the record as it was, and the snapshots taken now of the
    /// hosts that are vCenter VMs (`snapshot: true`), right before the playbook runs.
    struct UndoRecord: Codable {
        var previous: String?
        var snapshots: [GuestSnapshot]
        /// The vCenter of each snapshotted VM, by VM name.
        var vcenters: [String: ResourceID]
        var revertOnFailure: Bool
    }

    public func snapshot(_ step: PlanStep, observed: ObservedResource?, in set: ManifestSet, instance: String) async throws -> String? {
        let key = Self.recordKey(step.resource)
        let previous =
            step.resource.kind == PlaybookRunSpec.kind ? try await records().records(prefix: key).first { $0.key == key }?.value : nil
        var undo = UndoRecord(previous: previous, snapshots: [], vcenters: [:], revertOnFailure: false)
        if step.action != .delete, let run = set[step.resource].flatMap(Self.playbookRun), run.snapshot {
            undo.revertOnFailure = run.revertOnFailure
            let playbook = run.playbook
            for host in run.hosts(in: set) {
                guard let vm = host.vm else { continue }
                guard let provider = try context.provider(vm.vcenter, set) as? any GuestSnapshotting else {
                    throw AnsibleError(
                        "host \(host.name) names VM '\(vm.name)' on \(vm.vcenter), which cannot take snapshots",
                        hint: "set snapshot: false to run without one")
                }
                undo.snapshots.append(try await provider.snapshotGuest(named: vm.name, before: playbook, instance: instance))
                undo.vcenters[vm.name] = vm.vcenter
            }
            snapshotsTaken[step.resource] = undo.snapshots
        }
        return String(decoding: try JSONEncoder().encode(undo), as: UTF8.self)
    }

    /// Puts the record back as it was and, with `revertOnFailure`, reverts the VMs to the
    /// snapshots taken before the playbook. A playbook's changes are not undone otherwise:
    /// only the playbook knows how.
    public func compensate(_ step: PlanStep, snapshot: String?, instance: String) async throws {
        guard let snapshot, let undo = try? JSONDecoder().decode(UndoRecord.self, from: Data(snapshot.utf8)) else { return }
        if step.resource.kind == PlaybookRunSpec.kind {
            let key = Self.recordKey(step.resource)
            if let previous = undo.previous { try await records().put(key, value: previous) } else { try await records().remove(key) }
        }
        guard undo.revertOnFailure else { return }
        for guestSnapshot in undo.snapshots {
            guard let vcenter = undo.vcenters[guestSnapshot.object],
                let provider = try context.provider(vcenter, nil) as? any GuestSnapshotting
            else {
                throw AnsibleError(
                    "cannot revert VM '\(guestSnapshot.object)' to '\(guestSnapshot.name)': its vCenter is not in this run",
                    hint: "revert it in vCenter")
            }
            try await provider.revertGuest(to: guestSnapshot)
        }
    }
}

/// The fields of an on-demand action's change (`converge playbooks run`).
public enum ActionField {
    /// Runs on this host or group only.
    public static let limit = "limit"
}

extension FieldValue {
    var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    var boolValue: Bool? {
        if case .bool(let flag) = self { return flag }
        return nil
    }
}
