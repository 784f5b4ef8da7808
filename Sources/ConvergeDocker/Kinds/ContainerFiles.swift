import ConvergeCore
import Crypto
import Foundation

/// Files from the repository mounted into a container, read-only: a configuration file
/// that lives beside the manifests, at the same revision.
///
/// ```yaml
/// files:
///   - {path: config/app.conf, target: /etc/app/app.conf}   # relative to the manifests' folder
/// ```
/// The plan shows each file's content hash (`files./etc/app/app.conf = "config/app.conf
/// (sha256:1a2b…)"`), so an approval covers the exact bytes, and changed content recreates
/// the container. The file is written on the Docker host, named by its hash, and
/// bind-mounted: Converge must run on the engine's host, as it does for a local socket.
public struct ContainerFile: Sendable, Hashable {
    /// As the manifest gives it, relative to the manifests' folder, in a folder of its own.
    public var path: String
    public var target: String
    var location: SourceLocation

    static func decode(_ node: ManifestNode) -> ContainerFile? {
        guard let reader = node.mapping else { return nil }
        defer { reader.finish() }
        guard let pathNode = reader.required("path", hint: "a file beside the manifests, e.g. config/app.conf"), let path = pathNode.string,
            let target = reader.required("target", hint: "where the container sees it, e.g. /etc/app/app.conf")?.string
        else { return nil }
        if RepositoryFiles.normalize(path).map({ !$0.contains("/") }) ?? false {
            pathNode.report("'\(path)' is not in a folder", hint: "put files in a folder beside the manifests, e.g. config/\(path)")
        }
        if !target.hasPrefix("/") { reader.optional("target")?.report("'\(target)' is not an absolute path inside the container") }
        return ContainerFile(path: path, target: target, location: pathNode.location)
    }

    /// The folder the file is read with (a `RepositoryFileUser` folder).
    var folder: String { path.split(separator: "/").dropLast().joined(separator: "/") }

    /// The file's content as the set read it; nil when it is not there.
    func content(in set: ManifestSet) -> [UInt8]? {
        guard let repositoryPath = set.repositoryPath(path), let folder = set.repositoryPath(self.folder) else { return nil }
        return set.repositoryFolders[folder]?.first { $0.path == repositoryPath }?.bytes
    }

    static func digest(_ bytes: [UInt8]) -> String {
        "sha256:" + SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    /// What the plan shows for each file, by target: `path (sha256:…)`.
    static func summaries(_ files: [ContainerFile], in set: ManifestSet) -> [String: String] {
        Dictionary(
            files.map { file in (file.target, "\(file.path) (\(file.content(in: set).map(digest) ?? "missing"))") },
            uniquingKeysWith: { first, _ in first })
    }

    /// The label that keeps those summaries on the container, so observation reads them back
    /// and tells its file mounts from its `mounts`.
    static let label = "converge.dev/files"

    static func encode(_ summaries: [String: String]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(summaries)) ?? Data(), as: UTF8.self)
    }

    static func decode(label: String?) -> [String: String] {
        guard let label, let summaries = try? JSONDecoder().decode([String: String].self, from: Data(label.utf8)) else { return [:] }
        return summaries
    }

    /// Writes the file's content into `directory` on the Docker host, named by its hash (once:
    /// containers with the same content share it), and returns its read-only mount.
    func mount(in set: ManifestSet, directory: String) throws -> DockerMount {
        guard let bytes = content(in: set) else {
            throw DockerProviderError(.fileMissing, message: "\(path) is not among the files read with the manifests")
        }
        let hex = String(Self.digest(bytes).dropFirst("sha256:".count))
        let host = "\(directory)/\(hex)"
        if !FileManager.default.fileExists(atPath: host) {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let partial = host + ".partial-\(getpid())"
            try Data(bytes).write(to: URL(fileURLWithPath: partial))
            try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: partial)
            try FileManager.default.moveItem(atPath: partial, toPath: host)
        }
        return DockerMount(type: "bind", source: host, target: target, readOnly: true)
    }
}
