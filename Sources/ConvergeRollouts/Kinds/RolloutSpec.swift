import ConvergeCore
import ConvergeDocker
import Crypto
import Foundation

/// `Rollout`: a service whose new versions replace the old ones blue-green, behind a traffic
/// entry point Converge manages. A changed version runs as one durable run in phases: deploy
/// it beside the old one → wait until it is ready → analyse it (pre-promotion) → switch the
/// entry point to it → analyse again (post-promotion) → finalize (remove the old version after
/// `drainDelay`). A failed phase rolls back: traffic returns to the old version first, then the
/// new one is removed.
///
/// ```yaml
/// kind: Rollout
/// metadata: {name: web}
/// spec:
///   host: local                    # the DockerHost (optional when the set has one)
///   image: converge-lab/busybox:1
///   command: [sh, -c, "…"]
///   env: {VERSION: v2}
///   replicas: 2                    # containers of each version, 1 to 16
///   port: 8080                     # the port each replica serves HTTP on
///   networks: [app]                # Network manifests; the entry point reaches replicas on the first
///   entryPoint:
///     port: 80                     # where the entry point listens, on the first network
///     publish: 127.0.0.1:18080     # optional: also on this host address
///   readiness: {path: /healthz, timeout: 60s}   # without a path: a TCP connect
///   prePromotion: {checks: [...], interval: 1s, count: 3, failureLimit: 0}
///   postPromotion: {checks: [...], interval: 1s, count: 5}
///   drainDelay: 10s                # before the old version is removed (default 5s)
///   autoPromote: true              # false: the switch waits for an approval
/// ```
///
/// Only the version (image, command, env, replicas, port, networks) and the entry point are
/// compared with the live state: changing an analysis or a delay changes no live object and
/// applies from the next rollout, as in Argo Rollouts.
public struct RolloutSpec: ResourceSpec, PhasedResource, Equatable {
    public static let kind = "Rollout"
    public static let maximumReplicas = 16
    public static let defaultEntryImage = "converge-lab/haproxy:1"

    var host: TargetReference
    public var image: String
    public var command: [String]?
    public var env: [String: String]
    public var replicas: Int
    public var port: Int
    public var networks: [String]
    var networksLocation: SourceLocation
    public var entryPoint: EntryPoint
    public var readiness: Readiness
    public var prePromotion: Analysis?
    public var postPromotion: Analysis?
    public var drainDelay: Duration
    public var autoPromote: Bool

    public struct EntryPoint: Sendable, Equatable {
        public var port: Int
        /// `address:port` on the Docker host, or nil.
        public var publish: (address: String, port: Int)?
        public var image: String

        public static func == (lhs: EntryPoint, rhs: EntryPoint) -> Bool {
            lhs.port == rhs.port && lhs.image == rhs.image && lhs.publish?.address == rhs.publish?.address
                && lhs.publish?.port == rhs.publish?.port
        }
    }

    public struct Readiness: Sendable, Equatable {
        /// HTTP GET path that must answer 2xx or 3xx; nil: a TCP connect is enough.
        public var path: String?
        public var timeout: Duration
    }

    public init?(spec: MappingReader, metadata: Metadata) {
        host = .dockerHost(reading: spec)
        image = spec.required("image", hint: "the image each replica runs")?.string ?? ""
        command = spec.optional("command")?.stringList
        env = spec.optional("env")?.stringMap ?? [:]
        replicas = Self.readInt(spec.optional("replicas"), in: 1...Self.maximumReplicas) ?? 1
        port = Self.readInt(spec.required("port", hint: "the port each replica serves HTTP on"), in: 1...65535) ?? 0
        let networksNode = spec.required("networks", hint: "the Network manifests the replicas join; the entry point uses the first")
        networks = networksNode?.stringList ?? []
        networksLocation = networksNode?.location ?? spec.location
        if networksNode != nil, networks.isEmpty { networksNode?.report("expected at least one network") }
        entryPoint = EntryPoint(port: 80, publish: nil, image: Self.defaultEntryImage)
        if let entry = spec.required("entryPoint", hint: "where traffic enters: {port: 80}")?.mapping {
            entryPoint.port = Self.readInt(entry.optional("port"), in: 1...65535) ?? 80
            entryPoint.image = entry.optional("image")?.string ?? Self.defaultEntryImage
            if let node = entry.optional("publish"), let text = node.string {
                let parts = text.split(separator: ":")
                if parts.count == 2, IPv4Address(String(parts[0])) != nil, let port = Int(parts[1]), (1...65535).contains(port) {
                    entryPoint.publish = (String(parts[0]), port)
                } else {
                    node.report("expected ADDRESS:PORT, e.g. 127.0.0.1:18080")
                }
            }
            entry.finish()
        }
        readiness = Readiness(path: nil, timeout: .seconds(60))
        if let node = spec.optional("readiness")?.mapping {
            readiness.path = node.optional("path")?.string
            readiness.timeout = Analysis.readDuration(node.optional("timeout")) ?? .seconds(60)
            node.finish()
        }
        prePromotion = spec.optional("prePromotion").flatMap(Analysis.init)
        postPromotion = spec.optional("postPromotion").flatMap(Analysis.init)
        drainDelay = Analysis.readDuration(spec.optional("drainDelay"), allowZero: true) ?? .seconds(5)
        autoPromote = spec.optional("autoPromote")?.bool ?? true
    }

