import ConvergeCore

/// A container's `mounts`: named `Volume`s, read-only bind mounts of host folders the
/// DockerHost allows, and tmpfs.
///
/// ```yaml
/// mounts:
///   - {volume: pgdata, target: /var/lib/postgresql/data}
///   - {bind: /srv/config/app, target: /etc/app}       # read-only; under DockerHost.allowedBindPaths
///   - {tmpfs: /run, size: 64Mi}
/// ```
/// The plan shows them by target (`mounts./etc/app = "bind /srv/config/app, read-only"`); a
/// change recreates the container, which keeps its named volumes.
public struct ContainerMount: Sendable, Hashable {
    public enum Source: Sendable, Hashable {
        case volume(String)
        case bind(String)
        /// Size in bytes, nil for the engine's default.
        case tmpfs(Int64?)
    }

    public var source: Source
    public var target: String
    public var readOnly: Bool
    var location: SourceLocation

    static func decode(_ node: ManifestNode) -> ContainerMount? {
        guard let reader = node.mapping else { return nil }
        defer { reader.finish() }
        var mount: ContainerMount?
        if let tmpfs = reader.optional("tmpfs"), let target = tmpfs.string {
            var size: Int64?
            if let sizeNode = reader.optional("size"), let text = sizeNode.string {
                size = ContainerSettings.bytes(text)
                if size == nil { sizeNode.report("'\(text)' is not a size", hint: "write it as 64Mi") }
            }
            mount = ContainerMount(source: .tmpfs(size), target: target, readOnly: false, location: node.location)
        } else {
            let targetNode = reader.required("target", hint: "the path inside the container")
            let target = targetNode?.string ?? ""
            if let volume = reader.optional("volume")?.string {
                mount = ContainerMount(
                    source: .volume(volume), target: target, readOnly: reader.optional("readOnly")?.bool ?? false, location: node.location)
            } else if let bindNode = reader.optional("bind"), let path = bindNode.string {
                if let readOnlyNode = reader.optional("readOnly"), readOnlyNode.bool == false {
                    readOnlyNode.report("a bind mount is read-only", hint: "use a Volume for data the container writes")
                }
                if !path.hasPrefix("/") || path.split(separator: "/").contains("..") {
                    bindNode.report("'\(path)' is not an absolute path without '..'")
                }
                mount = ContainerMount(source: .bind(path), target: target, readOnly: true, location: node.location)
            } else {
                node.report("expected {volume: NAME, target: PATH}, {bind: HOST_PATH, target: PATH} or {tmpfs: PATH}")
            }
        }
        if let target = mount?.target, !target.hasPrefix("/") {
            node.report("'\(target)' is not an absolute path inside the container")
        }
        return mount
    }

    /// How the plan shows it, keyed by its target.
    var summary: String {
        switch source {
        case .volume(let name): return "volume \(name)" + (readOnly ? ", read-only" : "")
        case .bind(let path): return "bind \(path), read-only"
        case .tmpfs(let size): return "tmpfs" + (size.map { " \(ContainerSettings.format(bytes: $0))" } ?? "")
        }
    }

    var engineMount: DockerMount {
        switch source {
        case .volume(let name): return DockerMount(type: "volume", source: name, target: target, readOnly: readOnly ? true : nil)
        case .bind(let path): return DockerMount(type: "bind", source: path, target: target, readOnly: true)
        case .tmpfs(let size):
            return DockerMount(type: "tmpfs", source: nil, target: target, readOnly: nil, tmpfsOptions: size.map { .init(sizeBytes: $0) })
        }
    }

    /// The same shape read back from the engine's `HostConfig.Mounts`.
    init?(_ mount: DockerMount) {
        switch mount.type {
        case "volume": source = .volume(mount.source ?? "")
        case "bind": source = .bind(mount.source ?? "")
        case "tmpfs": source = .tmpfs(mount.tmpfsOptions?.sizeBytes.flatMap { $0 > 0 ? $0 : nil })
        default: return nil
        }
        target = mount.target
        readOnly = mount.readOnly ?? false
        location = SourceLocation(file: "", line: 0, column: 0)
    }

    init(source: Source, target: String, readOnly: Bool, location: SourceLocation) {
        self.source = source
        self.target = target
        self.readOnly = readOnly
        self.location = location
    }

    /// The `mounts` field: target → summary.
    static func fields(_ mounts: [ContainerMount]) -> FieldValue {
        .stringMap(Dictionary(mounts.map { ($0.target, $0.summary) }, uniquingKeysWith: { first, _ in first }))
    }
}
