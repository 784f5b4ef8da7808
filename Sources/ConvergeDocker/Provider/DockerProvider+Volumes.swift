import ConvergeCore
import Foundation

/// Volumes: made with their manifest's driver and options, and deleted only when the reclaim
/// policy last applied says so. No live system remembers a policy changed after creation, so
/// the store does (`Volume/<name>/reclaimPolicy`); the label set at creation is the fallback.
extension DockerProvider {
    static let reclaimPolicyLabel = "converge.dev/reclaim-policy"

    static func reclaimRecord(_ name: String) -> String { "\(VolumeSpec.kind)/\(name)/reclaimPolicy" }

    /// Why a retained volume outlives its manifest, as the plan shows it.
    static func keptReason(_ name: String) -> String {
        "its reclaimPolicy was retain when it was last applied, so it may hold data; remove it with "
            + "`docker volume rm \(name)` once the data is safe, or apply it once with reclaimPolicy: delete before removing its manifest"
    }

    func observeVolumes(desired: [Resource], instance: String) async throws -> [ObservedResource] {
        let owned = try await engine.listVolumes(labelFilters: ["\(OwnershipLabel.managedBy)=\(instance)"])
        let policies = Dictionary(
            try await context.records()?.records(prefix: "\(VolumeSpec.kind)/").map { ($0.key, $0.value) } ?? [],
            uniquingKeysWith: { _, last in last })
        var observed = owned.map { volume -> ObservedResource in
            let policy = policies[Self.reclaimRecord(volume.name)] ?? volume.labels?[Self.reclaimPolicyLabel] ?? "retain"
            var fields = FieldMap()
            fields["driver"] = .string(volume.driver)
            fields["driverOptions"] = .stringMap(volume.options ?? [:])
            fields["labels"] = .stringMap(userLabels(volume.labels).filter { $0.key != Self.reclaimPolicyLabel })
            fields["reclaimPolicy"] = .string(policy)
            return ObservedResource(
                id: volume.labels?[OwnershipLabel.resource].flatMap(ResourceID.init)
                    ?? ResourceID(kind: VolumeSpec.kind, name: volume.name),
                fields: fields, ownership: .managed, externalID: volume.name,
                facts: policy == "retain" ? [ObservedResource.keptWhenRemovedFact: Self.keptReason(volume.name)] : [:])
        }
        // A volume that holds a manifest's name and is not this instance's stops the plan.
        let ownedNames = Set(owned.map(\.name))
        for resource in desired where !ownedNames.contains(resource.metadata.name) {
            guard let other = try? await engine.inspectVolume(resource.metadata.name) else { continue }
            observed.append(
                ObservedResource(
                    id: resource.id, fields: FieldMap(), ownership: ownership(of: other.labels, instance: instance), externalID: other.name)
            )
        }
        return observed
    }

    func createVolume(_ resource: Resource, spec: VolumeSpec, instance: String) async throws {
        var labels = resource.metadata.labels
        labels[OwnershipLabel.managedBy] = instance
        labels[OwnershipLabel.resource] = resource.id.description
        labels[Self.reclaimPolicyLabel] = spec.reclaimPolicy
        // The engine answers a create of an existing volume with it: a resumed create is a no-op.
        try await engine.createVolume(
            VolumeCreate(
                name: resource.metadata.name, driver: spec.driver, driverOpts: spec.driverOptions.isEmpty ? nil : spec.driverOptions,
                labels: labels))
        try await recordReclaimPolicy(resource.metadata.name, spec.reclaimPolicy)
    }

    /// Deletes a volume whose last applied policy is delete; refuses one that is retained (a
    /// replacement: its driver or options changed), before anything is lost.
    func deleteVolume(_ step: PlanStep, observed: ObservedResource) async throws {
        if observed.fields["reclaimPolicy"] != .string("delete") {
            throw DockerProviderError(
                .volumeRetained,
                message:
                    "\(step.resource) would be deleted to be made again (its driver or options changed), but its reclaimPolicy is retain: "
                    + "its data would be lost. Copy the data out, apply it once with reclaimPolicy: delete, then change it")
        }
        try await ignoringNotFound { try await engine.removeVolume(observed.externalID) }
        if let records = context.records() { try await records.remove(Self.reclaimRecord(observed.externalID)) }
    }

    func recordReclaimPolicy(_ name: String, _ policy: String) async throws {
        try await context.records()?.put(Self.reclaimRecord(name), value: policy)
    }
}
