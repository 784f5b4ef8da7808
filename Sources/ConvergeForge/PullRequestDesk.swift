import ConvergeCore
import ConvergeRuntime
import Foundation
import Synchronization

/// Posts a source's plans on a forge's pull requests, keeps the `converge/plan` status, and
/// reads the approvals given there: what the controller and `converge pr plan` share. Keeps
/// no state of its own: the plan comment's marker says what was posted and when.
public final class PullRequestDesk: Sendable {
    public let forge: any Forge
    /// The source (instance) whose plans this desk posts.
    public let source: String
    private let bot = Mutex<String?>(nil)

    public init(forge: any Forge, source: String) {
        self.forge = forge
        self.source = source
    }

    /// Converge's own user on the forge, asked once: only its comments are plan comments.
    public func botUser() async throws -> String {
        if let known = bot.withLock({ $0 }) { return known }
        let user = try await forge.currentUser()
        bot.withLock { $0 = user }
        return user
    }

    /// The pull request's comments, read once for all that is done on one event.
    public func thread(of pullRequest: PullRequest) async throws -> PullRequestThread {
        PullRequestThread(
            pullRequest: pullRequest, comments: try await forge.comments(on: pullRequest.number), bot: try await botUser())
    }

    /// The plan comment of this source in `thread`, if one was posted.
    public func postedPlan(in thread: PullRequestThread) -> PostedPlan? {
        Self.postedPlan(in: thread.comments, bot: thread.bot, source: source)
    }

    /// The parts of `source`'s plan comment among `comments`, in the order they were made.
    static func postedPlan(in comments: [ForgeComment], bot: String, source: String) -> PostedPlan? {
        let mine = comments.filter { $0.author == bot }.compactMap { comment in
            PlanComment.posting(in: comment.body).map { (comment: comment, posting: $0) }
        }.filter { $0.posting.source == source }.sorted { $0.comment.id < $1.comment.id }
        guard let first = mine.first else { return nil }
        return PostedPlan(posting: first.posting, comments: mine.map(\.comment), postedAt: first.comment.updatedAt)
    }

    /// Posts `outcome` (the plan of `commit`) on the thread's pull request, updating the comment in place
    /// and adding or removing parts as its length needs, and sets the status. A part whose text
    /// is unchanged is left alone, so the same plan of the same commit, posted again, keeps its
    /// time and the reviews given since still count.
    @discardableResult
    public func post(_ outcome: PullRequestPlan, commit: String, in thread: PullRequestThread) async throws -> PostedPlan {
        let pullRequest = thread.pullRequest
        let previous = postedPlan(in: thread)
        var posting = PlanPosting(
            source: source, commit: commit, digest: outcome.plan?.digest, approvals: outcome.plan?.approvals ?? [], supersedes: nil,
            part: 1, parts: 1)
        if let before = previous?.posting, let digest = before.digest {
            posting.supersedes = digest == posting.digest ? before.supersedes : digest
        }
        let body = PlanComment.body(outcome, posting: posting, pullRequest: pullRequest, kind: forge.kind)
        let parts = PlanComment.parts(body, posting: posting, limit: forge.kind.commentLimit)
        let existing = previous?.comments ?? []
        var comments: [ForgeComment] = []
        for (index, text) in parts.enumerated() {
            if index < existing.count {
                let current = existing[index]
                comments.append(
                    current.body == text ? current : try await forge.updateComment(current.id, on: pullRequest.number, body: text))
            } else {
                comments.append(try await forge.createComment(on: pullRequest.number, body: text))
            }
        }
        for surplus in existing.dropFirst(parts.count) {
            try await forge.deleteComment(surplus.id, on: pullRequest.number)
        }
        posting.parts = parts.count
        var status = Self.status(for: outcome)
        status.targetURL = comments[0].url
        try await forge.setStatus(status, on: pullRequest.headCommit)
        return PostedPlan(posting: posting, comments: comments, postedAt: comments[0].updatedAt)
    }

    /// The approvals in `thread` that count for `posted`. Answers each `/converge approve`
    /// that does not count, once, saying why; sets the status to success once every policy
    /// has its approval, pending until then.
    public func review(_ posted: PostedPlan, in thread: PullRequestThread) async throws -> ApprovalReview {
        guard let digest = posted.posting.digest, !posted.posting.approvals.isEmpty else { return ApprovalReview() }
        let pullRequest = thread.pullRequest
        let forge = self.forge
        let verdict = try await ApprovalReview.evaluate(
            posted: posted, pullRequest: pullRequest, reviews: try await forge.reviews(of: pullRequest),
            comments: thread.comments.filter { $0.author != thread.bot }, kind: forge.kind, repository: forge.repository,
            isMember: { try await forge.isMember($0, of: $1) })
        let answered = Set(thread.comments.filter { $0.author == thread.bot }.compactMap { Self.answeredComment(in: $0.body) })
        for refusal in verdict.refusals where !answered.contains(refusal.comment) {
            _ = try await forge.createComment(
                on: pullRequest.number,
                body: "\(Self.replyMarker)\(refusal.comment) -->\n@\(refusal.user): this approval does not count: \(refusal.reason).")
        }
        let short = ApprovalCommand.shortDigest(digest)
        var status =
            verdict.isApproved
            ? CommitStatus(
                state: .success, description: "\(short) approved by \(Set(verdict.grants.map(\.approver)).sorted().joined(separator: ", "))"
            )
            : CommitStatus(
                state: .pending,
                description: "approval needed for \(short) (ApprovalPolicy \(verdict.missing.map(\.policy).joined(separator: ", ")))")
        status.targetURL = posted.comments.first?.url
        try await forge.setStatus(status, on: pullRequest.headCommit)
        return verdict
    }

