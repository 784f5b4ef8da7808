/// `DockerHost`: a Docker Engine that `Network` and `Container` manifests live on.
///
/// ```yaml
/// kind: DockerHost
/// metadata: {name: local}
/// spec:
///   endpoint: unix:///var/run/docker.sock   # the default
/// ```
public struct DockerHostSpec: ResourceSpec {
    public static let kind = "DockerHost"
    public static let isLiveObject = false
    public static let defaultEndpoint = "unix:///var/run/docker.sock"

    /// Path of the engine's unix socket.
    public var socketPath: String

    public init?(spec: MappingReader, metadata: Metadata) {
        let endpoint = spec.optional("endpoint")
        let text = endpoint?.string ?? Self.defaultEndpoint
        guard text.hasPrefix("unix://"), text.count > "unix://".count else {
            endpoint?.report("unsupported endpoint '\(text)'", hint: "use unix:///path/to/docker.sock; TCP endpoints are not supported yet")
            // Kept (the set is rejected anyway) so resources on this host are not also
            // reported as having none.
            socketPath = ""
            return
        }
        socketPath = String(text.dropFirst("unix://".count))
    }

    public func references(in set: ManifestSet) -> [Reference] { [] }
    public func target(in set: ManifestSet) -> ResourceID? { nil }
}

/// The `host:` field shared by kinds that live on a DockerHost: optional when the set has
/// exactly one DockerHost.
struct DockerHostReference: Sendable, Hashable {
    var name: String?
    var location: SourceLocation

    init(reading spec: MappingReader) {
        let node = spec.optional("host")
        name = node?.string
        location = node?.location ?? spec.location
    }

    func resolve(in set: ManifestSet) -> ResourceID? {
        if let name { return ResourceID(kind: DockerHostSpec.kind, name: name) }
        return set.defaultTarget(kind: DockerHostSpec.kind)
    }

    func reference(in set: ManifestSet) -> Reference? {
        resolve(in: set).map { Reference(target: $0, field: "spec.host", location: location) }
    }

    /// Reports a missing `host:` that cannot be defaulted.
    func validate(in set: ManifestSet, collector: DiagnosticCollector) {
        guard name == nil, resolve(in: set) == nil else { return }
        let hosts = set.resources(ofKind: DockerHostSpec.kind).map(\.id.name)
        collector.report(
            "spec.host: required field is missing", at: location,
            hint: hosts.isEmpty ? "add a DockerHost manifest (spec.endpoint: unix:///var/run/docker.sock)" : "several DockerHosts are defined (\(hosts.joined(separator: ", "))); name one")
    }
}
