import ConvergeTestSupport
import Foundation
import Testing

/// A controller lab with a forge: the forge test server (GitHub, Gitea or GitLab shapes)
/// whose pull requests' heads are published in the served repository under the forge's ref,
/// and a controller that plans them, posting as `converge-bot`.
struct PullRequestLab {
    static let bot = "converge-bot"
    static let botToken = "forge-test-token-bot"

    let lab: ControllerLab
    let forge: ForgeTestServer
    let controller: ControllerProcess

    /// Pushes `main` to the lab's repository, starts the forge and a controller for it, and
    /// waits until `main` is applied (or waits for approval, `appliedFirst: false`).
    static func with(
        flavour: String = "github", main: (ControllerLab) throws -> [String: String], appliedFirst: Bool = true,
        _ body: (PullRequestLab) async throws -> Void
    ) async throws {
        try await ControllerLab.with { lab in
            let forge = try await ForgeTestServer.start(
                flavour: flavour, repository: "acme/infra", secret: ControllerLab.webhookSecret, users: [bot: botToken])
            var failure: (any Error)?
            do {
                let tokenFile = lab.lab.directory.appendingPathComponent("forge-token")
                try botToken.write(to: tokenFile, atomically: true, encoding: .utf8)
                let commit = try await lab.push(try main(lab))
                let controller = try await lab.startController([
                    "--forge", flavour, "--forge-url", forge.apiURL, "--forge-repo", "acme/infra", "--forge-token-file", tokenFile.path,
                ])
                try await forge.deliver(to: "http://127.0.0.1:\(controller.port)/api/v1/webhooks/\(flavour)")
                if appliedFirst {
                    try await eventually("main is applied", timeout: .seconds(180)) {
                        try await controller.sourceStatus(lab.lab.instance)["lastAppliedRevision"] as? String == commit
                    }
                }
                try await body(PullRequestLab(lab: lab, forge: forge, controller: controller))
            } catch {
                failure = error
            }
            await forge.stop()
            if let failure { throw failure }
        }
    }

    var instance: String { lab.lab.instance }

    /// Commits `files` and publishes the commit as pull request `number`'s head.
    @discardableResult
    func publish(_ files: [String: String], number: Int, message: String = "change") async throws -> String {
        let commit = try await lab.work.commit(files, message: message)
        let ref = forge.flavour == "gitlab" ? "refs/merge-requests/\(number)/head" : "refs/pull/\(number)/head"
        try await lab.work.git("push", "-q", "-f", lab.served.path, "HEAD:\(ref)")
        return commit
    }

    /// Opens pull request `number` by `author` with `files` as its head; returns the head.
    @discardableResult
    func open(_ files: [String: String], number: Int = 1, author: String = "dave") async throws -> String {
        let head = try await publish(files, number: number)
        #expect(try await forge.openPullRequest(author: author, head: head, number: number) == 202)
        return head
    }

    /// Pushes a new head to pull request `number`.
    @discardableResult
    func push(_ files: [String: String], to number: Int = 1) async throws -> String {
        let head = try await publish(files, number: number)
        #expect(try await forge.push(number, head: head) == 202)
        return head
    }

    /// Merges pull request `number` by fast-forwarding main to `head`: the forge's webhook
    /// for the merge, and the push of main.
    func merge(_ number: Int = 1, head: String) async throws {
        try await lab.work.git("push", "-q", lab.served.path, "\(head):refs/heads/main")
        #expect(try await forge.merge(number, as: head) == 202)
        let push = #"{"ref":"refs/heads/main","after":"\#(head)","repository":{"clone_url":"\#(lab.repositoryURL)"}}"#
        let event = forge.flavour == "gitlab" ? "Push Hook" : "push"
        #expect(try await controller.webhook(forge.flavour, payload: push, event: event).status == 202)
    }

    /// The bodies of Converge's comments on pull request `number`, oldest first.
    func botComments(_ number: Int = 1) async throws -> [String] {
        try await forge.comments(number).filter { ForgeTestServer.author($0) == Self.bot }.map(ForgeTestServer.body)
    }

    /// Waits until Converge's plan comment on pull request `number` shows `commit`, and returns it.
    @discardableResult
    func planComment(_ number: Int = 1, showing text: String) async throws -> String {
        var found = ""
        try await eventually("the plan comment shows \(text.prefix(40))", timeout: .seconds(90)) {
            found = try await botComments(number).filter { $0.hasPrefix("<!-- converge:plan") }.joined()
            return found.contains(text)
        }
        return found
    }

    /// The state of the last `converge/plan` status on `commit`.
    func status(_ commit: String) async throws -> String? {
        try await forge.statuses(commit).last?.state
    }

    func waitForStatus(_ commit: String, _ state: String) async throws {
        try await eventually("the status of \(commit.prefix(12)) is \(state)", timeout: .seconds(90)) {
            try await status(commit) == state
        }
    }

    /// The digest the plan comment asks to approve (`/converge approve sha256:…`).
    static func digestPrefix(in comment: String) -> String? {
        guard let range = comment.range(of: #"/converge approve (sha256:[0-9a-f]+)"#, options: .regularExpression) else { return nil }
        return String(comment[range].dropFirst("/converge approve ".count))
    }

    /// The value of `COLOR` in the lab's web container, nil when it does not exist.
    func color() async throws -> String? {
        guard let env = try? await lab.lab.engine.inspectContainer("\(lab.lab.prefix)-web").config?.env else { return nil }
        return env.first { $0.hasPrefix("COLOR=") }.map { String($0.dropFirst("COLOR=".count)) }
    }
}

extension ControllerLab {
    /// The web container of `color`, guarded by an ApprovalPolicy on Containers that alice (or
    /// the team acme/netops) approves.
    func protectedWeb(color: String) -> [String: String] {
        Self.protectedWeb(prefix: lab.prefix, color: color)
    }

    static func protectedWeb(prefix: String, color: String) -> [String: String] {
        var files = webManifests(prefix: prefix, color: color)
        files["policy.yaml"] = """
            apiVersion: converge.dev/v1alpha1
            kind: ApprovalPolicy
            metadata: {name: web-changes}
            spec:
              match: {kinds: [Container]}
              approvers: [alice, "@acme/netops"]
            """
        return files
    }
}
