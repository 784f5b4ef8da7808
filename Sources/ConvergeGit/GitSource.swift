import Clibgit2
import ConvergeCore
import Foundation

/// What to read from Git: a repository, a ref and a folder.
///
/// It exists so every caller (the CLI, the controller's poller, tests) describes a source the
/// same way and `GitSource.load` alone decides how to reach it (open a local repository, or
/// clone/fetch a remote one into a cache).
public struct GitSourceRequest: Sendable, Hashable {
    /// Environment variable read for an HTTPS access token when none is named.
    public static let defaultTokenEnvironmentVariable = "CONVERGE_GIT_TOKEN"
    /// Cache folder used when none is given (relative to the working directory, like the
    /// embedded store under `.converge/`).
    public static let defaultCacheDirectory = ".converge/cache/git"

    /// A local path (working copy or bare repository; its top folder, not a folder inside
    /// it), a `file://` URL or an `https://` URL. Other URL schemes libgit2 knows (`http://`,
    /// `git://`) are fetched as remotes too, but a token is only ever sent over HTTPS.
    public var repository: String
    /// A branch, a tag, a full or abbreviated commit id, or any revision libgit2 understands
    /// (`main~1`); nil means the repository's HEAD (for a remote: its default branch).
    public var ref: String?
    /// A folder inside the repository tree (or a single YAML file); nil means the root.
    public var path: String?
    /// Environment variable holding an HTTPS access token; sent as the password of user
    /// `x-access-token` when the server asks for credentials. Never logged nor shown.
    public var tokenEnvironmentVariable: String
    /// A token given directly (the controller reads it from a Kubernetes Secret); when set,
    /// the environment variable is not read.
    public var token: String?
    /// Where remote repositories are cloned (bare) and later fetched, one subfolder per URL.
    public var cacheDirectory: String

    public init(
        repository: String,
        ref: String? = nil,
        path: String? = nil,
        tokenEnvironmentVariable: String = GitSourceRequest.defaultTokenEnvironmentVariable,
        cacheDirectory: String = GitSourceRequest.defaultCacheDirectory
    ) {
        self.repository = repository
        self.ref = ref
        self.path = path
        self.tokenEnvironmentVariable = tokenEnvironmentVariable
        self.cacheDirectory = cacheDirectory
    }
}

/// The manifests of one commit, ready for decoding.
///
/// It exists so the rest of Converge never deals with Git: it gets the exact revision (for
/// plans, digests and reports) and the raw bytes of every YAML file, in a stable order.
public struct GitSnapshot: Sendable, Hashable {
    /// Where the files came from; `commit` is always the full 40-hex commit id.
    public var revision: SourceRevision
    /// Every `*.yaml` / `*.yml` blob under `path`, recursively, with paths relative to the
    /// repository root (`manifests/app.yaml`), sorted by path (byte order).
    public var files: [SourceFile]

    public init(revision: SourceRevision, files: [SourceFile]) {
        self.revision = revision
        self.files = files
    }
}

/// Reads manifest files straight from a commit's tree with libgit2: no checkout, no `git`
/// command, the working tree (and its uncommitted changes) is never looked at.
///
/// It exists so a reconcile is always tied to one exact commit, whatever state the folder on
/// disk is in, and so remote repositories need no working copy at all.
public enum GitSource {
    /// Loads the YAML files of `request.path` at `request.ref`.
    ///
    /// A local repository is opened in place. A remote one is cloned bare into
    /// `request.cacheDirectory` on first use and fetched (all branches and tags, pruned) on
    /// every later call, so a new commit on a branch is picked up by the next load.
    ///
    /// - Throws: `GitSourceError` only.
    public static func load(_ request: GitSourceRequest) throws -> GitSnapshot {
        Libgit2.ensureInitialized()
        Libgit2.clearError()
        let display = URLRedaction.redact(request.repository)
        let token = request.token ?? Self.token(from: request.tokenEnvironmentVariable)
        do {
            return try loadUnchecked(request, display: display, token: token)
        } catch {
            // Belt and braces: whatever path an error took, the token never leaves.
            throw GitSourceError(error.kind, URLRedaction.scrub(error.message, secret: token), code: error.code)
        }
    }

    private static func token(from variable: String) -> String? {
        guard !variable.isEmpty,
              let value = ProcessInfo.processInfo.environment[variable],
              !value.isEmpty
        else { return nil }
        return value
    }

    private static func loadUnchecked(
        _ request: GitSourceRequest,
        display: String,
        token: String?
    ) throws(GitSourceError) -> GitSnapshot {
        let path = try normalize(path: request.path, display: display)
        let repository: Repository
        let isCache: Bool
        if let url = remoteURL(request.repository) {
            repository = try RemoteCache.synchronize(
                url: url,
                display: display,
                cacheDirectory: request.cacheDirectory,
                token: token,
                tokenVariable: request.tokenEnvironmentVariable,
                ref: request.ref
            )
            isCache = true
        } else {
            repository = try Repository.openLocal(request.repository)
            isCache = false
        }
        let commit = try repository.resolveCommit(request.ref, isCache: isCache, display: display)
        let files = try TreeReader.yamlFiles(
            in: commit,
            repository: repository,
            path: path,
            display: display
        )
        let revision = SourceRevision(
            repository: display,
            ref: request.ref,
            commit: commit.id,
            path: path
        )
        return GitSnapshot(revision: revision, files: files)
    }

    /// The files beside the manifests at `commit` of the repository `request` names, read from
    /// the same local repository or cache as the manifests (no fetch: the commit is there).
    public static func repositoryFiles(_ request: GitSourceRequest, commit: String) -> RepositoryFiles {
        let display = URLRedaction.redact(request.repository)
        let location: String
        if let url = remoteURL(request.repository) {
            location = URL(fileURLWithPath: request.cacheDirectory).standardizedFileURL.path + "/" + RemoteCache.folderName(for: url)
        } else {
            location = request.repository
        }
        return RepositoryFiles(origin: "commit \(commit.prefix(12)) of \(display)", base: RepositoryFiles.base(ofSourcePath: request.path)) { folder in
            Libgit2.ensureInitialized()
            let repository = try Repository.openLocal(location)
            let resolved = try repository.resolveCommit(commit, isCache: false, display: display)
            return try TreeReader.files(in: resolved, repository: repository, folder: folder, display: display)
        }
    }

    /// The URL to fetch when `repository` is remote, nil when it is a local path.
    static func remoteURL(_ repository: String) -> String? {
        if repository.contains("://") { return repository }
        // scp-like syntax (`git@host:org/repo.git`) when no such local path exists.
        if let at = repository.firstIndex(of: "@"),
           let colon = repository[at...].firstIndex(of: ":"),
           !repository[..<colon].contains("/"),
           !FileManager.default.fileExists(atPath: repository)
        {
            return repository
        }
        return nil
    }

    /// `./manifests//prod/` → `manifests/prod`; empty or `.` → nil (the root).
    static func normalize(path: String?, display: String) throws(GitSourceError) -> String? {
        guard let path else { return nil }
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        if parts.contains("..") {
            throw GitSourceError(
                .unsupportedPath,
                "path '\(path)' leaves the repository \(display): give a folder relative to the repository root, without '..'."
            )
        }
        return parts.isEmpty ? nil : parts.joined(separator: "/")
    }
}
