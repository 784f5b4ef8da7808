import ArgumentParser
import ConvergeCore
import ConvergeGit
import Foundation

/// Where the manifests come from: a folder on disk (read as it is), or a Git commit
/// (`--repo`, read from the commit's tree through libgit2, no checkout).
struct ManifestSourceOptions: ParsableArguments {
    @Argument(help: "A folder (or file) of YAML manifests, read as it is on disk. Ignored with --repo.")
    var folder: String?

    @Option(help: "A Git repository: local path, file:// or https:// URL. Manifests are read from a commit.")
    var repo: String?

    @Option(help: "With --repo: branch, tag or commit to read (default: HEAD).")
    var ref: String?

    @Option(help: "With --repo: folder inside the repository holding the manifests.")
    var path: String?

    @Option(help: "With --repo: environment variable holding an HTTPS token.")
    var tokenEnv: String = GitSourceRequest.defaultTokenEnvironmentVariable

    func validate() throws {
        if repo == nil, ref != nil || path != nil {
            throw ValidationError("--ref and --path need --repo")
        }
        if repo != nil, folder != nil {
            throw ValidationError("give either a folder or --repo, not both")
        }
    }

    func load() throws -> (files: [SourceFile], revision: SourceRevision) {
        if let repo {
            let snapshot = try GitSource.load(GitSourceRequest(
                repository: repo, ref: ref, path: path, tokenEnvironmentVariable: tokenEnv,
                cacheDirectory: GitSourceRequest.defaultCacheDirectory))
            return (snapshot.files, snapshot.revision)
        }
        let folder = self.folder ?? "."
        return (try FolderSource.read(folder), SourceRevision(repository: folder))
    }
}

/// Reads `*.yaml`/`*.yml` files under a folder, for quick trials outside Git.
enum FolderSource {
    static func read(_ root: String) throws -> [SourceFile] {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: root, isDirectory: &isDirectory) else {
            throw CLIError("manifest folder '\(root)' does not exist", hint: "give a folder of YAML manifests, or --repo for a Git repository")
        }
        if !isDirectory.boolValue {
            return [SourceFile(path: root, bytes: try readBytes(root))]
        }
        guard let walker = manager.enumerator(atPath: root) else { return [] }
        var files: [SourceFile] = []
        for case let relative as String in walker {
            guard relative.hasSuffix(".yaml") || relative.hasSuffix(".yml"),
                  !relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) else { continue }
            let path = root == "." ? relative : (root.hasSuffix("/") ? root + relative : root + "/" + relative)
            files.append(SourceFile(path: path, bytes: try readBytes(path)))
        }
        return files.sorted { $0.path < $1.path }
    }

    private static func readBytes(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError("cannot read '\(path)'", hint: "check the file's permissions")
        }
        return [UInt8](data)
    }
}

/// An error for a person: what went wrong and what to do.
struct CLIError: Error, CustomStringConvertible {
    var message: String
    var hint: String?

    init(_ message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }

    var description: String { hint.map { "\(message) (\($0))" } ?? message }
}
