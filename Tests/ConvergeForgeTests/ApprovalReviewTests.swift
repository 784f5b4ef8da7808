import ConvergeCore
import Foundation
import Testing

@testable import ConvergeForge

/// Which approvals count for a posted plan: bound to the head commit, the time the plan was
/// posted, its digest, the policy's approvers and the author rule.
@Suite struct ApprovalReviewTests {
    let firewall = ApprovalRequirement(
        policy: "firewall-changes", resources: [ResourceID(kind: "FirewallPolicy", name: "edge")], approvers: ["alice", "@acme/netops"])

    func evaluate(
        _ requirements: [ApprovalRequirement]? = nil, reviews: [ForgeReview] = [], comments: [ForgeComment] = [],
        pullRequest: PullRequest = pullRequest(), posted: PostedPlan? = nil, teams: [String: [String]] = ["acme/netops": ["erin"]]
    ) async throws -> ApprovalReview {
        try await ApprovalReview.evaluate(
            posted: posted ?? ConvergeForgeTests.posted(approvals: requirements ?? [firewall]), pullRequest: pullRequest,
            reviews: reviews, comments: comments, kind: .github, repository: "acme/infra",
            isMember: { user, team in teams[team]?.contains(user) ?? false })
    }

    @Test func anApprovingReviewOfTheHeadAfterThePlanCounts() async throws {
        let result = try await evaluate(reviews: [review("alice")])
        #expect(result.isApproved)
        #expect(result.grants == [.init(policy: "firewall-changes", approver: "alice", approvesAs: "alice", via: "GitHub review alice")])
    }

    @Test func aReviewOfAnOlderCommitDoesNotCount() async throws {
        #expect(try await evaluate(reviews: [review("alice", commit: olderHead)]).isApproved == false)
    }

    @Test func aReviewBeforeThePlanWasPostedDoesNotCount() async throws {
        #expect(try await evaluate(reviews: [review("alice", after: -30)]).isApproved == false)
        #expect(try await evaluate(reviews: [review("alice", after: 0.2)]).isApproved == false, "the same second: order unknown")
    }

    @Test func aLaterRequestForChangesWithdrawsAnApproval() async throws {
        let reviews = [review("alice", after: 5), review("alice", after: 9, verdict: .withdrawn)]
        #expect(try await evaluate(reviews: reviews).isApproved == false)
    }

    @Test func theAuthorCannotApproveUnlessThePolicyAllowsIt() async throws {
        let own = try await evaluate(
            comments: [comment(7, "dave", "/converge approve \(ApprovalCommand.shortDigest(digest))")],
            pullRequest: pullRequest(author: "dave"), teams: ["acme/netops": ["dave"]])
        #expect(own.isApproved == false)
        #expect(own.refusals.map(\.comment) == [7])
        #expect(own.refusals.first?.reason.contains("does not allow self-approval") == true)

        var lenient = firewall
        lenient.allowSelfApproval = true
        let allowed = try await evaluate(
            [lenient], comments: [comment(7, "dave", "/converge approve \(ApprovalCommand.shortDigest(digest))")],
            pullRequest: pullRequest(author: "dave"), teams: ["acme/netops": ["dave"]])
        #expect(allowed.isApproved)
        #expect(allowed.grants.first?.approvesAs == "@acme/netops")
    }

    @Test func aTeamMemberApprovesAsTheTeam() async throws {
        let result = try await evaluate(reviews: [review("erin")])
        #expect(result.grants.first?.approvesAs == "@acme/netops")
    }

    @Test func aNonApproversCommandIsAnsweredWithWhy() async throws {
        let result = try await evaluate(comments: [comment(9, "mallory", "/converge approve \(ApprovalCommand.shortDigest(digest))")])
        #expect(result.isApproved == false)
        #expect(result.refusals.count == 1)
        #expect(result.refusals.first?.reason.contains("mallory is not among the approvers of ApprovalPolicy/firewall-changes") == true)
    }

    @Test func aCommandMustNameThisPlansDigestWithEnoughDigits() async throws {
        let wrong = try await evaluate(comments: [comment(3, "alice", "/converge approve sha256:ffffffffffffffff")])
        #expect(wrong.isApproved == false)
        #expect(wrong.refusals.first?.reason.contains("not the plan posted now") == true)
        let short = try await evaluate(comments: [comment(4, "alice", "/converge approve sha256:0123")])
        #expect(short.isApproved == false)
        #expect(short.refusals.first?.reason.contains("at least 12 hex digits") == true)
        let right = try await evaluate(comments: [comment(5, "alice", "/converge approve sha256:0123456789ab")])
        #expect(right.isApproved)
        #expect(right.grants.first?.via == "GitHub comment 5 on acme/infra#42")
    }

    @Test func everyPolicyNeedsItsOwnApprover() async throws {
        let vm = ApprovalRequirement(policy: "vm-changes", resources: [ResourceID(kind: "VirtualMachine", name: "db")], approvers: ["bob"])
        let one = try await evaluate([firewall, vm], reviews: [review("alice")])
        #expect(one.missing.map(\.policy) == ["vm-changes"])
        let both = try await evaluate([firewall, vm], reviews: [review("alice"), review("bob")])
        #expect(both.isApproved)
    }

    @Test func anOpenPullRequestsPlanMustBeOfItsHead() async throws {
        // The head moved and the plan of the new one is not posted yet: nothing counts.
        let result = try await evaluate(
            reviews: [review("alice", commit: olderHead)], pullRequest: pullRequest(head: olderHead),
            posted: posted(commit: head, approvals: [firewall]))
        #expect(result.isApproved == false)
    }
}
