import ConvergeCore
import Foundation
import Testing

@testable import ConvergeForge

@Suite struct PlanCommentTests {
    let requirement = ApprovalRequirement(
        policy: "firewall-changes", resources: [ResourceID(kind: "Container", name: "web")], approvers: ["alice"])

    @Test func aLongPlanIsSplitAtLineBoundariesIntoCommentsThatReassembleToTheWhole() throws {
        var fields: [String: String] = [:]
        for index in 0..<400 { fields["env.VAR_\(index)"] = String(repeating: "v", count: 240) + "\(index)" }
        let plan = try testPlan(fields: fields, approvals: [requirement])
        let posting = PlanPosting(
            source: "web", commit: head, digest: plan.digest, approvals: plan.approvals, supersedes: nil, part: 1, parts: 1)
        let body = PlanComment.body(.planned(plan), posting: posting, pullRequest: pullRequest(), kind: .github)
        #expect(body.utf16.count > 100_000)

        let parts = PlanComment.parts(body, posting: posting, limit: ForgeKind.github.commentLimit)
        #expect(parts.count == 2)
        for part in parts {
            #expect(part.utf16.count <= 65_536)
            #expect(PlanComment.posting(in: part)?.digest == plan.digest)
        }
        #expect(PlanComment.content(parts) == body)
        #expect(parts[0].contains("**Plan:** 1 to add"), "the summary is in the first part")
        #expect(parts[0].contains(plan.digest))
        #expect(parts[0].contains("firewall-changes"), "so are the approvals needed")
        for part in parts.dropLast() {
            let content = PlanComment.content([part]).dropLast(PlanComment.footer.count + 1)
            #expect(content.hasSuffix("\n"), "each part but the last ends at a line break")
        }
        #expect(PlanComment.posting(in: parts[1])?.part == 2)
        #expect(PlanComment.posting(in: parts[1])?.parts == 2)
    }

    @Test func aShortPlanIsOneComment() throws {
        let plan = try testPlan()
        let posting = PlanPosting(source: "web", commit: head, digest: plan.digest, approvals: [], supersedes: nil, part: 1, parts: 1)
        let body = PlanComment.body(.planned(plan), posting: posting, pullRequest: pullRequest(), kind: .github)
        let parts = PlanComment.parts(body, posting: posting, limit: 65_536)
        #expect(parts.count == 1)
        #expect(PlanComment.content(parts) == body)
        #expect(body.contains("Nothing in this plan needs an approval."))
    }

    @Test func invalidManifestsShowTheirDiagnostics() {
        let posting = PlanPosting(source: "web", commit: head, digest: nil, approvals: [], supersedes: nil, part: 1, parts: 1)
        let diagnostics = "web.yaml:4:3: error: spec.image is required"
        let body = PlanComment.body(.invalid(diagnostics), posting: posting, pullRequest: pullRequest(), kind: .gitlab)
        #expect(body.contains("invalid"))
        #expect(body.contains(diagnostics))
        #expect(PullRequestDesk.status(for: .invalid(diagnostics)).state == .failure)
    }

    @Test func aChangedPlanSaysEarlierApprovalsDoNotCarryOver() throws {
        let plan = try testPlan(approvals: [requirement])
        let posting = PlanPosting(
            source: "web", commit: head, digest: plan.digest, approvals: plan.approvals, supersedes: "sha256:old", part: 1, parts: 1)
        let body = PlanComment.body(.planned(plan), posting: posting, pullRequest: pullRequest(), kind: .github)
        #expect(body.contains("The plan changed since `sha256:old` was posted"))
        #expect(body.contains("do not carry over"))
        #expect(body.contains("/converge approve \(ApprovalCommand.shortDigest(plan.digest))"))
    }

    @Test func onlyConvergesOwnMarkedCommentsAreItsPlan() {
        let posting = PlanPosting(source: "web", commit: head, digest: digest, approvals: [], supersedes: nil, part: 1, parts: 1)
        let marked = PlanComment.parts("plan", posting: posting, limit: 65_536)[0]
        let comments = [comment(1, "mallory", marked), comment(2, "converge-bot", "hello"), comment(3, "converge-bot", marked)]
        let found = PullRequestDesk.postedPlan(in: comments, bot: "converge-bot", source: "web")
        #expect(found?.comments.map(\.id) == [3], "a copy of the marker by someone else is not Converge's")
        #expect(PullRequestDesk.postedPlan(in: comments, bot: "converge-bot", source: "other") == nil)
    }

    @Test func commandsAreReadFromTheFirstLine() {
        #expect(ApprovalCommand.parse("/converge approve sha256:0123456789ab") == .approve(digestPrefix: "0123456789ab"))
        #expect(ApprovalCommand.parse("\n  /Converge APPROVE 0123456789AB\nthanks") == .approve(digestPrefix: "0123456789ab"))
        #expect(ApprovalCommand.parse("/converge plan") == .plan)
        #expect(ApprovalCommand.parse("please /converge approve") == nil)
        #expect(ApprovalCommand.parse("LGTM") == nil)
    }
}
