import Foundation

/// GitHub REST v3 and Gitea/Forgejo API v1, which copied GitHub's shapes for pull requests,
/// issue comments, reviews and statuses; they differ in pagination, in how a merged commit
/// finds its pull request, and in team membership.
struct GitHubStyleForge: Forge {
    let http: ForgeHTTP
    let kind: ForgeKind
    let repository: String

    private var repo: String { "/repos/\(repository)" }

    private struct User: Decodable {
        var login: String
    }

    private struct Pull: Decodable {
        struct Branch: Decodable {
            var ref: String
            var sha: String
        }
        var number: Int
        var state: String
        var user: User
        var head: Branch
        var base: Branch
        var merged: Bool?
        var mergedAt: String?
        var mergeCommitSha: String?
        var htmlUrl: String?

        var pullRequest: PullRequest {
            let isMerged = merged ?? (mergedAt != nil)
            return PullRequest(
                number: number, state: isMerged ? .merged : (state == "open" ? .open : .closed), author: user.login,
                headCommit: head.sha, baseRef: base.ref, mergeCommit: isMerged ? mergeCommitSha : nil, url: htmlUrl)
        }
    }

    private struct Comment: Decodable {
        var id: Int
        var body: String?
        var user: User
        var createdAt: Date
        var updatedAt: Date
        var htmlUrl: String?

        var comment: ForgeComment {
            ForgeComment(id: id, author: user.login, body: body ?? "", createdAt: createdAt, updatedAt: updatedAt, url: htmlUrl)
        }
    }

    private struct Review: Decodable {
        var id: Int
        var user: User?
        var state: String
        var commitId: String?
        var submittedAt: Date?
        var dismissed: Bool?
    }

    func currentUser() async throws -> String {
        guard let user = try await http.get("/user", as: User.self) else { throw ForgeError(.notFound, "no user for the token") }
        return user.login
    }

    func pullRequest(_ number: Int) async throws -> PullRequest {
        guard let pull = try await http.get("\(repo)/pulls/\(number)", as: Pull.self) else {
            throw ForgeError(.notFound, "\(kind.displayName) has no pull request \(repository)#\(number)")
        }
        return pull.pullRequest
    }

    func pullRequests(withCommit commit: String) async throws -> [PullRequest] {
        switch kind {
        case .gitea:
            // Gitea answers the one pull request that merged the commit, or 404.
            return try await http.get("\(repo)/commits/\(commit)/pull", as: Pull.self, missingIsNil: true).map { [$0.pullRequest] } ?? []
        default:
            return try await http.get("\(repo)/commits/\(commit)/pulls", as: [Pull].self)?.map(\.pullRequest) ?? []
        }
    }

    func comments(on number: Int) async throws -> [ForgeComment] {
        let target = "\(repo)/issues/\(number)/comments"
        switch kind {
        case .gitea:
            // Gitea lists an issue's comments in one answer; it takes no page parameters.
            return try await http.get(target, as: [Comment].self)?.map(\.comment) ?? []
        default:
            return try await http.pages(target, size: 100, sizeParameter: "per_page", as: Comment.self).map(\.comment)
        }
    }

    private struct Body: Encodable {
        var body: String
    }

    func createComment(on number: Int, body: String) async throws -> ForgeComment {
        let answer = try await http.send(.POST, "\(repo)/issues/\(number)/comments", body: Body(body: body))
        return try http.decode(Comment.self, answer?.body ?? Data(), target: "\(repo)/issues/\(number)/comments").comment
    }

    func updateComment(_ id: Int, on number: Int, body: String) async throws -> ForgeComment {
        let answer = try await http.send(.PATCH, "\(repo)/issues/comments/\(id)", body: Body(body: body))
        return try http.decode(Comment.self, answer?.body ?? Data(), target: "\(repo)/issues/comments/\(id)").comment
    }

    func deleteComment(_ id: Int, on number: Int) async throws {
        try await http.send(.DELETE, "\(repo)/issues/comments/\(id)", missingIsNil: true)
    }

    func reviews(of pullRequest: PullRequest) async throws -> [ForgeReview] {
        let target = "\(repo)/pulls/\(pullRequest.number)/reviews"
        let reviews =
            kind == .gitea
            ? try await http.pages(target, size: 50, sizeParameter: "limit", as: Review.self)
            : try await http.pages(target, size: 100, sizeParameter: "per_page", as: Review.self)
        return reviews.compactMap { review in
            guard let reviewer = review.user?.login else { return nil }
            let verdict: ForgeReview.Verdict
            switch review.state {
            case "APPROVED" where review.dismissed != true: verdict = .approved
            case "APPROVED", "CHANGES_REQUESTED", "REQUEST_CHANGES", "DISMISSED": verdict = .withdrawn
            default: return nil  // comments and pending reviews decide nothing
            }
            return ForgeReview(
                name: "\(kind.displayName) review \(review.id) on \(kind.reference(pullRequest.number, repository: repository))",
                reviewer: reviewer, verdict: verdict, commit: review.commitId, submittedAt: review.submittedAt)
        }
    }

    private struct Status: Encodable {
        var state: String
        var description: String
        var context: String
        var targetUrl: String?
    }

    func setStatus(_ status: CommitStatus, on commit: String) async throws {
        try await http.send(
            .POST, "\(repo)/statuses/\(commit)",
            body: Status(
                state: status.state.rawValue, description: status.description, context: status.context, targetUrl: status.targetURL))
    }

    private struct Membership: Decodable {
        var state: String?
    }

    private struct TeamSearch: Decodable {
        struct Team: Decodable {
            var id: Int
            var name: String
        }
        var data: [Team]
    }

    func isMember(_ user: String, of team: String) async throws -> Bool {
        let parts = team.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return false }
        let (org, name) = (pathSegment(parts[0]), parts[1])
        switch kind {
        case .gitea:
            guard
                let found = try await http.get("/orgs/\(org)/teams/search?q=\(pathSegment(name))", as: TeamSearch.self, missingIsNil: true),
                let match = found.data.first(where: { $0.name.lowercased() == name.lowercased() })
            else { return false }
            return try await http.send(.GET, "/teams/\(match.id)/members/\(pathSegment(user))", missingIsNil: true) != nil
        default:
            let membership = try await http.get(
                "/orgs/\(org)/teams/\(pathSegment(name))/memberships/\(pathSegment(user))", as: Membership.self, missingIsNil: true)
            return membership?.state == "active"
        }
    }

    func shutdown() async {
        await http.shutdown()
    }
}
