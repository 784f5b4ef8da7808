import ArgumentParser
import ConvergeCore
import ConvergeForge
import ConvergeGit
import ConvergeRuntime

/// `converge pr plan`: what the controller does for a pull request, from any CI system.
struct PullRequestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pr", abstract: "Pull requests: post their plan for review, with the converge/plan status.",
        subcommands: [PlanCommand.self])

    struct PlanCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "plan",
            abstract: "Plan a pull request's head against the live systems and post the plan on it.",
            discussion: """
                For teams that run no controller: run it on every pull-request event (opened, new commit, \
                review, comment). It posts one comment (updated in place), sets the converge/plan status, \
                answers /converge approve comments that do not count, and sets the status to success once \
                every protected change has its approval. Exit codes: 0 nothing waits (no changes, nothing \
                protected, or approved), 3 waiting for approval, 1 invalid manifests, a failed plan or an error.
                """)

        @Option(help: "The forge: github, gitea or gitlab.")
        var forge: ForgeKind

        @Option(help: "The forge's API (default https://api.github.com, https://gitlab.com/api/v4; Gitea: https://HOST/api/v1).")
        var apiURL: String?

        @Option(help: "The repository on the forge: owner/name (GitLab: the project's path).")
        var repo: String

        @Option(help: "The pull request's number (GitLab: the merge request's iid).")
        var pr: Int

        @Option(help: "File holding the forge token.")
        var tokenFile: String?

        @Option(help: "Environment variable holding the forge token.")
        var tokenEnv: String?

        @Option(
            help:
                "The Git repository to read the head commit from: a local clone holding it (default: .), or a URL, fetched with the forge's pull-request ref."
        )
        var git: String = "."

        @Option(help: "Folder inside the repository holding the manifests.")
        var path: String?

        @Option(help: "Name of the Converge instance the plan is for: it owns the objects labelled with it.")
        var instance: String = ConvergeCommand.defaultInstance

        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let configuration = try ForgeConfiguration(
                kind: forge, apiURL: apiURL, repository: repo, token: try ForgeOptions.token(file: tokenFile, environment: tokenEnv))
            let forge = try Forges.make(configuration)
            do {
                try await plan(with: PullRequestDesk(forge: forge, source: instance))
                await forge.shutdown()
            } catch {
                await forge.shutdown()
                throw error
            }
        }

        private func plan(with desk: PullRequestDesk) async throws {
            let forge = desk.forge
            try await Terminal.run(instance: instance) { runtime in
                let pullRequest = try await forge.pullRequest(pr)
                let isRemote = git.contains("://")
                let snapshot = try await ManifestSource.git(
                    GitSourceRequest(
                        repository: git, ref: isRemote ? forge.kind.headRef(ofPullRequest: pr) : pullRequest.headCommit, path: path,
                        cacheDirectory: GitSourceRequest.defaultCacheDirectory)
                ).load()
                guard snapshot.revision.commit == pullRequest.headCommit else {
                    throw ValidationError(
                        "\(git) gave \(snapshot.revision.commit ?? "no commit"), not the pull request's head \(pullRequest.headCommit); fetch the head first"
                    )
                }
                // Read, never written: what ran last (a PlaybookRun's inputs) is kept in the store.
                let outcome = try await storage.with { store in
                    runtime.useStore(store)
                    return await PullRequestPlan.make(
                        files: snapshot.files, revision: snapshot.revision, repository: snapshot.repository, runtime: runtime)
                }
                switch outcome {
                case .planned(let plan): Terminal.write(PlanRenderer.text(plan, color: false))
                case .invalid(let diagnostics): Terminal.log(diagnostics)
                case .failed(let error): Terminal.log("error: \(error)")
                case .withheld(let reason): Terminal.log("not planned: \(reason)")
                }
                let thread = try await desk.thread(of: pullRequest)
                let posted = try await desk.post(outcome, commit: pullRequest.headCommit, in: thread)
                Terminal.log("posted the plan on \(pullRequest.url ?? "pull request \(pr)") (\(posted.comments.count) comment(s))")
                guard let plan = outcome.plan else { throw ExitCode.failure }
                guard !plan.approvals.isEmpty else { return }
                let review = try await desk.review(posted, in: thread)
                for grant in review.grants { Terminal.log("ApprovalPolicy/\(grant.policy): approved by \(grant.approver) (\(grant.via))") }
                for requirement in review.missing {
                    Terminal.log("ApprovalPolicy/\(requirement.policy): waiting for an approval of \(plan.digest)")
                }
                if !review.isApproved { throw ExitCode(3) }
            }
        }
    }
}
