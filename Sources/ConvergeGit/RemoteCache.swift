import Clibgit2
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Bare clones of remote repositories, one folder per URL, refreshed by a fetch on every use.
///
/// Layout: `<cacheDirectory>/<name>-<hash>/` is a bare repository whose branches are
/// `refs/remotes/origin/*`, tags `refs/tags/*`, and `refs/remotes/origin/HEAD` follows the
/// remote's default branch. `<name>` is the last component of the URL (for people looking
/// at the folder), `<hash>` the SHA-1 of the URL without credentials (so two URLs never share
/// a folder). A `<folder>.lock` file, held with `flock` while fetching,
/// serialises concurrent fetches of the same URL (threads and processes alike); objects are
/// never removed, so reading a commit after the lock is released is safe.
///
/// The URL is never written into the repository's config: each fetch uses an anonymous
/// remote, so credentials in a URL stay out of the cache, and a changed token is used at
/// once.
enum RemoteCache {
    static let fetchRefspecs = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]

    /// The refspecs that fetch `ref` besides the branches and tags: a ref outside them (a
    /// pull request's `refs/pull/42/head`, GitLab's `refs/merge-requests/7/head`) is
    /// fetched to the same name.
    static func refspecs(fetching ref: String?) -> [String] {
        guard let ref, ref.hasPrefix("refs/"), !ref.hasPrefix("refs/heads/"), !ref.hasPrefix("refs/tags/") else { return fetchRefspecs }
        return fetchRefspecs + ["+\(ref):\(ref)"]
    }
    static let defaultBranchReference = "refs/remotes/origin/HEAD"

    /// Clones (first use) or fetches (later uses) `url` and returns the opened cache.
    static func synchronize(
        url: String,
        display: String,
        cacheDirectory: String,
        token: String?,
        tokenVariable: String,
        ref: String? = nil
    ) throws(GitSourceError) -> Repository {
        let cacheRoot = URL(fileURLWithPath: cacheDirectory).standardizedFileURL.path
        do {
            try FileManager.default.createDirectory(atPath: cacheRoot, withIntermediateDirectories: true)
        } catch {
            throw GitSourceError(
                .cacheFailed,
                "could not create the Git cache folder '\(cacheRoot)' for \(display): \(error.localizedDescription). Set cacheDirectory to a writable folder."
            )
        }
        let folder = cacheRoot + "/" + folderName(for: url)
        let lock = try FileLock(path: folder + ".lock", display: display)
        defer { lock.release() }

        let repository = try openOrCreate(folder, display: display)
        try fetch(url, into: repository, display: display, token: token, tokenVariable: tokenVariable, refspecs: refspecs(fetching: ref))
        return repository
    }

    /// `https://host/org/app-config.git` → `app-config-1f0c…` (16 hex of the SHA-1 of the URL).
    static func folderName(for url: String) -> String {
        let redacted = URLRedaction.redact(url)
        var last = redacted.split(whereSeparator: { $0 == "/" || $0 == ":" }).last.map(String.init) ?? "repository"
        if last.hasSuffix(".git") { last.removeLast(4) }
        let slug = String(
            last.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" }
                .prefix(40))
        let hash = Libgit2.sha1Hex(redacted).prefix(16)
        return (slug.isEmpty || slug.allSatisfy { $0 == "." } ? "repository" : slug) + "-" + hash
    }

    private static func openOrCreate(_ folder: String, display: String) throws(GitSourceError) -> Repository {
        if FileManager.default.fileExists(atPath: folder) {
            var handle: OpaquePointer?
            let code = git_repository_open_bare(&handle, folder)
            if code == 0, let handle {
                return Repository(handle)
            }
            guard code == GIT_ENOTFOUND.rawValue else {
                throw GitSourceError.libgit2(
                    .cacheFailed, code: code, what: "open the cached clone '\(folder)' of \(display)",
                    hint: "Delete that folder; it is cloned again on the next load."
                )
            }
            // Not a repository (an interrupted first clone, or a stray folder of ours):
            // start over, it is only a cache.
            try? FileManager.default.removeItem(atPath: folder)
        }
        var handle: OpaquePointer?
        try Libgit2.check(
            git_repository_init(&handle, folder, 1),
            .cacheFailed,
            "create the cached clone '\(folder)' of \(display)",
            hint: "Set cacheDirectory to a writable folder."
        )
        return Repository(handle!)
    }

    /// Fetches every branch and tag (and `refspecs`' extra ref), prunes what the remote deleted, and points
    /// `refs/remotes/origin/HEAD` at the remote's default branch.
    private static func fetch(
        _ url: String,
        into repository: Repository,
        display: String,
        token: String?,
        tokenVariable: String,
        refspecs: [String]
    ) throws(GitSourceError) {
        var remote: OpaquePointer?
        try Libgit2.check(
            git_remote_create_anonymous(&remote, repository.pointer, url),
            .fetchFailed,
            "use \(display) as a remote",
            hint: "Check the URL."
        )
        defer { git_remote_free(remote) }

        var options = git_fetch_options()
        git_fetch_options_init(&options, UInt32(GIT_FETCH_OPTIONS_VERSION))
        options.prune = GIT_FETCH_PRUNE
        options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_ALL
        options.proxy_opts.type = GIT_PROXY_AUTO  // honour http(s)_proxy and git config
        let isHTTPS = url.lowercased().hasPrefix("https://")
        let credentials = CredentialState(
            token: isHTTPS ? token : nil,
            variable: tokenVariable,
            tokenIgnored: !isHTTPS && token != nil
        )
        options.callbacks.credentials = credentialCallback
        options.callbacks.payload = Unmanaged.passUnretained(credentials).toOpaque()

        let code = withExtendedLifetime(credentials) {
            withStringArray(refspecs) { refspecs in
                git_remote_fetch(remote, refspecs, &options, "converge: fetch")
            }
        }
        if code < 0 {
            var hint = "Check the URL and that the repository is reachable from here."
            if isHTTPS && token == nil {
                hint += " For a private repository, set \(tokenVariable) to an access token."
            }
            throw GitSourceError.libgit2(.fetchFailed, code: code, what: "fetch \(display)", hint: hint)
        }
        try updateDefaultBranch(remote: remote!, repository: repository, display: display)
    }

    /// Mirrors the remote's HEAD as `refs/remotes/origin/HEAD`: symbolic when the remote
    /// says which branch it is (every server does), direct otherwise (a detached HEAD).
    private static func updateDefaultBranch(
        remote: OpaquePointer,
        repository: Repository,
        display: String
    ) throws(GitSourceError) {
        var heads: UnsafeMutablePointer<UnsafePointer<git_remote_head>?>?
        var count = 0
        try Libgit2.check(git_remote_ls(&heads, &count, remote), .fetchFailed, "list the refs of \(display)")

        var remoteHead: UnsafePointer<git_remote_head>?
        for index in 0..<count {
            if let head = heads?[index], let name = head.pointee.name, String(cString: name) == "HEAD" {
                remoteHead = head
                break
            }
        }

        var reference: OpaquePointer?
        defer { git_reference_free(reference) }
        if let remoteHead {
            if let target = remoteHead.pointee.symref_target.map({ String(cString: $0) }),
                target.hasPrefix("refs/heads/")
            {
                let local = "refs/remotes/origin/" + target.dropFirst("refs/heads/".count)
                var existing: OpaquePointer?
                if git_reference_lookup(&existing, repository.pointer, local) == 0 {
                    git_reference_free(existing)
                    try Libgit2.check(
                        git_reference_symbolic_create(
                            &reference, repository.pointer, defaultBranchReference, local, 1, "converge: remote HEAD"),
                        .cacheFailed,
                        "record the default branch of \(display)"
                    )
                    return
                }
            }
            var id = remoteHead.pointee.oid
            var commit: OpaquePointer?
            if git_oid_is_zero(&id) == 0, git_commit_lookup(&commit, repository.pointer, &id) == 0 {
                git_commit_free(commit)
                try Libgit2.check(
                    git_reference_create(&reference, repository.pointer, defaultBranchReference, &id, 1, "converge: remote HEAD"),
                    .cacheFailed,
                    "record the default branch of \(display)"
                )
                return
            }
        }
        // The remote has no HEAD (an empty repository): forget any stale one.
        _ = git_reference_remove(repository.pointer, defaultBranchReference)
    }

    /// What the credentials callback needs; reached through the callback's payload pointer.
    private final class CredentialState {
        let token: String?
        let variable: String
        let tokenIgnored: Bool
        var attempts = 0

        init(token: String?, variable: String, tokenIgnored: Bool) {
            self.token = token
            self.variable = variable
            self.tokenIgnored = tokenIgnored
        }
    }

    /// Offers the token once (user `x-access-token`); a second request means the server
    /// rejected it, so stop rather than loop. Messages name the variable, never its value.
    private static let credentialCallback: git_credential_acquire_cb = { out, _, _, allowedTypes, payload in
        guard let out, let payload else { return GIT_PASSTHROUGH.rawValue }
        let state = Unmanaged<CredentialState>.fromOpaque(payload).takeUnretainedValue()
        state.attempts += 1
        guard let token = state.token else {
            let message =
                state.tokenIgnored
                ? "the server asks for credentials, and Converge sends the token in \(state.variable) only over https://"
                : "the server asks for credentials and \(state.variable) is not set: set it to an access token that can read the repository"
            git_error_set_str(Int32(GIT_ERROR_CALLBACK.rawValue), message)
            return GIT_EAUTH.rawValue
        }
        guard state.attempts == 1 else {
            git_error_set_str(
                Int32(GIT_ERROR_CALLBACK.rawValue),
                "the server rejected the access token in \(state.variable): check that it is valid and can read the repository"
            )
            return GIT_EAUTH.rawValue
        }
        guard allowedTypes & GIT_CREDENTIAL_USERPASS_PLAINTEXT.rawValue != 0 else {
            git_error_set_str(
                Int32(GIT_ERROR_CALLBACK.rawValue),
                "the server does not accept a user name and token; Converge only supports token authentication over https://"
            )
            return GIT_EAUTH.rawValue
        }
        return git_credential_userpass_plaintext_new(out, "x-access-token", token)
    }
}

/// Calls `body` with a `git_strarray` of `strings`, valid only during the call.
func withStringArray<Result>(_ strings: [String], _ body: (UnsafePointer<git_strarray>) -> Result) -> Result {
    let duplicates: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    defer { duplicates.forEach { free($0) } }
    var pointers = duplicates
    return pointers.withUnsafeMutableBufferPointer { buffer in
        var array = git_strarray(strings: buffer.baseAddress, count: buffer.count)
        return body(&array)
    }
}

/// An exclusive `flock` on a file, released by `release()`.
struct FileLock: ~Copyable {
    private let descriptor: Int32

    init(path: String, display: String) throws(GitSourceError) {
        let descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw GitSourceError(
                .cacheFailed,
                "could not create the lock file '\(path)' for \(display): \(String(cString: strerror(errno))). Set cacheDirectory to a writable folder."
            )
        }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                let reason = String(cString: strerror(errno))
                close(descriptor)
                throw GitSourceError(
                    .cacheFailed,
                    "could not lock '\(path)' for \(display): \(reason)."
                )
            }
        }
        self.descriptor = descriptor
    }

    func release() {
        _ = flock(descriptor, LOCK_UN)
        _ = close(descriptor)
    }
}