    static func readInt(_ node: ManifestNode?, in range: ClosedRange<Int>) -> Int? {
        guard let node else { return nil }
        guard let value = node.int, range.contains(value) else {
            node.report("expected a number from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return value
    }

    public func references(in set: ManifestSet) -> [Reference] {
        var references = networks.map {
            Reference(target: ResourceID(kind: "Network", name: $0), field: "spec.networks", location: networksLocation)
        }
        if let reference = host.reference(in: set) { references.append(reference) }
        references += (prePromotion?.probes ?? []) + (postPromotion?.probes ?? [])
        return references
    }

    public func target(in set: ManifestSet) -> ResourceID? { host.resolve(in: set) }

    public func validate(_ resource: Resource, in set: ManifestSet, collector: DiagnosticCollector) {
        host.validate(in: set, collector: collector)
    }

    // MARK: Fields and phases

    /// The fields that make a version: a change to any of them is a rollout.
    static let versionFields: Set<String> = ["image", "command", "env", "replicas", "port", "networks"]

    public func desiredFields(metadata: Metadata) -> FieldMap {
        var fields = versionFields
        fields["entryPoint"] = .map(entryFields)
        return fields
    }

    var versionFields: FieldMap {
        var fields = FieldMap()
        fields["image"] = .string(image)
        if let command { fields["command"] = .strings(command) }
        fields["env"] = .stringMap(env)
        fields["replicas"] = .int(replicas)
        fields["port"] = .int(port)
        fields["networks"] = .strings(networks)
        return fields
    }

    var entryFields: FieldMap {
        var fields = FieldMap()
        fields["port"] = .int(entryPoint.port)
        fields["image"] = .string(entryPoint.image)
        if let publish = entryPoint.publish { fields["publish"] = .string("\(publish.address):\(publish.port)") }
        return fields
    }

    /// Identifies a version: the first 12 hex digits of the SHA-256 of its fields. Replicas
    /// are named after it, so a resumed deploy finds the ones it made.
    var version: String {
        let text = versionFields.entries.map { "\($0.key)=\($0.value.rendered)" }.joined(separator: "\n")
        return SHA256.hash(data: Data(text.utf8)).prefix(6).map { String(format: "%02x", $0) }.joined()
    }

    public static func changeMode(forField field: String) -> ChangeMode { .inPlace }

    public func phases(of change: ResourceChange) -> [StepPhase] {
        let changesVersion = change.action == .create || change.fields.contains { Self.versionFields.contains(Self.topField($0.path)) }
        guard changesVersion else { return [] }
        var phases = [StepPhase(Phase.deploy.rawValue), StepPhase(Phase.ready.rawValue)]
        if prePromotion != nil { phases.append(StepPhase(Phase.prePromotion.rawValue)) }
        // A first version has nothing to be compared with: it is promoted at once.
        phases.append(StepPhase(Phase.switch.rawValue, awaitsApproval: !autoPromote && change.action != .create))
        if postPromotion != nil { phases.append(StepPhase(Phase.postPromotion.rawValue)) }
        // A first version has no old one to remove.
        if change.action != .create { phases.append(StepPhase(Phase.finalize.rawValue)) }
        return phases
    }

    static func topField(_ path: String) -> String { String(path.prefix { $0 != "." }) }

    /// The phases of a rollout, as the plan's steps name them.
    enum Phase: String {
        case deploy, ready, prePromotion, `switch`, postPromotion, finalize
    }
}