    static let replyMarker = "<!-- converge:reply "

    private static func answeredComment(in body: String) -> Int? {
        guard body.hasPrefix(replyMarker) else { return nil }
        return Int(body.dropFirst(replyMarker.count).prefix { $0.isNumber })
    }

    /// `converge/plan` for a plan just posted: success when nothing waits for a person.
    static func status(for outcome: PullRequestPlan) -> CommitStatus {
        switch outcome {
        case .invalid: return CommitStatus(state: .failure, description: "the manifests are invalid; see the plan comment")
        case .failed(let error):
            return CommitStatus(state: .failure, description: "planning failed: \(error.split(separator: "\n").first ?? "")")
        case .withheld:
            return CommitStatus(state: .failure, description: "not planned: it adds or changes a target; see the plan comment")
        case .planned(let plan):
            if plan.isEmpty { return CommitStatus(state: .success, description: "no changes: the live systems match this commit") }
            if plan.approvals.isEmpty {
                return CommitStatus(state: .success, description: "\(plan.changes.count) change(s), none needs an approval")
            }
            return CommitStatus(
                state: .pending,
                description:
                    "approval needed for \(ApprovalCommand.shortDigest(plan.digest)) (ApprovalPolicy \(plan.approvals.map(\.policy).joined(separator: ", ")))"
            )
        }
    }
}

/// A pull request and its comments, read once per event: Converge's (the plan comment, its
/// replies) told apart from people's by the forge user that wrote them.
public struct PullRequestThread: Sendable {
    public var pullRequest: PullRequest
    public var comments: [ForgeComment]
    /// Converge's own forge user.
    public var bot: String
}

extension PullRequestPlan {
    /// Decodes `files` (read at `revision`) and plans them against the live systems with
    /// `runtime`, recording nothing.
    ///
    /// With `base` (the files of the branch the pull request merges into), a target manifest
    /// (DockerHost, VCenter, KubernetesCluster: where Converge uses its credentials) that the
    /// pull request adds or changes is not planned: planning it would let whoever opened the
    /// pull request point Converge's credentials at a host of their choosing. It is planned
    /// once merged, where a protected change still waits for its approval.
    public static func make(
        files: [SourceFile], revision: SourceRevision, repository: RepositoryFiles? = nil, runtime: Runtime, base: [SourceFile]? = nil
    ) async -> PullRequestPlan {
        let set: ManifestSet
        do {
            set = try runtime.load(files, repository: repository)
        } catch {
            return .invalid("\(error)")
        }
        if let base {
            let trusted = (try? runtime.load(base)).map {
                Dictionary($0.resources.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            }
            let changed = set.resources.filter { resource in
                guard !runtime.registry.plugins(forTarget: resource.id.kind).isEmpty else { return false }
                guard let before = trusted?[resource.id] else { return true }
                return document(of: resource, in: files) != document(of: before, in: base)
            }
            if !changed.isEmpty {
                return .withheld(
                    "it adds or changes \(changed.map { "`\($0.id)`" }.joined(separator: ", ")), where Converge uses its credentials; "
                        + "a changed target is planned only once merged (and a protected change then still waits for its approval)")
            }
        }
        do {
            return .planned(try await runtime.plan(set, source: revision).plan)
        } catch {
            return .failed("\(error)")
        }
    }

    /// The text of the YAML document that declares `resource`, comments and spacing included:
    /// any edit to it counts as a change.
    static func document(of resource: Resource, in files: [SourceFile]) -> String? {
        guard let file = files.first(where: { $0.path == resource.location.file }) else { return nil }
        let lines = String(decoding: file.bytes, as: UTF8.self).components(separatedBy: "\n")
        let index = min(max(resource.location.line - 1, 0), lines.count)
        let isSeparator = { (line: String) in line.hasPrefix("---") }
        let start = lines[..<index].lastIndex(where: isSeparator).map { $0 + 1 } ?? 0
        let end = lines[index...].firstIndex(where: isSeparator) ?? lines.count
        return lines[start..<end].joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
