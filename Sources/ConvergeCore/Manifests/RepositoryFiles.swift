/// Files of the source beside its manifests that a kind needs: a playbook with its roles,
/// variables and templates. Read while the set loads, from the same revision as the manifests
/// (the commit's tree, or the folder as it is on disk), and read again by a provider right
/// before it uses them, so a change in between is caught.
public struct RepositoryFiles: Sendable {
    /// Every regular file under `folder` (relative to the repository root, without a leading
    /// or trailing `/`), paths relative to the root, sorted; nil when there is no such folder.
    public typealias Reader = @Sendable (_ folder: String) throws -> [SourceFile]?

    /// Says where the files come from, for messages (`the folder ./site`, `commit 1a2b3c4`).
    public var origin: String
    /// What the source puts before a repository path in its manifests' paths (a folder
    /// source's folder and `/`; nothing for Git, whose paths are from the root).
    public var manifestPathPrefix: String
    private let reader: Reader

    public init(origin: String, manifestPathPrefix: String = "", reader: @escaping Reader) {
        self.origin = origin
        self.manifestPathPrefix = manifestPathPrefix
        self.reader = reader
    }

    /// The files under `folder`, or nil when the folder does not exist.
    public func files(under folder: String) throws -> [SourceFile]? {
        try reader(folder)
    }

    /// Files kept with a run (its archive): a resumed run uses exactly what was planned.
    public static func archived(_ files: [SourceFile]) -> RepositoryFiles {
        RepositoryFiles(origin: "the files journaled with the run") { folder in
            let prefix = folder + "/"
            let found = files.filter { $0.path.hasPrefix(prefix) }
            return found.isEmpty ? nil : found.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        }
    }

    /// `text` as a folder or file path inside the repository (`ansible/site.yml`), or nil
    /// when it leaves it: absolute, empty, or climbing out with `..`.
    public static func normalize(_ text: String) -> String? {
        guard !text.hasPrefix("/") else { return nil }
        var parts: [Substring] = []
        for part in text.split(separator: "/", omittingEmptySubsequences: true) where part != "." {
            if part == ".." {
                guard parts.popLast() != nil else { return nil }
            } else {
                parts.append(part)
            }
        }
        return parts.isEmpty ? nil : parts.joined(separator: "/")
    }
}

/// A kind whose resources need files of the repository beside the manifests.
public protocol RepositoryFileUser: ResourceSpec {
    /// The folders to read (normalized: see `RepositoryFiles.normalize`), each with the field
    /// that names it, for the error when one is missing.
    var repositoryFolders: [(folder: String, field: String, location: SourceLocation)] { get }
}
