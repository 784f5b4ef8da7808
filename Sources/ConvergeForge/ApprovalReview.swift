import ConvergeCore
import Foundation

/// Decides which approvals on a pull request count for the plan posted on it. The rule that
/// keeps an approval bound to what was reviewed: a review counts only when it approves the
/// head commit after the plan comment showed this digest (the comment's last change, on the
/// forge's own clock: a review in the same second does not count, the order being unknown);
/// a `/converge approve` comment counts only when it names this digest. A new commit, or
/// drift that changes the plan, re-posts the comment, so earlier reviews fall before it.
public struct ApprovalReview: Sendable {
    /// A policy's requirement met by one person.
    public struct Grant: Sendable, Equatable {
        public var policy: String
        public var approver: String
        /// The policy's `approvers` entry they qualify through (themselves, or a team).
        public var approvesAs: String
        /// The forge object (`GitHub review 8812 on acme/infra#42`).
        public var via: String
    }

    /// A `/converge approve` that does not count, and why (answered on the pull request).
    public struct Refusal: Sendable, Equatable {
        public var comment: Int
        public var user: String
        public var reason: String
    }

    public var grants: [Grant] = []
    public var missing: [ApprovalRequirement] = []
    public var refusals: [Refusal] = []

    /// Every requirement has a grant.
    public var isApproved: Bool { missing.isEmpty }

    /// Reviews `reviews` and `comments` (people's, not Converge's) of `pullRequest` against the
    /// plan `posted` (its digest, requirements, and when it was posted). `isMember` answers
    /// team membership for approvers written `@org/team`.
    public static func evaluate(
        posted: PostedPlan, pullRequest: PullRequest, reviews: [ForgeReview], comments: [ForgeComment], kind: ForgeKind,
        repository: String, isMember: (String, String) async throws -> Bool
    ) async throws -> ApprovalReview {
        var result = ApprovalReview()
        let requirements = posted.posting.approvals
        guard let digest = posted.posting.digest else {
            result.missing = requirements
            return result
        }
        // An open pull request's plan must be of its head; after a merge, the plan may be the
        // merged commit's, reviewed on the (frozen) head.
        guard pullRequest.state != .open || posted.posting.commit == pullRequest.headCommit else {
            result.missing = requirements
            return result
        }
        var candidates: [(user: String, via: String, comment: Int?)] = []
        var latest: [String: ForgeReview] = [:]
        for review in reviews { latest[review.reviewer] = review }
        for review in reviews where latest[review.reviewer] == review && review.verdict == .approved {
            guard review.commit == nil || review.commit == pullRequest.headCommit,
                let submitted = review.submittedAt, floor(submitted.timeIntervalSince1970) > floor(posted.postedAt.timeIntervalSince1970)
            else { continue }
            candidates.append((review.reviewer, review.name, nil))
        }
        for comment in comments {
            guard case .approve(let prefix) = ApprovalCommand.parse(comment.body) else { continue }
            let via = "\(kind.displayName) comment \(comment.id) on \(kind.reference(pullRequest.number, repository: repository))"
            let isNew = comment.createdAt >= posted.postedAt
            if prefix.count < ApprovalCommand.minimumDigits || !prefix.allSatisfy(\.isHexDigit) {
                if isNew {
                    result.refusals.append(
                        Refusal(
                            comment: comment.id, user: comment.author,
                            reason: "an approval must name the plan's digest with at least \(ApprovalCommand.minimumDigits) hex digits: "
                                + "`/converge approve \(ApprovalCommand.shortDigest(digest))`"))
                }
                continue
            }
            guard digest.hasPrefix("sha256:" + prefix) else {
                if isNew {
                    result.refusals.append(
                        Refusal(
                            comment: comment.id, user: comment.author,
                            reason: "it approves `sha256:\(prefix)`, which is not the plan posted now (`\(digest)`)"))
                }
                continue
            }
            candidates.append((comment.author, via, comment.id))
        }

        var reasons: [String: [String]] = [:]
        var qualified: Set<String> = []
        for requirement in requirements {
            var granted: Grant?
            for candidate in candidates {
                if candidate.user == pullRequest.author && !requirement.allowSelfApproval {
                    reasons[candidate.user, default: []].append(
                        "\(candidate.user) opened this pull request, and ApprovalPolicy/\(requirement.policy) does not allow self-approval")
                    continue
                }
                guard let entry = try await entry(of: candidate.user, in: requirement.approvers, isMember: isMember) else {
                    reasons[candidate.user, default: []].append(
                        "\(candidate.user) is not among the approvers of ApprovalPolicy/\(requirement.policy) "
                            + "(\(requirement.approvers.joined(separator: ", ")))")
                    continue
                }
                qualified.insert(candidate.user)
                if granted == nil {
                    granted = Grant(policy: requirement.policy, approver: candidate.user, approvesAs: entry, via: candidate.via)
                }
            }
            if let granted { result.grants.append(granted) } else { result.missing.append(requirement) }
        }
        for candidate in candidates where candidate.comment != nil && !qualified.contains(candidate.user) {
            let why =
                reasons[candidate.user].map { Array(Set($0)).sorted().joined(separator: "; ") } ?? "nothing in this plan needs approval"
            result.refusals.append(Refusal(comment: candidate.comment!, user: candidate.user, reason: why))
        }
        return result
    }

    /// The entry of `approvers` that lets `user` approve: their name, a team they belong to,
    /// or `user` itself when the policy names no one (anyone may).
    static func entry(of user: String, in approvers: [String], isMember: (String, String) async throws -> Bool) async throws -> String? {
        if approvers.isEmpty { return user }
        if approvers.contains(where: { $0.lowercased() == user.lowercased() }) { return user }
        for team in approvers where team.hasPrefix("@") && team.contains("/") {
            if try await isMember(user, String(team.dropFirst())) { return team }
        }
        return nil
    }
}

/// The plan comment found on a pull request: what it records and when it was posted.
public struct PostedPlan: Sendable, Equatable {
    public var posting: PlanPosting
    /// Its parts, in order.
    public var comments: [ForgeComment]
    /// When the first part last changed, on the forge's clock.
    public var postedAt: Date
}
