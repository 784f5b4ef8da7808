import ConvergeCore

/// What a forge's webhook says about a pull request: which one, in which repository, and
/// whether someone asked for a new plan. Opened, reopened, a new commit, a review, a comment,
/// a merge: each is looked at the same way, from the forge's current state.
public struct PullRequestEvent: Sendable, Equatable {
    /// `owner/name` (GitLab: the project's path).
    public var repository: String
    public var number: Int
    /// A `/converge plan` comment: plan again even when the commit did not change.
    public var replan: Bool

    /// The pull-request event in a delivery whose event header is `event`; nil for any other.
    public static func parse(kind: ForgeKind, event: String?, body: [UInt8]) -> PullRequestEvent? {
        guard let event, let payload = try? JSONValue.parse(body) else { return nil }
        let number: Int?
        let repository: String?
        var comment: String?
        switch kind {
        case .github, .gitea:
            repository = payload[path: "repository.full_name"]?.string
            switch event {
            // GitHub: pull_request, pull_request_review. Gitea names review events
            // pull_request_approved, pull_request_rejected, pull_request_comment in
            // X-Gitea-Event (pull_request_review_* in X-Gitea-Event-Type).
            case _ where event.hasPrefix("pull_request"):
                number = payload["number"]?.int ?? payload[path: "pull_request.number"]?.int
            case "issue_comment":
                let isPull = payload[path: "issue.pull_request"] != nil || payload["is_pull"] == .bool(true)
                guard isPull else { return nil }
                number = payload[path: "issue.number"]?.int
                comment = payload[path: "comment.body"]?.string
            default: return nil
            }
        case .gitlab:
            repository = payload[path: "project.path_with_namespace"]?.string
            switch event {
            case "Merge Request Hook":
                number = payload[path: "object_attributes.iid"]?.int
            case "Note Hook":
                guard payload[path: "object_attributes.noteable_type"]?.string == "MergeRequest" else { return nil }
                number = payload[path: "merge_request.iid"]?.int
                comment = payload[path: "object_attributes.note"]?.string
            default: return nil
            }
        }
        guard let number, let repository else { return nil }
        return PullRequestEvent(repository: repository, number: number, replan: comment.map { ApprovalCommand.parse($0) == .plan } ?? false)
    }
}
