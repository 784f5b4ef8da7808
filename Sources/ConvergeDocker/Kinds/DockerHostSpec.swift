import ConvergeCore

/// `DockerHost`: a Docker Engine that `Network` and `Container` manifests live on.
///
/// ```yaml
/// kind: DockerHost
/// metadata: {name: local}
/// spec:
///   endpoint: unix:///var/run/docker.sock   # the default
///   allowedBindPaths: [/srv/config]         # host folders containers may mount (read-only)
///   filesDirectory: /var/lib/converge/files # where containers' `files` are written (the default)
///   pool: dmz                               # its steps run on the workers of this pool
/// ```
public struct DockerHostSpec: ResourceSpec, WorkerPoolTarget, Equatable {
    public static let kind = "DockerHost"
    public static let isLiveObject = false
    public static let defaultEndpoint = "unix:///var/run/docker.sock"

    /// Path of the engine's unix socket.
    public var socketPath: String
    /// The host folders a container's `bind` mount may name (themselves or below them); none
    /// by default, since a bind mount reaches the host's files.
    public var allowedBindPaths: [String]
    /// The host folder where the content of containers' `files` is written, by hash.
    public var filesDirectory: String
    public var pool: String?

    public init?(spec: MappingReader, metadata: Metadata) {
        pool = spec.workerPool()
        let filesNode = spec.optional("filesDirectory")
        filesDirectory = filesNode?.string ?? "/var/lib/converge/files"
        if !filesDirectory.hasPrefix("/") { filesNode?.report("'\(filesDirectory)' is not an absolute path") }
        let pathsNode = spec.optional("allowedBindPaths")
        allowedBindPaths = pathsNode?.stringList ?? []
        for path in allowedBindPaths where !path.hasPrefix("/") {
            pathsNode?.report("'\(path)' is not an absolute path", hint: "write host folders from the root, e.g. /srv/config")
        }
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

extension TargetReference {
    /// `host:`, naming the DockerHost a resource lives on.
    public static func dockerHost(reading spec: MappingReader) -> TargetReference {
        TargetReference(
            kind: DockerHostSpec.kind, field: "host", example: "spec.endpoint: \(DockerHostSpec.defaultEndpoint)", reading: spec)
    }
}
