import ConvergeCore
import Crypto
import Foundation

/// `Playbook`: an Ansible playbook of the repository, with the folder of its roles, variables
/// and templates, and how it is run. `PlaybookRun`s and schedules run it on hosts.
///
/// ```yaml
/// kind: Playbook
/// metadata: {name: baseline}
/// spec:
///   path: ansible/baseline.yml   # relative to the manifests' folder; may reach ../ within the repository
///   files: ansible               # the folder it needs (default: the playbook's folder)
///   extraVars: {ntp_server: 10.0.0.1}
///   checkMode: false             # true: ansible-playbook --check, nothing changes
///   timeout: 30m                 # the whole run is killed after it
/// ```
/// The plan pins the SHA-256 of every file under `files`; right before `ansible-playbook`
/// starts they are read and hashed again, and a mismatch refuses the run.
public struct PlaybookSpec: ResourceSpec, RepositoryFileUser, Equatable {
    public static let kind = "Playbook"
    public static let isLiveObject = false
    public static let defaultTimeout = Duration.seconds(3600)
    /// The folder is journaled with every run that uses it: big folders belong elsewhere.
    public static let maximumBundleBytes = 8 << 20

    /// The playbook file, relative to the manifests' folder, as written (cleaned of `.`).
    public var path: String
    /// The folder whose files the playbook needs, relative to the manifests' folder.
    public var folder: String
    public var extraVars: [String: JSONValue]
    public var checkMode: Bool
    public var timeout: Duration
    var pathLocation: SourceLocation
    var folderField: String

    public init?(spec: MappingReader, metadata: Metadata) {
        let pathNode = spec.required("path", hint: "the playbook file, relative to the manifests' folder, e.g. ansible/site.yml")
        pathLocation = pathNode?.location ?? spec.location
        path = pathNode?.string.flatMap(Self.clean) ?? ""
        if let pathNode, path.isEmpty {
            pathNode.report(
                "'\(pathNode.string ?? "")' is not a path in the repository", hint: "give a relative path such as ansible/site.yml")
        }
        let filesNode = spec.optional("files")
        if let filesNode {
            folder = filesNode.string.flatMap(Self.clean) ?? ""
            folderField = "spec.files"
            if folder.isEmpty {
                filesNode.report(
                    "'\(filesNode.string ?? "")' is not a folder in the repository", hint: "give a relative folder such as ansible")
            } else if !path.isEmpty, !path.hasPrefix(folder + "/") {
                filesNode.report("does not contain the playbook \(path)", hint: "files is the folder holding the playbook and its roles")
            }
        } else {
            folder = path.split(separator: "/").dropLast().joined(separator: "/")
            folderField = "spec.path"
            if !path.isEmpty, folder.isEmpty {
                pathNode?.report(
                    "the playbook is in the manifests' folder itself, so its files would be the manifests",
                    hint: "move it into a folder with its roles (ansible/site.yml), or set spec.files to the folder it needs")
            }
        }
        extraVars = [:]
        if let varsNode = spec.optional("extraVars") {
            if case .object(let fields) = varsNode.jsonValue() {
                extraVars = fields
            } else {
                varsNode.report("expected a mapping of variable names to values")
            }
        }
        checkMode = spec.optional("checkMode")?.bool ?? false
        timeout = Self.readTimeout(spec.optional("timeout")) ?? Self.defaultTimeout
    }

    /// A relative path without `.` and inner `a/..` (leading `..` stay: they may reach
    /// elsewhere in the repository); nil for an absolute or empty one.
    static func clean(_ text: String) -> String? {
        guard !text.hasPrefix("/") else { return nil }
        var parts: [Substring] = []
        for part in text.split(separator: "/") where part != "." {
            if part == "..", let last = parts.last, last != ".." { parts.removeLast() } else { parts.append(part) }
        }
        return parts.isEmpty ? nil : parts.joined(separator: "/")
    }

    static func readTimeout(_ node: ManifestNode?) -> Duration? {
        guard let node else { return nil }
        guard let text = node.string, let nanoseconds = DurationText.nanoseconds(text), nanoseconds > 0 else {
            node.report("expected a duration such as 30m or 1h")
            return nil
        }
        return .nanoseconds(nanoseconds)
    }

    public var repositoryFolders: [(folder: String, field: String, location: SourceLocation)] {
        folder.isEmpty ? [] : [(folder, folderField, pathLocation)]
    }

    public func references(in set: ManifestSet) -> [Reference] { [] }
    public func target(in set: ManifestSet) -> ResourceID? { nil }

    public func validate(_ resource: Resource, in set: ManifestSet, collector: DiagnosticCollector) {
        guard !folder.isEmpty, let resolved = set.repositoryPath(path),
            let files = set.repositoryPath(folder).flatMap({ set.repositoryFolders[$0] })
        else { return }
        if !files.contains(where: { $0.path == resolved }) {
            let playbooks = files.map(\.path).filter { $0.hasSuffix(".yml") || $0.hasSuffix(".yaml") }.prefix(8)
            collector.report(
                "spec.path: playbook '\(path)' does not exist in \(set.repository?.origin ?? "the source")", at: pathLocation,
                hint: playbooks.isEmpty ? "commit it under \(folder)/" : "files there: \(playbooks.joined(separator: ", "))")
        }
        let bytes = files.reduce(0) { $0 + $1.bytes.count }
        if bytes > Self.maximumBundleBytes {
            collector.report(
                "\(folderField): folder '\(folder)' holds \(bytes / 1024) KiB, more than the \(Self.maximumBundleBytes >> 20) MiB a playbook's files may",
                at: pathLocation, hint: "set spec.files to the folder with only the playbook and its roles")
        }
    }

    /// The playbook's files as the set read them, under their repository folder.
    public func bundle(in set: ManifestSet) -> PlaybookBundle {
        let resolved = set.repositoryPath(folder) ?? folder
        return PlaybookBundle(folder: resolved, files: set.repositoryFolders[resolved] ?? [])
    }
}

/// A playbook's files, and the digest a plan pins them by.
public struct PlaybookBundle: Sendable {
    public var folder: String
    public var files: [SourceFile]

    /// `sha256:` over each file's path (relative to the folder) and content hash, in path
    /// order: a renamed, added, removed or edited file changes it.
    public var digest: String {
        var hasher = SHA256()
        for file in files.sorted(by: { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }) {
            hasher.update(data: Data(file.path.dropFirst(folder.count + 1).utf8))
            hasher.update(data: [0])
            hasher.update(data: Data(SHA256.hash(data: file.bytes)))
        }
        return "sha256:" + hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
