import ConvergeCore
import ConvergeGit
import Foundation

/// Where manifests come from: a folder on disk (read as it is, for quick trials), or a Git
/// commit (read from the commit's tree through libgit2, no checkout).
public enum ManifestSource: Sendable {
    case folder(String)
    case git(GitSourceRequest)

    /// The files of a source and the revision they were read at.
    public struct Snapshot: Sendable {
        public var files: [SourceFile]
        public var revision: SourceRevision
    }

    /// Reads the source. A Git fetch blocks in libgit2, so it runs on a thread of its own,
    /// never on one of the few threads of Swift's cooperative pool.
    public func load() async throws -> Snapshot {
        switch self {
        case .git(let request):
            let snapshot = try await GitSource.loadOnDedicatedThread(request)
            return Snapshot(files: snapshot.files, revision: snapshot.revision)
        case .folder(let folder):
            return Snapshot(files: try FolderSource.read(folder), revision: SourceRevision(repository: folder))
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

    private static func readBytes(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RuntimeError(.unreadableSource, "cannot read '\(path)'")
        }
        return [UInt8](data)
    }
}
