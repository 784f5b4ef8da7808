import Clibgit2
import Foundation

/// Owns one `git_repository` handle for the duration of a load.
///
/// Not `Sendable` on purpose: a handle is used by one thread, from open to free, inside
/// `GitSource.load`; nothing escapes the call.
final class Repository {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        git_repository_free(pointer)
    }

    /// Opens a local working copy or bare repository, exactly at `path` (no search upwards:
    /// `path` in the request is always relative to the repository root, so opening a parent
    /// repository by accident would read the wrong files).
    static func openLocal(_ path: String) throws(GitSourceError) -> Repository {
        guard FileManager.default.fileExists(atPath: path) else {
            throw GitSourceError(
                .repositoryNotFound,
                "repository '\(path)' not found: there is no such file or folder. Give the path of a Git working copy or bare repository, or a file:// or https:// URL."
            )
        }
        var handle: OpaquePointer?
        let code = git_repository_open_ext(&handle, path, GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue, nil)
        if code == GIT_ENOTFOUND.rawValue {
            throw GitSourceError(
                .notARepository,
                "'\(path)' is not a Git repository: it has no .git folder and is not a bare repository. Give the top folder of a working copy or a bare repository (use `path` for a folder inside it).",
                code: code
            )
        }
        if code == GIT_EOWNER.rawValue {
            throw GitSourceError.libgit2(
                .notARepository, code: code, what: "open the Git repository '\(path)'",
                hint: "It belongs to another user; if you trust it, run `git config --global --add safe.directory \(path)` as the user running Converge."
            )
        }
        try Libgit2.check(code, .libgit2, "open the Git repository '\(path)'")
        return Repository(handle!)
    }

    /// Resolves `ref` (nil = HEAD) to a commit.
    ///
    /// In a local repository, libgit2's revision parser does what `git rev-parse` does
    /// (local branches first, then tags, remote-tracking branches, commit ids, `main~1`…).
    /// In the bare cache of a remote, branches live under `refs/remotes/origin/` (the cache
    /// has no local branches that could go stale), so a name is tried as
    /// `refs/remotes/origin/<name>`, then `refs/tags/<name>`, then as a revision (commit id).
    func resolveCommit(_ ref: String?, isCache: Bool, display: String) throws(GitSourceError) -> Commit {
        let requested = (ref?.isEmpty ?? true) ? nil : ref
        let object: OpaquePointer
        if isCache {
            object = try resolveInCache(requested, display: display)
        } else {
            object = try revparse(requested ?? "HEAD", requested: requested, display: display)
        }
        defer { git_object_free(object) }

        var peeled: OpaquePointer?
        let code = git_object_peel(&peeled, object, GIT_OBJECT_COMMIT)
        guard code == 0, let peeled else {
            let type = git_object_type2string(git_object_type(object)).map { String(cString: $0) } ?? "object"
            let id = Libgit2.hex(git_object_id(object)).prefix(7)
            throw GitSourceError(
                .notACommit,
                "ref '\(requested ?? "HEAD")' in \(display) names a \(type) (\(id)), not a commit: give a branch, tag or commit id.",
                code: code
            )
        }
        return Commit(peeled)
    }

    private func resolveInCache(_ ref: String?, display: String) throws(GitSourceError) -> OpaquePointer {
        guard let ref, ref != "HEAD" else {
            if let object = try lookupReference("refs/remotes/origin/HEAD", display: display) {
                return object
            }
            throw GitSourceError(
                .emptyRepository,
                "\(display) has no default branch (the remote repository is empty or its HEAD points nowhere): push a commit, or name a branch, tag or commit id as ref."
            )
        }
        let candidates: [String]
        if ref.hasPrefix("refs/heads/") {
            candidates = ["refs/remotes/origin/" + ref.dropFirst("refs/heads/".count)]
        } else if ref.hasPrefix("refs/") {
            candidates = [ref]
        } else {
            candidates = ["refs/remotes/origin/\(ref)", "refs/tags/\(ref)"]
        }
        for name in candidates {
            if let object = try lookupReference(name, display: display) {
                return object
            }
        }
        if ref.hasPrefix("refs/") {
            throw refNotFound(ref, display: display)
        }
        do {
            return try revparse(ref, requested: ref, display: display)
        } catch where error.kind == .refNotFound && (ref.contains("~") || ref.contains("^")) {
            // `main~1` in the cache means `origin/main~1`.
            return try revparse("origin/\(ref)", requested: ref, display: display)
        }
    }

    /// The object a reference points to (symbolic references followed), or nil when there
    /// is no such reference.
    private func lookupReference(_ name: String, display: String) throws(GitSourceError) -> OpaquePointer? {
        var reference: OpaquePointer?
        let code = git_reference_lookup(&reference, pointer, name)
        if code == GIT_ENOTFOUND.rawValue || code == GIT_EINVALIDSPEC.rawValue {
            return nil
        }
        try Libgit2.check(code, .libgit2, "read reference '\(name)' in \(display)")
        defer { git_reference_free(reference) }
        var object: OpaquePointer?
        let peelCode = git_reference_peel(&object, reference, GIT_OBJECT_ANY)
        if peelCode == GIT_ENOTFOUND.rawValue {
            return nil  // a symbolic reference to a branch that no longer exists
        }
        try Libgit2.check(peelCode, .libgit2, "read reference '\(name)' in \(display)")
        return object
    }

    private func revparse(_ spec: String, requested: String?, display: String) throws(GitSourceError) -> OpaquePointer {
        var object: OpaquePointer?
        let code = git_revparse_single(&object, pointer, spec)
        if code == 0, let object {
            return object
        }
        if requested == nil, git_repository_head_unborn(pointer) == 1 {
            throw GitSourceError(
                .emptyRepository,
                "repository \(display) has no commits yet: commit the manifests first, or name a branch, tag or commit id as ref.",
                code: code
            )
        }
        switch code {
        case GIT_ENOTFOUND.rawValue, GIT_EINVALIDSPEC.rawValue, GIT_EUNBORNBRANCH.rawValue:
            throw refNotFound(requested ?? spec, display: display, code: code)
        case GIT_EAMBIGUOUS.rawValue:
            throw GitSourceError(
                .ambiguousRef,
                "ref '\(requested ?? spec)' is ambiguous in \(display): several objects have ids starting with it; give more characters of the commit id.",
                code: code
            )
        default:
            throw GitSourceError.libgit2(.libgit2, code: code, what: "resolve ref '\(requested ?? spec)' in \(display)")
        }
    }

    private func refNotFound(_ ref: String, display: String, code: Int32? = nil) -> GitSourceError {
        GitSourceError(
            .refNotFound,
            "ref '\(ref)' not found in \(display): expected a branch, tag or commit id (names are case-sensitive).",
            code: code
        )
    }
}

/// Owns one `git_commit` handle and knows its full id.
final class Commit {
    let pointer: OpaquePointer
    /// The full 40-hex id.
    let id: String

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
        self.id = Libgit2.hex(git_commit_id(pointer))
    }

    deinit {
        git_commit_free(pointer)
    }

    var shortID: String { String(id.prefix(7)) }
}
