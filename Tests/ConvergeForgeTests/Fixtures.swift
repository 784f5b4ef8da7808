import ConvergeCore
import Foundation

@testable import ConvergeForge

let digest = "sha256:" + String(repeating: "0123456789abcdef", count: 4)
let head = String(repeating: "a", count: 40)
let olderHead = String(repeating: "b", count: 40)

/// A plan creating `Container/web` with one field per entry of `fields`, protected by
/// `approvals`.
func testPlan(digest: String = digest, fields: [String: String] = ["image": "app:1"], approvals: [ApprovalRequirement] = []) throws -> Plan
{
    let changes: [[String: Any]] = [
        [
            "resource": "Container/web", "action": "create",
            "fields": fields.sorted { $0.key < $1.key }.map { ["path": $0.key, "after": $0.value, "forcesReplacement": false] },
        ]
    ]
    let object: [String: Any] = [
        "formatVersion": 1, "source": ["repository": "infra", "commit": head], "instance": "web", "digest": digest,
        "summary": ["add": 1, "change": 0, "destroy": 0], "changes": changes, "steps": [],
        "approvals": try JSONSerialization.jsonObject(with: JSONEncoder().encode(approvals)),
    ]
    return try JSONDecoder().decode(Plan.self, from: JSONSerialization.data(withJSONObject: object))
}

func pullRequest(state: PullRequest.State = .open, author: String = "dave", head: String = head) -> PullRequest {
    PullRequest(number: 42, state: state, author: author, headCommit: head, baseRef: "main")
}

let postedAt = Date(timeIntervalSince1970: 1_800_000_000)

func posted(digest: String? = digest, commit: String = head, approvals: [ApprovalRequirement]) -> PostedPlan {
    PostedPlan(
        posting: PlanPosting(source: "web", commit: commit, digest: digest, approvals: approvals, supersedes: nil, part: 1, parts: 1),
        comments: [], postedAt: postedAt)
}

func review(_ user: String, commit: String? = head, after seconds: TimeInterval = 5, verdict: ForgeReview.Verdict = .approved)
    -> ForgeReview
{
    ForgeReview(
        name: "GitHub review \(user)", reviewer: user, verdict: verdict, commit: commit, submittedAt: postedAt.addingTimeInterval(seconds))
}

func comment(_ id: Int, _ user: String, _ body: String, after seconds: TimeInterval = 5) -> ForgeComment {
    let at = postedAt.addingTimeInterval(seconds)
    return ForgeComment(id: id, author: user, body: body, createdAt: at, updatedAt: at)
}
