import ConvergeCore

/// A version as its replicas are made from it: read from a `Rollout` manifest, or back from
/// the fields label its replicas carry (to bring back a version the manifest no longer names).
struct VersionFields: Sendable, Equatable {
    var image: String
    var command: [String]?
    var env: [String: String]
    var replicas: Int
    var port: Int
    var networks: [String]

    init(_ spec: RolloutSpec) {
        image = spec.image
        command = spec.command
        env = spec.env
        replicas = spec.replicas
        port = spec.port
        networks = spec.networks
    }

    init?(_ fields: FieldMap) {
        guard case .string(let image)? = fields["image"], case .int(let replicas)? = fields["replicas"],
            case .int(let port)? = fields["port"]
        else { return nil }
        self.image = image
        self.replicas = replicas
        self.port = port
        command = Self.strings(fields["command"])
        networks = Self.strings(fields["networks"]) ?? []
        env = [:]
        if case .map(let map)? = fields["env"] {
            for (key, value) in map { if case .string(let text) = value { env[key] = text } }
        }
    }

    private static func strings(_ value: FieldValue?) -> [String]? {
        guard case .list(let items)? = value else { return nil }
        return items.compactMap { if case .string(let text) = $0 { text } else { nil } }
    }
}
