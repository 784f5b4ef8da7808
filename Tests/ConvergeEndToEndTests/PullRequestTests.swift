import ConvergeForge
import ConvergeTestSupport
import Foundation
import Testing

/// Pull requests on a forge (the forge test server in GitHub, Gitea and GitLab shapes) and a
/// controller on the real Docker engine: the plan posted on the pull request, the status,
/// approvals bound to the reviewed plan, and merges.
@Suite(.serialized) struct PullRequestTests {
    @Test("a pull request touching a protected FirewallPolicy: plan and pending status, an approving review, the merge applies it")
    func protectedFirewallChange() async throws {
        try await PullRequestLab.with(main: { lab in
            var stage2 = ScenarioS1Tests.stage2(try ScenarioS1Tests.examples(for: lab.lab), lab: lab.lab)
            stage2["60-approvals.yaml"] = stage2["60-approvals.yaml"]!.replacingOccurrences(
                of: "actions: [update, delete]", with: "actions: [update, delete]\n  approvers: [netops]")
            return stage2
        }) { pr in
            var final = try ScenarioS1Tests.examples(for: pr.lab.lab)
            final["60-approvals.yaml"] = final["60-approvals.yaml"]!.replacingOccurrences(
                of: "actions: [update, delete]", with: "actions: [update, delete]\n  approvers: [netops]")
            let head = try await pr.open(final)

            let comment = try await pr.planComment(showing: head.prefix(12).description)
            #expect(try await pr.botComments().count == 1, "one comment")
            #expect(comment.contains("FirewallPolicy/\(pr.lab.lab.prefix)-edge"))
            #expect(comment.contains("firewall-changes"))
            #expect(comment.contains("`netops`"))
            #expect(comment.contains("+ rules.allow-http") || comment.contains("allow-http"))
            let digest = try #require(PullRequestLab.digestPrefix(in: comment))
            try await pr.waitForStatus(head, "pending")
            #expect(try await pr.forge.statuses(head).last?.description.contains(digest) == true, "the status names the digest")

            try await Task.sleep(for: .milliseconds(1100))  // the forge's clock counts whole seconds
            #expect(try await pr.forge.review(1, by: "netops") == 202)
            try await pr.waitForStatus(head, "success")

            try await pr.merge(head: head)
            try await eventually("the merged commit is applied", timeout: .seconds(180)) {
                try await pr.controller.sourceStatus(pr.instance)["lastAppliedRevision"] as? String == head
            }
            let runs = try await pr.controller.runs(pr.instance)
            let run = try #require(runs.first { $0["commit"] as? String == head })
            let report = try await pr.controller.run(try #require(run["id"] as? Int))
            let approvals = report["approvals"] as? [[String: Any]] ?? []
            #expect(approvals.count == 1)
            #expect(approvals.first?["approver"] as? String == "netops")
            #expect((approvals.first?["via"] as? String)?.hasPrefix("GitHub review ") == true)
            #expect((approvals.first?["planDigest"] as? String)?.hasPrefix(digest) == true)
            #expect(run["status"] as? String == "succeeded")
        }
    }

    @Test(
        "approvals that do not count: before the plan, on an older commit, by the author, by a non-approver; a new commit drops an approval"
    )
    func approvalsThatDoNotCount() async throws {
        try await PullRequestLab.with(main: { $0.webManifests(color: "blue") }) { pr in
            // Opened and reviewed before the controller hears of it: the review precedes the plan.
            try await pr.forge.deliver(to: "http://127.0.0.1:1/unreachable")
            let first = try await pr.publish(pr.lab.protectedWeb(color: "green"), number: 1)
            try await pr.forge.openPullRequest(author: "dave", head: first, number: 1)
            try await pr.forge.review(1, by: "alice")
            try await pr.forge.deliver(to: "http://127.0.0.1:\(pr.controller.port)/api/v1/webhooks/github")
            #expect(try await pr.forge.comment(1, by: "dave", "/converge plan") == 202)
            let comment = try await pr.planComment(showing: first.prefix(12).description)
            let digest = try #require(PullRequestLab.digestPrefix(in: comment))
            try await pr.waitForStatus(first, "pending")

            // The author, a non-approver and an approval of another digest are answered.
            try await pr.forge.comment(1, by: "dave", "/converge approve \(digest)")
            try await pr.forge.comment(1, by: "mallory", "/converge approve \(digest)")
            try await eventually("both are answered", timeout: .seconds(60)) {
                try await pr.botComments().filter { $0.contains("does not count") }.count == 2
            }
            let replies = try await pr.botComments().filter { $0.contains("does not count") }.joined()
            #expect(replies.contains("dave opened this pull request"))
            #expect(replies.contains("mallory is not among the approvers of ApprovalPolicy/web-changes"))
            #expect(try await pr.status(first) == "pending")

            // A new commit; alice approves the older one.
            let second = try await pr.push(pr.lab.protectedWeb(color: "teal"))
            let secondComment = try await pr.planComment(showing: second.prefix(12).description)
            let secondDigest = try #require(PullRequestLab.digestPrefix(in: secondComment))
            try await Task.sleep(for: .milliseconds(1100))
            try await pr.forge.review(1, by: "alice", commit: first)
            try await pr.forge.comment(1, by: "alice", "/converge approve sha256:ffffffffffffffff")
            try await eventually("the stale digest is answered", timeout: .seconds(60)) {
                try await pr.botComments().contains { $0.contains("not the plan posted now") }
            }
            #expect(try await pr.status(second) == "pending", "neither an older commit's review nor another digest counts")

            // Approved on the head after the plan: success. Then a new commit: a new digest, pending again.
            try await pr.forge.review(1, by: "alice")
            try await pr.waitForStatus(second, "success")
            let third = try await pr.push(pr.lab.protectedWeb(color: "red"))
            let thirdComment = try await pr.planComment(showing: third.prefix(12).description)
            #expect(thirdComment.contains("do not carry over"))
            #expect(PullRequestLab.digestPrefix(in: thirdComment) != secondDigest)
            try await pr.waitForStatus(third, "pending")
            #expect(try await pr.botComments().filter { $0.hasPrefix("<!-- converge:plan") }.count == 1, "still one comment")
            #expect(try await pr.color() == "blue", "nothing is applied before the merge")
        }
    }

    @Test("a merge whose plan drift changed is not applied: the new plan is posted and a new approval applies it")
    func mergeAfterDrift() async throws {
        try await PullRequestLab.with(main: { $0.webManifests(color: "blue") }) { pr in
            let head = try await pr.open(pr.lab.protectedWeb(color: "green"))
            let approved = try #require(PullRequestLab.digestPrefix(in: try await pr.planComment(showing: head.prefix(12).description)))
            try await Task.sleep(for: .milliseconds(1100))
            try await pr.forge.review(1, by: "alice")
            try await pr.waitForStatus(head, "success")

            // Drift: the container is removed by hand, so the merged commit plans a create.
            _ = try await run("/usr/bin/docker", ["rm", "-f", "\(pr.lab.lab.prefix)-web"])
            try await pr.merge(head: head)
            var reposted = ""
            try await eventually("the merged commit's plan is posted", timeout: .seconds(90)) {
                reposted = try await pr.botComments().filter { $0.hasPrefix("<!-- converge:plan") }.joined()
                return PullRequestLab.digestPrefix(in: reposted).map { $0 != approved } ?? false
            }
            #expect(reposted.contains("was merged as"))
            #expect(reposted.contains("do not carry over"))
            try await pr.waitForStatus(head, "pending")
            #expect(try await pr.color() == nil, "not applied")
            let status = try await pr.controller.sourceStatus(pr.instance)
            #expect((status["pendingApproval"] as? [String: Any])?["planDigest"] != nil)

            let digest = try #require(PullRequestLab.digestPrefix(in: reposted))
            #expect(try await pr.forge.comment(1, by: "alice", "/converge approve \(digest)") == 202)
            try await eventually("the new plan is applied", timeout: .seconds(120)) { try await pr.color() == "green" }
            let run = try #require(try await pr.controller.runs(pr.instance).first)
            let report = try await pr.controller.run(try #require(run["id"] as? Int))
            let approval = (report["approvals"] as? [[String: Any]])?.first
            #expect((approval?["via"] as? String)?.hasPrefix("GitHub comment ") == true)
        }
    }

    @Test("a plan past GitHub's comment limit is split and reassembles; invalid manifests give a failure status and the diagnostics")
    func largePlanAndInvalidManifests() async throws {
        try await PullRequestLab.with(main: { $0.webManifests(color: "blue") }) { pr in
            var files = pr.lab.protectedWeb(color: "blue")
            let env = (0..<400).map { "    VAR_\($0): \"\(String(repeating: "v", count: 240))\"" }.joined(separator: "\n")
            files["big.yaml"] = """
                apiVersion: converge.dev/v1alpha1
                kind: Container
                metadata: {name: \(pr.lab.lab.prefix)-big}
                spec:
                  image: converge-lab/busybox:1
                  command: [sleep, "2147483647"]
                  env:
                \(env)
                """
            let head = try await pr.open(files)
            try await pr.waitForStatus(head, "pending")
            let parts = try await pr.botComments().filter { $0.hasPrefix("<!-- converge:plan") }
            #expect(parts.count == 2)
            #expect(parts.allSatisfy { $0.utf16.count <= 65_536 })
            #expect(parts[0].contains("**Plan:**"), "the summary and digest are in the first part")

            // The whole plan, as `converge reconcile --dry-run --output markdown` prints it, is in the joined parts.
            try pr.lab.lab.write(files, into: "pr-files")
            let folder = pr.lab.lab.directory.appendingPathComponent("pr-files")
            let dryRun = try await pr.lab.lab.converge([
                "reconcile", "--dry-run", "--output", "markdown", "--instance", pr.instance, folder.path,
            ])
            #expect(dryRun.exitCode == 2, "\(dryRun.stderr)")
            let joined = PlanComment.content(parts)
            // From the summary on: the source line names the folder here, the commit there.
            let plan = try #require(dryRun.stdout.range(of: "**Plan: ").map { String(dryRun.stdout[$0.lowerBound...]) })
            #expect(plan.utf16.count > 100_000)
            #expect(joined.contains(plan.trimmingCharacters(in: .whitespacesAndNewlines)))
            let digestLine = try #require(dryRun.stdout.components(separatedBy: "\n").first { $0.hasPrefix("Digest: ") })
            #expect(joined.contains(digestLine), "the same plan, digest for digest")

            var broken = files
            broken["web.yaml"] = broken["web.yaml"]!.replacingOccurrences(
                of: "image: converge-lab/busybox:1", with: "imag: converge-lab/busybox:1")
            let invalid = try await pr.push(broken)
            try await pr.waitForStatus(invalid, "failure")
            let comments = try await pr.botComments().filter { $0.hasPrefix("<!-- converge:plan") }
            #expect(comments.count == 1, "the second part is removed")
            #expect(comments.first?.contains("invalid") == true)
            #expect(comments.first?.contains("web.yaml:") == true, "diagnostics with file:line")
        }
    }

    @Test("a pull request that changes a target is not planned: Converge's credentials stay with the targets already merged")
    func changedTargetIsNotPlanned() async throws {
        try await PullRequestLab.with(main: { $0.webManifests(color: "blue") }) { pr in
            var files = pr.lab.webManifests(color: "green")
            files["host.yaml"] = files["host.yaml"]!.replacingOccurrences(
                of: "unix:///var/run/docker.sock", with: "unix://\(pr.lab.lab.directory.path)/elsewhere.sock")
            let head = try await pr.open(files)
            let comment = try await pr.planComment(showing: "Not planned against the live systems")
            #expect(comment.contains("`DockerHost/local`"))
            try await pr.waitForStatus(head, "failure")

            let unchanged = try await pr.push(pr.lab.webManifests(color: "green"))
            try await pr.planComment(showing: unchanged.prefix(12).description)
            try await pr.waitForStatus(unchanged, "success")
        }
    }

    @Test("converge pr plan, from a CI job: posts the plan and the status, and exits 0 once an approval counts")
    func pullRequestPlanCommand() async throws {
        try await Lab.with { lab in
            let forge = try await ForgeTestServer.start(
                flavour: "github", repository: "acme/infra", secret: "unused-secret-000",
                users: [PullRequestLab.bot: PullRequestLab.botToken])
            var failure: (any Error)?
            do {
                let repository = try await lab.gitRepository("checkout")
                let head = try await repository.commit(ControllerLab.protectedWeb(prefix: lab.prefix, color: "green"), message: "green")
                try await forge.openPullRequest(author: "dave", head: head, number: 42)
                let tokenFile = lab.directory.appendingPathComponent("forge-token").path
                try PullRequestLab.botToken.write(toFile: tokenFile, atomically: true, encoding: .utf8)
                let command = [
                    "pr", "plan", "--forge", "github", "--api-url", forge.apiURL, "--repo", "acme/infra", "--pr", "42", "--token-file",
                    tokenFile,
                    "--git", repository.directory.path, "--instance", lab.instance,
                ]
                let first = try await lab.converge(command)
                #expect(first.exitCode == 3, "waiting for approval: \(first.stderr)")
                #expect(first.stdout.contains("\(lab.prefix)-web"), "the plan is printed")
                #expect(try await forge.statuses(head).last?.state == "pending")
                let comments = try await forge.comments(42)
                #expect(comments.count == 1)
                #expect(ForgeTestServer.body(comments[0]).contains("web-changes"))

                try await Task.sleep(for: .milliseconds(1100))
                try await forge.review(42, by: "alice")
                let second = try await lab.converge(command)
                #expect(second.exitCode == 0, "\(second.stderr)")
                #expect(second.stderr.contains("approved by alice"))
                #expect(try await forge.statuses(head).last?.state == "success")
                #expect(try await forge.comments(42).count == 1, "the same comment, not a second one")
                #expect(try await lab.managedContainers().isEmpty, "a plan changes nothing")
            } catch {
                failure = error
            }
            await forge.stop()
            if let failure { throw failure }
        }
    }

    @Test("a pull-request webhook with a bad signature is refused and the forge is not called")
    func badSignature() async throws {
        try await PullRequestLab.with(main: { $0.webManifests(color: "blue") }) { pr in
            _ = try await pr.forge.control(.DELETE, "/requests")
            let payload = #"{"action":"opened","number":1,"pull_request":{"number":1},"repository":{"full_name":"acme/infra"}}"#
            let answer = try await pr.controller.webhook(
                "github", payload: payload, event: "pull_request", secret: "not-the-webhook-secret")
            #expect(answer.status == 401)
            try await Task.sleep(for: .seconds(1))
            #expect(try await pr.forge.requests().isEmpty, "no forge call was made")
        }
    }

    @Test("Gitea and GitLab: the plan, an approval and the merge", arguments: ["gitea", "gitlab"])
    func otherForges(flavour: String) async throws {
        try await PullRequestLab.with(flavour: flavour, main: { $0.webManifests(color: "blue") }) { pr in
            let head = try await pr.open(pr.lab.protectedWeb(color: "green"))
            try await pr.planComment(showing: head.prefix(12).description)
            try await pr.waitForStatus(head, "pending")
            try await Task.sleep(for: .milliseconds(1100))
            try await pr.forge.review(1, by: "alice")
            try await pr.waitForStatus(head, "success")
            try await pr.merge(head: head)
            try await eventually("the merge is applied", timeout: .seconds(120)) { try await pr.color() == "green" }
            let run = try #require(try await pr.controller.runs(pr.instance).first)
            let report = try await pr.controller.run(try #require(run["id"] as? Int))
            let via = ((report["approvals"] as? [[String: Any]])?.first?["via"] as? String) ?? ""
            #expect(via.hasPrefix(flavour == "gitea" ? "Gitea review" : "GitLab approval"))
        }
    }
}
