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
    /// The manifests' folder in the repository (a Git source's `--path`; "" for the root and
    /// for a folder source, whose root is that folder): manifests name files relative to it.
    public var base: String
    private let reader: Reader

    public init(origin: String, manifestPathPrefix: String = "", base: String = "", reader: @escaping Reader) {
        self.origin = origin
        self.manifestPathPrefix = manifestPathPrefix
        self.base = base
        self.reader = reader
    }

    /// The repository path of `relative`, a path a manifest gives relative to the manifests'
    /// folder (`ansible/site.yml`, `../ansible/site.yml`); nil when it leaves the repository.
    public func resolve(_ relative: String) -> String? {
        guard !relative.hasPrefix("/") else { return nil }
        return Self.normalize(base.isEmpty ? relative : base + "/" + relative)
    }

    /// The files under `folder`, or nil when the folder does not exist.
    public func files(under folder: String) throws -> [SourceFile]? {
        try reader(folder)
    }

    /// Files kept with a run (its archive), read from the manifests' folder `base`: a resumed
    /// run uses exactly what was planned.
    public static func archived(_ files: [SourceFile], base: String) -> RepositoryFiles {
        RepositoryFiles(origin: "the files journaled with the run", base: base) { folder in
            let prefix = folder + "/"
            let found = files.filter { $0.path.hasPrefix(prefix) }
            return found.isEmpty ? nil : found.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        }
    }

    /// The manifests' folder of a source path (a Git source's `--path`, as its revision
    /// records it): the path itself, or the folder of a single manifest file; "" for none.
    public static func base(ofSourcePath path: String?) -> String {
        guard let path, let normalized = normalize(path) else { return "" }
        let lowered = normalized.lowercased()
        guard lowered.hasSuffix(".yaml") || lowered.hasSuffix(".yml") else { return normalized }
        return normalized.split(separator: "/").dropLast().joined(separator: "/")
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
    /// The folders to read, relative to the manifests' folder (see `RepositoryFiles.resolve`),
    /// each with the field that names it, for the error when one is missing.
    var repositoryFolders: [(folder: String, field: String, location: SourceLocation)] { get }
}
