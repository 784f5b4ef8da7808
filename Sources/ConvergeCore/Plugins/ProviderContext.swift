import Foundation

/// What a provider may reach beyond its own target. A playbook's snapshot guard asks the
/// `VCenter`'s provider for a snapshot, and a `PlaybookRun` remembers the inputs it last ran
/// with, which no live system can be asked about.
public struct ProviderContext: Sendable {
    /// The provider of another target of `set` (nil when no plug-in serves its kind). Without a
    /// set, the provider already made for that target, if any (a rollback has no set).
    public var provider: @Sendable (_ target: ResourceID, _ set: ManifestSet?) throws -> (any Provider)?
    /// The records the process keeps for its providers; nil while it has opened no store.
    public var records: @Sendable () -> (any ProviderRecords)?
    /// Runs a check manifest of the set (a `Probe` in a rollout's analysis) through the
    /// plug-in that runs its kind; nil when none does.
    public var check: @Sendable (_ check: ResourceID, _ set: ManifestSet) async -> ProbeResult?

    public init(
        provider: @escaping @Sendable (ResourceID, ManifestSet?) throws -> (any Provider)?,
        records: @escaping @Sendable () -> (any ProviderRecords)?,
        check: @escaping @Sendable (ResourceID, ManifestSet) async -> ProbeResult? = { _, _ in nil }
    ) {
        self.provider = provider
        self.records = records
        self.check = check
    }

    /// For providers made outside a runtime (tests of one provider): no other targets, no
    /// records, no checks.
    public static let isolated = ProviderContext(provider: { _, _ in nil }, records: { nil })
}

/// Small JSON documents a provider keeps per Converge instance, under keys of its own
/// (`PlaybookRun/site`): the store's `provider_records`, scoped to the instance that runs.
public protocol ProviderRecords: Sendable {
    func put(_ key: String, value: String) async throws
    /// The records whose key starts with `prefix`, by key.
    func records(prefix: String) async throws -> [(key: String, value: String, updatedAt: Date)]
    func remove(_ key: String) async throws
}

/// A provider whose objects can be snapshotted before someone else's change reaches them: a
/// VM about to run a playbook. The snapshot is kept for the target's retention and collected
/// with the step guards' own.
public protocol GuestSnapshotting: Provider {
    /// Snapshots the object `name` (memory off, quiesced when the guest allows) and returns
    /// the snapshot's name; `what` is written into it (`Before executing <what> - <time>`).
    func snapshotGuest(named name: String, before what: String, instance: String) async throws -> GuestSnapshot
    /// Reverts the object to `snapshot` (a playbook that failed with `revertOnFailure`).
    func revertGuest(to snapshot: GuestSnapshot) async throws
}

/// A snapshot taken by `GuestSnapshotting`: enough to revert to it and to report it.
public struct GuestSnapshot: Sendable, Codable, Equatable {
    /// The object's name (the VM's) and its own id on the live system.
    public var object: String
    public var objectID: String
    public var name: String
    public var snapshotID: String

    public init(object: String, objectID: String, name: String, snapshotID: String) {
        self.object = object
        self.objectID = objectID
        self.name = name
        self.snapshotID = snapshotID
    }
}

/// A kind whose resources are machines a playbook can reach (a `VirtualMachine`): an
/// inventory can take them as hosts by label, and snapshot them through their target.
public protocol GuestMachine: ResourceSpec {
    /// The address the manifest gives the guest (a VM's fixed IPv4), nil when it has none.
    var declaredAddress: String? { get }
}

/// A target that sets up a machine another plug-in has just made (a playbook on a new VM).
public protocol MachineProvisioning: Provider {
    /// Whether `machine` is one of this target's hosts in `set`.
    func reaches(_ machine: ResourceID, in set: ManifestSet) -> Bool
    /// Runs the playbook `playbook` on the machine; throws when it did not succeed there.
    func provision(_ machine: ResourceID, with playbook: String, in set: ManifestSet, instance: String) async throws
}

/// The status of a provisioned machine, kept in the provider records by the provider that
/// made it (`active` once its provisioning playbook succeeded; gone with the machine).
public struct MachineStatus: Sendable, Codable, Equatable {
    public var status: String
    public var playbook: String
    public var since: Date

    public init(status: String, playbook: String, since: Date) {
        self.status = status
        self.playbook = playbook
        self.since = since
    }

    /// The record key of machine `name` on `target` (`VCenter/lab/machines/web-01`).
    public static func recordKey(target: ResourceID, machine name: String) -> String { "\(target)/machines/\(name)" }
}

/// A kind that takes machines of the set as hosts (an `Inventory`): a machine that asks to be
/// provisioned must be among some inventory's hosts, which say how to reach it.
public protocol MachineInventory: ResourceSpec {
    func includes(_ machine: ResourceID, in set: ManifestSet) -> Bool
}

extension ProviderContext {
    /// The target of `set` that can provision `machine`, if any.
    public func provisioner(of machine: ResourceID, in set: ManifestSet) -> (any MachineProvisioning)? {
        for resource in set.resources where resource.spec is any MachineInventory {
            if let provisioner = (try? provider(resource.id, set)) as? any MachineProvisioning, provisioner.reaches(machine, in: set) {
                return provisioner
            }
        }
        return nil
    }
}
