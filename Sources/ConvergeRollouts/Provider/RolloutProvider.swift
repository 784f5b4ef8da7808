import ConvergeCore
import ConvergeDocker
import Foundation

/// The provider of the `Rollout`s on one `DockerHost`: their versions' replicas and their
/// entry points (HAProxy containers switched through the runtime API).
///
/// What serves is read from the live system: the entry point's map names the active slot,
/// and the replicas in that slot carry their version's fields in a label. A resumed phase
/// therefore acts on what is there, and a switch sets the map to the slot of the version the
/// journal says, whatever it was.
public actor RolloutProvider: Provider {
    public nonisolated let managedKinds: Set<String> = [RolloutSpec.kind]
    nonisolated let host: ResourceID
    let engine: DockerEngine
    let context: ProviderContext
    /// Where the entry points' runtime-API sockets are, one directory per instance and rollout.
    nonisolated let socketRoot: String

    public init(host: ResourceID, engine: DockerEngine, context: ProviderContext, socketRoot: String = RolloutProvider.defaultSocketRoot) {
        self.host = host
        self.engine = engine
        self.context = context
        self.socketRoot = socketRoot
    }

    public static let defaultSocketRoot = "/run/converge/entrypoints"

    // MARK: Labels and names

    enum Label {
        static let role = "converge.dev/rollout-role"
        static let version = "converge.dev/rollout-version"
        static let slot = "converge.dev/rollout-slot"
        static let fields = "converge.dev/rollout-fields"
    }

    enum Role: String {
        case entry, replica
    }

    static func entryName(_ rollout: String) -> String { "\(rollout)-entry" }
    static func replicaName(_ rollout: String, version: String, index: Int) -> String { "\(rollout)-\(version)-\(index + 1)" }

    nonisolated func runtime(_ rollout: String, instance: String) -> RuntimeAPI {
        RuntimeAPI(socketPath: "\(socketDirectory(rollout, instance: instance))/\(EntryPointConfig.socketName)")
    }

    nonisolated func socketDirectory(_ rollout: String, instance: String) -> String { "\(socketRoot)/\(instance)/\(rollout)" }

    /// A rollout's containers as they are now.
    struct LiveRollout {
        var entry: ContainerSummary?
        var replicas: [ContainerSummary]

        func replicas(of version: String) -> [ContainerSummary] {
            replicas.filter { $0.labels?[Label.version] == version }.sorted { ($0.name ?? "") < ($1.name ?? "") }
        }

        func replicas(in slot: EntryPointConfig.Slot) -> [ContainerSummary] {
            replicas.filter { $0.labels?[Label.slot] == slot.rawValue }.sorted { ($0.name ?? "") < ($1.name ?? "") }
        }

        /// The version whose replicas fill `slot` (the most of them, after an interrupted deploy).
        func version(in slot: EntryPointConfig.Slot) -> String? {
            let counts = Dictionary(grouping: replicas(in: slot).compactMap { $0.labels?[Label.version] }, by: { $0 }).mapValues(\.count)
            return counts.max { ($0.value, $1.key) < ($1.value, $0.key) }?.key
        }
    }

    func live(instance: String) async throws -> [String: LiveRollout] {
        let containers = try await engine.listContainers(labelFilters: ["\(OwnershipLabel.managedBy)=\(instance)", Label.role])
        var rollouts: [String: LiveRollout] = [:]
        for container in containers {
            guard let resource = container.labels?[OwnershipLabel.resource], let id = ResourceID(resource),
                id.kind == RolloutSpec.kind
            else { continue }
            var rollout = rollouts[id.name] ?? LiveRollout(entry: nil, replicas: [])
            if container.labels?[Label.role] == Role.entry.rawValue {
                rollout.entry = container
            } else {
                rollout.replicas.append(container)
            }
            rollouts[id.name] = rollout
        }
        return rollouts
    }

    func live(_ rollout: String, instance: String) async throws -> LiveRollout {
        try await live(instance: instance)[rollout] ?? LiveRollout(entry: nil, replicas: [])
    }

    // MARK: Observe

    public func observe(desired: [Resource], in set: ManifestSet, instance: String) async throws -> [ObservedResource] {
        let live = try await live(instance: instance)
        // A container that holds a new rollout's entry point name and is not this instance's:
        // the plan stops on it rather than fail half-way.
        var clashes: [ObservedResource] = []
        for resource in desired where live[resource.id.name] == nil {
            let name = Self.entryName(resource.id.name)
            guard let other = try await engine.listContainers(nameFilters: [name]).first(where: { $0.name == name }) else { continue }
            let owner = other.labels?[OwnershipLabel.managedBy]
            clashes.append(
                ObservedResource(
                    id: resource.id, fields: FieldMap(), ownership: owner.map { .otherInstance($0) } ?? .unmanaged, externalID: other.id))
        }
        return clashes
            + live.map { name, rollout in
                var fields = FieldMap()
                var networks: [ResourceID] = []
                if let entry = rollout.entry, entry.state == "running" {
                    let slot = try? runtime(name, instance: instance).activeSlot()
                    if let slot, let version = rollout.version(in: slot),
                        let versionFields = Self.decodeFields(rollout.replicas(of: version).first)
                    {
                        for (key, value) in versionFields { fields[key] = value }
                        fields["replicas"] = .int(rollout.replicas(of: version).filter { $0.state == "running" }.count)
                        if case .list(let items)? = versionFields["networks"] {
                            networks = items.compactMap {
                                if case .string(let name) = $0 { ResourceID(kind: "Network", name: name) } else { nil }
                            }
                        }
                    }
                    if let entryFields = Self.decodeFields(entry) { fields["entryPoint"] = .map(entryFields) }
                }
                return ObservedResource(
                    id: ResourceID(kind: RolloutSpec.kind, name: name), fields: fields, ownership: .managed,
                    externalID: rollout.entry?.id ?? name, dependencies: networks)
            }
    }

    static func decodeFields(_ container: ContainerSummary?) -> FieldMap? {
        guard let text = container?.labels?[Label.fields], let value = try? JSONDecoder().decode(FieldValue.self, from: Data(text.utf8)),
            case .map(let fields) = value
        else { return nil }
        return fields
    }

    static func encodeFields(_ fields: FieldMap) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(FieldValue.map(fields))) ?? Data(), as: UTF8.self)
    }

    // MARK: Execute

    public func execute(
        _ step: PlanStep, change: ResourceChange, desired: Resource?, observed: ObservedResource?, in set: ManifestSet, instance: String
    ) async throws {
        let name = step.resource.name
        if step.action == .delete {
            try await remove(try await live(name, instance: instance), keepEntry: false)
            try? FileManager.default.removeItem(atPath: socketDirectory(name, instance: instance))
            return
        }
        guard let desired, let spec = desired.spec(as: RolloutSpec.self) else { throw ReconcileError.notInPlan(step.resource) }
        let rollout = Rollout(name: name, spec: spec, instance: instance, set: set)
        guard let phaseName = step.phase else {
            // The entry point's settings changed, not the version.
            try await ensureEntry(rollout, recreate: true)
            return
        }
        guard let phase = RolloutSpec.Phase(rawValue: phaseName) else {
            throw RolloutError(
                "unknown rollout phase '\(phaseName)' in the plan", hint: "the plan was made by another Converge version; plan again")
        }
        switch phase {
        case .deploy: try await deploy(rollout)
        case .ready: try await waitReady(rollout)
        case .prePromotion:
            let targets = try await replicaEndpoints(rollout, version: spec.version)
            try await analyse(spec.prePromotion, named: "pre-promotion analysis", on: targets, rollout: rollout)
        case .switch: try await switchTraffic(rollout)
        case .postPromotion:
            try await analyse(
                spec.postPromotion, named: "post-promotion analysis", on: [try await entryEndpoint(rollout)], rollout: rollout)
        case .finalize: try await finalize(rollout)
        }
    }

    /// What a phase needs about the rollout it acts on.
    struct Rollout {
        var name: String
        var spec: RolloutSpec
        var instance: String
        var set: ManifestSet
    }

    // MARK: Snapshot and compensate

    /// What undoing a phase needs, journaled before it runs.
    struct Undo: Codable {
        var rollout: String
        var phase: String
        /// The version the phase brings in (deploy).
        var version: String?
        /// Whether the entry point existed before (deploy): one made for a first version that
        /// never served is removed with it.
        var entryExisted: Bool?
        /// The slot that served before (switch).
        var previousSlot: EntryPointConfig.Slot?
        /// The version finalize removes, with its slot and fields, to bring it back.
        var retired: Retired?
    }

    struct Retired: Codable {
        var version: String
        var slot: EntryPointConfig.Slot
        /// The fields label of its replicas: how to make them again.
        var fields: String
    }

    public func snapshot(_ step: PlanStep, observed: ObservedResource?, in set: ManifestSet, instance: String) async throws -> String? {
        let name = step.resource.name
        guard let phase = step.phase.flatMap(RolloutSpec.Phase.init), let spec = set[step.resource]?.spec(as: RolloutSpec.self) else {
            return nil
        }
        var undo = Undo(rollout: name, phase: phase.rawValue, version: nil, entryExisted: nil, previousSlot: nil, retired: nil)
        let live = try await live(name, instance: instance)
        switch phase {
        case .deploy:
            undo.version = spec.version
            undo.entryExisted = live.entry != nil
        case .switch:
            undo.previousSlot = live.entry == nil ? nil : try? runtime(name, instance: instance).activeSlot()
        case .finalize:
            undo.retired = retiredVersion(live, keeping: spec.version)
        case .ready, .prePromotion, .postPromotion:
            return nil
        }
        return String(decoding: try JSONEncoder().encode(undo), as: UTF8.self)
    }

    public func compensate(_ step: PlanStep, snapshot: String?, instance: String) async throws {
        guard let snapshot, let undo = try? JSONDecoder().decode(Undo.self, from: Data(snapshot.utf8)) else { return }
        let name = undo.rollout
        switch RolloutSpec.Phase(rawValue: undo.phase) {
        case .deploy:
            try await undeploy(name, version: undo.version, entryExisted: undo.entryExisted ?? true, instance: instance)
        case .switch:
            try await switchBack(name, to: undo.previousSlot, instance: instance)
        case .finalize:
            if let retired = undo.retired { try await restore(retired, rollout: name, instance: instance) }
        default:
            return
        }
    }
}
