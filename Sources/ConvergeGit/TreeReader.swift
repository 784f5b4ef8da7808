import Clibgit2
import ConvergeCore
import Foundation

/// Collects the YAML blobs of a commit's tree.
///
/// Hidden entries (name starting with ".") are skipped, folders included, as the CLI's
/// folder source does: they hold CI and tool configuration, not manifests. A `path` that
/// itself names a hidden folder or file is still read.
///
/// The tree is walked once (`git_tree_walk`, which loads each subtree once), collecting
/// blob ids; then each blob is read once by id. That is O(files), with no per-file path
/// lookups, so ten thousand manifests load in a fraction of a second.
enum TreeReader {
    static func yamlFiles(
        in commit: Commit,
        repository: Repository,
        path: String?,
        display: String
    ) throws(GitSourceError) -> [SourceFile] {
        var tree: OpaquePointer?
        try Libgit2.check(
            git_commit_tree(&tree, commit.pointer),
            .libgit2,
            "read the tree of commit \(commit.shortID) of \(display)"
        )
        defer { git_tree_free(tree) }

        guard let path else {
            return try readBlobs(walk(tree!, prefix: "", commit: commit, display: display), repository, display)
        }

        var entry: OpaquePointer?
        let code = git_tree_entry_bypath(&entry, tree, path)
        if code == GIT_ENOTFOUND.rawValue {
            throw GitSourceError(
                .pathNotFound,
                "path '\(path)' does not exist at commit \(commit.shortID) of \(display): give a folder relative to the repository root (names are case-sensitive).",
                code: code
            )
        }
        try Libgit2.check(code, .libgit2, "look up path '\(path)' at commit \(commit.shortID) of \(display)")
        defer { git_tree_entry_free(entry) }

        let id = git_tree_entry_id(entry)!
        switch git_tree_entry_type(entry) {
        case GIT_OBJECT_TREE:
            var subtree: OpaquePointer?
            try Libgit2.check(
                git_tree_lookup(&subtree, repository.pointer, id),
                .libgit2,
                "read folder '\(path)' at commit \(commit.shortID) of \(display)"
            )
            defer { git_tree_free(subtree) }
            return try readBlobs(walk(subtree!, prefix: path + "/", commit: commit, display: display), repository, display)

        case GIT_OBJECT_BLOB:
            let mode = git_tree_entry_filemode(entry).rawValue
            guard mode == GIT_FILEMODE_BLOB.rawValue || mode == GIT_FILEMODE_BLOB_EXECUTABLE.rawValue else {
                throw GitSourceError(
                    .unsupportedPath,
                    "path '\(path)' at commit \(commit.shortID) of \(display) is a symbolic link, which Converge does not follow: point path at the folder or file it links to."
                )
            }
            let name = path.split(separator: "/").last.map(String.init) ?? path
            guard isYAML(name.utf8) else {
                throw GitSourceError(
                    .unsupportedPath,
                    "path '\(path)' at commit \(commit.shortID) of \(display) is a file but not a *.yaml or *.yml file: point path at a folder of manifests or at one YAML file."
                )
            }
            return try readBlobs([Entry(path: path, id: id.pointee)], repository, display)

        default:
            throw GitSourceError(
                .unsupportedPath,
                "path '\(path)' at commit \(commit.shortID) of \(display) is a submodule, which Converge does not read: point path at a folder of this repository."
            )
        }
    }

    struct Entry {
        var path: String
        var id: git_oid
    }

    /// Mutable state of one walk, reached from the C callback through its payload pointer.
    private final class WalkState {
        let prefix: String
        /// Collect only `*.yaml`/`*.yml` blobs (manifests), or every regular file.
        let yamlOnly: Bool
        var entries: [Entry] = []
        init(prefix: String, yamlOnly: Bool) {
            self.prefix = prefix
            self.yamlOnly = yamlOnly
        }
    }

    /// Every regular, non-hidden file under `folder` of the commit's tree, with paths from the
    /// root, sorted; nil when the commit has no such folder.
    static func files(
        in commit: Commit,
        repository: Repository,
        folder: String,
        display: String
    ) throws(GitSourceError) -> [SourceFile]? {
        var tree: OpaquePointer?
        try Libgit2.check(git_commit_tree(&tree, commit.pointer), .libgit2, "read the tree of commit \(commit.shortID) of \(display)")
        defer { git_tree_free(tree) }
        var entry: OpaquePointer?
        let code = git_tree_entry_bypath(&entry, tree, folder)
        if code == GIT_ENOTFOUND.rawValue { return nil }
        try Libgit2.check(code, .libgit2, "look up '\(folder)' at commit \(commit.shortID) of \(display)")
        defer { git_tree_entry_free(entry) }
        guard git_tree_entry_type(entry) == GIT_OBJECT_TREE else { return nil }
        var subtree: OpaquePointer?
        try Libgit2.check(
            git_tree_lookup(&subtree, repository.pointer, git_tree_entry_id(entry)), .libgit2,
            "read folder '\(folder)' at commit \(commit.shortID) of \(display)")
        defer { git_tree_free(subtree) }
        return try readBlobs(walk(subtree!, prefix: folder + "/", yamlOnly: false, commit: commit, display: display), repository, display)
    }

