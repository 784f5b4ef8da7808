import ArgumentParser
import ConvergeCore
import ConvergeGit
import ConvergeRuntime

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

    var source: ManifestSource {
        guard let repo else { return .folder(folder ?? ".") }
        return .git(
            GitSourceRequest(
                repository: repo, ref: ref, path: path, tokenEnvironmentVariable: tokenEnv,
                cacheDirectory: GitSourceRequest.defaultCacheDirectory))
    }

    func load() async throws -> ManifestSource.Snapshot {
        try await source.load()
    }
}
