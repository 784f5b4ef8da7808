import Foundation

/// What Converge needs from a forge, one thin adapter per REST dialect: read a pull request,
/// its comments and its reviews, write one comment and one commit status, and ask whether a
/// user belongs to a team.
public protocol Forge: Sendable {
    var kind: ForgeKind { get }
    /// `owner/name` (or the GitLab project path).
    var repository: String { get }

    /// The login of the token's user: comments by anyone else are never taken for Converge's.
    func currentUser() async throws -> String
    func pullRequest(_ number: Int) async throws -> PullRequest
    /// The pull requests whose head or merge commit is `commit` (how a merged commit is
    /// traced back to the pull request that was reviewed).
    func pullRequests(withCommit commit: String) async throws -> [PullRequest]
    /// Every comment on the pull request, oldest first (GitLab: notes that are not system notes).
    func comments(on number: Int) async throws -> [ForgeComment]
    func createComment(on number: Int, body: String) async throws -> ForgeComment
    func updateComment(_ id: Int, on number: Int, body: String) async throws -> ForgeComment
    func deleteComment(_ id: Int, on number: Int) async throws
    /// The reviews that decide (approvals, requests for changes, dismissals), oldest first.
    func reviews(of pullRequest: PullRequest) async throws -> [ForgeReview]
    func setStatus(_ status: CommitStatus, on commit: String) async throws
    /// Whether `user` belongs to `team`, written `org/team` (GitLab: a group path).
    func isMember(_ user: String, of team: String) async throws -> Bool
    /// Closes the HTTP client.
    func shutdown() async
}

public enum Forges {
    /// The adapter for `configuration.kind`.
    public static func make(_ configuration: ForgeConfiguration) throws -> any Forge {
        let http = try ForgeHTTP(configuration)
        switch configuration.kind {
        case .github, .gitea: return GitHubStyleForge(http: http, kind: configuration.kind, repository: configuration.repository)
        case .gitlab: return GitLabForge(http: http, repository: configuration.repository)
        }
    }
}

public struct PullRequest: Sendable, Equatable {
    public enum State: String, Sendable {
        case open, closed, merged
    }

    public var number: Int
    public var state: State
    public var author: String
    public var headCommit: String
    /// The branch it would merge into.
    public var baseRef: String
    /// The commit its merge made on the base branch, once merged.
    public var mergeCommit: String?
    public var url: String?

    public init(
        number: Int, state: State, author: String, headCommit: String, baseRef: String, mergeCommit: String? = nil, url: String? = nil
    ) {
        self.number = number
        self.state = state
        self.author = author
        self.headCommit = headCommit
        self.baseRef = baseRef
        self.mergeCommit = mergeCommit
        self.url = url
    }
}

public struct ForgeComment: Sendable, Equatable {
    public var id: Int
    public var author: String
    public var body: String
    public var createdAt: Date
    /// When the body last changed (the forge's clock).
    public var updatedAt: Date
    public var url: String?

    public init(id: Int, author: String, body: String, createdAt: Date, updatedAt: Date, url: String? = nil) {
        self.id = id
        self.author = author
        self.body = body
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.url = url
    }
}

/// A review's decision on a pull request.
public struct ForgeReview: Sendable, Equatable {
    public enum Verdict: Sendable {
        case approved
        /// Changes requested, the approval dismissed or withdrawn: an earlier approval by the
        /// same person no longer stands.
        case withdrawn
    }

    /// How it is named in the run's record (`GitHub review 8812`).
    public var name: String
    public var reviewer: String
    public var verdict: Verdict
    /// The commit reviewed; nil when the forge does not say (GitLab approvals are of the
    /// head at the time they are given).
    public var commit: String?
    /// When it was given (the forge's clock); nil when the forge does not say.
    public var submittedAt: Date?

    public init(name: String, reviewer: String, verdict: Verdict, commit: String?, submittedAt: Date?) {
        self.name = name
        self.reviewer = reviewer
        self.verdict = verdict
        self.commit = commit
        self.submittedAt = submittedAt
    }
}

/// A commit status (GitHub and Gitea statuses, GitLab commit statuses).
public struct CommitStatus: Sendable, Equatable {
    public enum State: String, Sendable {
        case pending, success, failure, error
    }

    public static let context = "converge/plan"

    public var state: State
    /// At most 140 characters (GitHub's limit); longer text is cut.
    public var description: String
    public var context: String
    /// Where the status links: the plan comment, when the forge gives its address.
    public var targetURL: String?

    public init(state: State, description: String, context: String = CommitStatus.context, targetURL: String? = nil) {
        self.state = state
        self.description = description.count > 140 ? String(description.prefix(139)) + "…" : description
        self.context = context
        self.targetURL = targetURL
    }
}