    /// Every YAML blob under `tree`, with `prefix` (the folder of `tree` from the root,
    /// ending in "/", or "") prepended to its path, sorted by path.
    private static func walk(
        _ tree: OpaquePointer,
        prefix: String,
        yamlOnly: Bool = true,
        commit: Commit,
        display: String
    ) throws(GitSourceError) -> [Entry] {
        let state = WalkState(prefix: prefix, yamlOnly: yamlOnly)
        let code = withExtendedLifetime(state) {
            git_tree_walk(tree, GIT_TREEWALK_PRE, { root, entry, payload in
                guard let entry, let payload, let name = git_tree_entry_name(entry) else { return 0 }
                // Hidden files and folders (`.github/workflows/ci.yml`, `.gitlab-ci.yml`,
                // `.pre-commit-config.yaml`) are tool configuration, not manifests; a positive
                // return skips the entry and, for a folder, everything under it.
                if name.pointee == 0x2E { return 1 }
                guard git_tree_entry_type(entry) == GIT_OBJECT_BLOB else { return 0 }
                // Regular files only: symbolic links are stored as blobs holding the target
                // path, which is not a manifest.
                let mode = git_tree_entry_filemode(entry).rawValue
                guard mode == GIT_FILEMODE_BLOB.rawValue || mode == GIT_FILEMODE_BLOB_EXECUTABLE.rawValue else {
                    return 0
                }
                let state = Unmanaged<WalkState>.fromOpaque(payload).takeUnretainedValue()
                let nameBytes = UnsafeBufferPointer(start: name, count: strlen(name))
                guard !state.yamlOnly || TreeReader.isYAML(UnsafeRawBufferPointer(nameBytes)) else { return 0 }
                let directory = root.map { String(cString: $0) } ?? ""
                state.entries.append(
                    Entry(path: state.prefix + directory + String(cString: name), id: git_tree_entry_id(entry)!.pointee)
                )
                return 0
            }, Unmanaged.passUnretained(state).toOpaque())
        }
        try Libgit2.check(code, .libgit2, "walk the tree of commit \(commit.shortID) of \(display)")
        return state.entries
    }

    /// Reads each blob once and returns the files sorted by path (byte order, so the order
    /// is the same on every machine and locale).
    private static func readBlobs(
        _ entries: [Entry],
        _ repository: Repository,
        _ display: String
    ) throws(GitSourceError) -> [SourceFile] {
        let sorted = entries.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        var files: [SourceFile] = []
        files.reserveCapacity(sorted.count)
        for entry in sorted {
            var id = entry.id
            var blob: OpaquePointer?
            try Libgit2.check(
                git_blob_lookup(&blob, repository.pointer, &id),
                .libgit2,
                "read '\(entry.path)' (blob \(Libgit2.hex(id).prefix(7))) of \(display)"
            )
            defer { git_blob_free(blob) }
            let size = Int(git_blob_rawsize(blob))
            let bytes: [UInt8]
            if size > 0, let content = git_blob_rawcontent(blob) {
                bytes = Array(UnsafeRawBufferPointer(start: content, count: size))
            } else {
                bytes = []
            }
            files.append(SourceFile(path: entry.path, bytes: bytes))
        }
        return files
    }

    /// True for names ending in `.yaml` or `.yml` (ASCII case-insensitive, so `App.YAML`
    /// counts too). A name that is only the extension (`.yaml`) counts as well: it is a
    /// file someone committed as a manifest.
    static func isYAML<Bytes: Collection<UInt8>>(_ name: Bytes) -> Bool {
        func endsWith(_ suffix: StaticString) -> Bool {
            let count = suffix.utf8CodeUnitCount
            guard name.count >= count else { return false }
            let tail = name.suffix(count)
            var index = tail.startIndex
            for position in 0..<count {
                let expected = suffix.utf8Start[position]
                var byte = tail[index]
                if byte >= 0x41 && byte <= 0x5A { byte += 0x20 }  // ASCII lowercase
                if byte != expected { return false }
                index = tail.index(after: index)
            }
            return true
        }
        return endsWith(".yaml") || endsWith(".yml")
    }
}
