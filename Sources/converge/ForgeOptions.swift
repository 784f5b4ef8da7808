import ArgumentParser
import ConvergeForge

extension ForgeKind: ExpressibleByArgument {}

/// The controller's pull-request settings: a forge for its `--repo` source.
struct ForgeOptions: ParsableArguments {
    @Option(help: "Plan pull requests into --ref on this forge and take approvals there: github, gitea or gitlab.")
    var forge: ForgeKind?

    @Option(help: "With --forge: its API (default https://api.github.com, https://gitlab.com/api/v4; Gitea: https://HOST/api/v1).")
    var forgeURL: String?

    @Option(help: "With --forge: the repository there, owner/name (GitLab: the project's path).")
    var forgeRepo: String?

    @Option(help: "With --forge: file holding the forge token Converge comments and sets statuses with.")
    var forgeTokenFile: String?

    @Option(help: "With --forge: environment variable holding the forge token.")
    var forgeTokenEnv: String?

    /// The forge, or nil without `--forge`.
    func configuration() throws -> ForgeConfiguration? {
        guard let forge else {
            if forgeRepo != nil || forgeURL != nil || forgeTokenFile != nil || forgeTokenEnv != nil {
                throw ValidationError("--forge-url, --forge-repo and --forge-token-* need --forge github|gitea|gitlab")
            }
            return nil
        }
        guard let forgeRepo else { throw ValidationError("--forge needs --forge-repo owner/name") }
        return try ForgeConfiguration(
            kind: forge, apiURL: forgeURL, repository: forgeRepo,
            token: try ForgeOptions.token(file: forgeTokenFile, environment: forgeTokenEnv))
    }

    /// The token from a file or an environment variable (exactly one).
    static func token(file: String?, environment: String?) throws -> ForgeToken {
        switch (file, environment) {
        case (let file?, nil): return try ForgeToken(file: file)
        case (nil, let variable?): return try ForgeToken(environment: variable)
        default: throw ValidationError("give the forge token with exactly one of a token file or a token environment variable")
        }
    }
}
