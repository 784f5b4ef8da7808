import ConvergeCore
import ConvergeTestSupport
import Foundation
import Testing

@testable import ConvergeForge

/// The three adapters against the forge test server, which answers in each forge's documented
/// shapes: the plan comment is posted once and updated in place, split past the size limit,
/// the status follows the approvals, and people's approvals are read back.
@Suite struct ForgeAdapterTests {
    static let users = ["converge-bot": "forge-test-token-bot"]
    let requirement = ApprovalRequirement(
        policy: "firewall-changes", resources: [ResourceID(kind: "FirewallPolicy", name: "edge")], approvers: ["alice", "@acme/netops"])

    func withForge(_ flavour: String, _ body: (ForgeTestServer, PullRequestDesk) async throws -> Void) async throws {
        let server = try await ForgeTestServer.start(flavour: flavour, repository: "acme/infra", secret: "unused-secret", users: Self.users)
        let forge = try Forges.make(
            try ForgeConfiguration(
                kind: ForgeKind(rawValue: flavour)!, apiURL: server.apiURL, repository: "acme/infra",
                token: try ForgeToken(Self.users["converge-bot"]!)))
        var failure: (any Error)?
        do { try await body(server, PullRequestDesk(forge: forge, source: "web")) } catch { failure = error }
        await forge.shutdown()
        await server.stop()
        if let failure { throw failure }
    }

    /// Waits past the forge clock's second, so what follows is strictly after what came before.
    func nextSecond() async throws {
        try await Task.sleep(for: .milliseconds(1100))
    }

    @Test(arguments: ["github", "gitea", "gitlab"])
    func onePlanCommentUpdatedInPlaceAndAReviewThatApprovesIt(flavour: String) async throws {
        try await withForge(flavour) { server, desk in
            try await server.openPullRequest(author: "dave", head: head)
            let pullRequest = try await desk.forge.pullRequest(1)
            #expect(pullRequest.headCommit == head)
            #expect(pullRequest.author == "dave")
            #expect(pullRequest.state == .open)

            let first = try await desk.post(
                .planned(try testPlan(approvals: [requirement])), commit: head, in: try await desk.thread(of: pullRequest))
            #expect(first.comments.count == 1)
            #expect(try await server.statuses(head).last?.state == "pending")
            let again = try await desk.post(
                .planned(try testPlan(approvals: [requirement])), commit: head, in: try await desk.thread(of: pullRequest))
            #expect(again.postedAt == first.postedAt, "the same plan posted again leaves the comment alone")

            try await nextSecond()
            let newDigest = "sha256:" + String(repeating: "fedcba9876543210", count: 4)
            let second = try await desk.post(
                .planned(try testPlan(digest: newDigest, approvals: [requirement])), commit: head,
                in: try await desk.thread(of: pullRequest))
            #expect(second.comments.map(\.id) == first.comments.map(\.id), "updated in place")
            let comments = try await server.comments(1)
            #expect(comments.count == 1)
            #expect(ForgeTestServer.body(comments[0]).contains("The plan changed since `\(digest)`"))

            try await nextSecond()
            try await server.review(1, by: "alice")
            let review = try await desk.review(
                try #require(desk.postedPlan(in: try await desk.thread(of: pullRequest))), in: try await desk.thread(of: pullRequest))
            #expect(review.isApproved)
            #expect(review.grants.first?.approver == "alice")
            let status = try #require(try await server.statuses(head).last)
            #expect(status.state == "success")
            #expect(status.description.contains("approved by alice"))
        }
    }

    @Test(arguments: ["github", "gitea", "gitlab"])
    func teamsRepliesAndTheMergedPullRequestOfACommit(flavour: String) async throws {
        try await withForge(flavour) { server, desk in
            try await server.team("acme", "netops", members: ["erin"])
            try await server.openPullRequest(author: "dave", head: head)
            let pullRequest = try await desk.forge.pullRequest(1)
            let posted = try await desk.post(
                .planned(try testPlan(approvals: [requirement])), commit: head, in: try await desk.thread(of: pullRequest))
            try await nextSecond()
            try await server.comment(1, by: "mallory", "/converge approve \(ApprovalCommand.shortDigest(digest))")
            _ = try await desk.review(posted, in: try await desk.thread(of: pullRequest))
            _ = try await desk.review(posted, in: try await desk.thread(of: pullRequest))
            let replies = try await server.comments(1).filter { ForgeTestServer.body($0).contains("does not count") }
            #expect(replies.count == 1, "answered once")
            #expect(replies.first.map(ForgeTestServer.body)?.contains("mallory is not among the approvers") == true)
            #expect(try await desk.forge.isMember("erin", of: "acme/netops"))
            #expect(try await desk.forge.isMember("mallory", of: "acme/netops") == false)

            try await server.comment(1, by: "erin", "/converge approve \(ApprovalCommand.shortDigest(digest))")
            let review = try await desk.review(posted, in: try await desk.thread(of: pullRequest))
            #expect(review.grants.first?.approvesAs == "@acme/netops")

            let merge = String(repeating: "c", count: 40)
            try await server.merge(1, as: merge)
            let merged = try await desk.forge.pullRequests(withCommit: merge)
            #expect(merged.map(\.number) == [1])
            #expect(merged.first?.state == .merged)
            #expect(merged.first?.mergeCommit == merge)
        }
    }

    @Test func aPlanPastGitHubsLimitIsSplitAndShrinksBack() async throws {
        try await withForge("github") { server, desk in
            try await server.openPullRequest(author: "dave", head: head)
            let pullRequest = try await desk.forge.pullRequest(1)
            var fields: [String: String] = [:]
            for index in 0..<400 { fields["env.VAR_\(index)"] = String(repeating: "v", count: 240) }
            let big = try testPlan(fields: fields, approvals: [requirement])
            let posted = try await desk.post(.planned(big), commit: head, in: try await desk.thread(of: pullRequest))
            let comments = try await server.comments(1).map(ForgeTestServer.body)
            #expect(comments.count == 2)
            #expect(comments.allSatisfy { $0.utf16.count <= 65_536 })
            let whole = PlanComment.content(comments)
            #expect(whole.contains(PlanRenderer.markdown(big)), "the parts reassemble to the whole plan")
            #expect(posted.comments.count == 2)

            let small = try testPlan(digest: "sha256:" + String(repeating: "1", count: 64), approvals: [requirement])
            try await desk.post(.planned(small), commit: head, in: try await desk.thread(of: pullRequest))
            #expect(try await server.comments(1).count == 1, "the part no longer needed is deleted")
        }
    }
}
