import ConvergeCore
import ConvergeGit
import Foundation

/// Where manifests come from: a folder on disk (read as it is, for quick trials), or a Git
/// commit (read from the commit's tree through libgit2, no checkout).
public enum ManifestSource: Sendable {
    case folder(String)
    case git(GitSourceRequest)

    /// The files of a source, the revision they were read at, and where the files beside
    /// them (a playbook's) are read from at that revision.
    public struct Snapshot: Sendable {
        public var files: [SourceFile]
        public var revision: SourceRevision
        public var repository: RepositoryFiles

        public init(files: [SourceFile], revision: SourceRevision, repository: RepositoryFiles) {
            self.files = files
            self.revision = revision
            self.repository = repository
        }
    }

    /// Reads the source. A Git fetch blocks in libgit2, so it runs on a thread of its own,
    /// never on one of the few threads of Swift's cooperative pool.
    public func load() async throws -> Snapshot {
        switch self {
        case .git(let request):
            let snapshot = try await GitSource.loadOnDedicatedThread(request)
            return Snapshot(
                files: snapshot.files, revision: snapshot.revision,
                repository: GitSource.repositoryFiles(request, commit: snapshot.revision.commit ?? ""))
        case .folder(let folder):
            return Snapshot(files: try FolderSource.read(folder), revision: SourceRevision(repository: folder), repository: FolderSource.repositoryFiles(folder))
        }
    }
}

/// Reads `*.yaml`/`*.yml` files under a folder (hidden folders skipped), sorted by path.
public enum FolderSource {
    public static func read(_ root: String) throws -> [SourceFile] {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: root, isDirectory: &isDirectory) else {
            throw RuntimeError(.missingSource, "manifest folder '\(root)' does not exist")
        }
        if !isDirectory.boolValue {
            return [SourceFile(path: root, bytes: try readBytes(root))]
        }
        guard let walker = manager.enumerator(atPath: root) else { return [] }
        var files: [SourceFile] = []
        for case let relative as String in walker {
            guard relative.hasSuffix(".yaml") || relative.hasSuffix(".yml"),
                !relative.split(separator: "/").contains(where: { $0.hasPrefix(".") })
            else { continue }
            let path = root == "." ? relative : (root.hasSuffix("/") ? root + relative : root + "/" + relative)
            files.append(SourceFile(path: path, bytes: try readBytes(path)))
        }
        return files.sorted { $0.path < $1.path }
    }

    /// The files under the folder (or a manifest file's folder), read from disk each time they
    /// are asked for: a run reads them again right before using them.
    public static func repositoryFiles(_ root: String) -> RepositoryFiles {
        var isDirectory: ObjCBool = false
        let base = FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory) && !isDirectory.boolValue
            ? (root as NSString).deletingLastPathComponent : root
        // Manifest paths are `root/relative` (FolderSource.read), or `relative` for `.`.
        let prefix = base == "." || base.isEmpty ? "" : (base.hasSuffix("/") ? base : base + "/")
        return RepositoryFiles(origin: "the folder \(base.isEmpty ? "." : base)", manifestPathPrefix: prefix) { folder in
            let directory = (base.isEmpty ? "." : base) + "/" + folder
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isFolder), isFolder.boolValue,
                let walker = FileManager.default.enumerator(atPath: directory)
            else { return nil }
            var files: [SourceFile] = []
            for case let relative as String in walker {
                guard !relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) else { continue }
                let path = directory + "/" + relative
                let attributes = try FileManager.default.attributesOfItem(atPath: path)
                guard attributes[.type] as? FileAttributeType == .typeRegular else { continue }
                files.append(SourceFile(path: folder + "/" + relative, bytes: try readBytes(path)))
            }
            return files.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        }
    }

    private static func readBytes(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RuntimeError(.unreadableSource, "cannot read '\(path)'")
        }
        return [UInt8](data)
    }
}
