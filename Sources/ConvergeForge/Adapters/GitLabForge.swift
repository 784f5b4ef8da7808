import Foundation

/// GitLab REST v4: merge requests, their notes, approvals and commit statuses.
struct GitLabForge: Forge {
    let http: ForgeHTTP
    let repository: String
    var kind: ForgeKind { .gitlab }

    private var project: String { "/projects/\(pathSegment(repository))" }

    private struct User: Decodable {
        var id: Int?
        var username: String
    }

    private struct MergeRequest: Decodable {
        var iid: Int
        var state: String
        var author: User
        var sha: String
        var targetBranch: String
        var mergeCommitSha: String?
        var squashCommitSha: String?
        var webUrl: String?

        var pullRequest: PullRequest {
            let state: PullRequest.State = self.state == "merged" ? .merged : (self.state == "opened" ? .open : .closed)
            return PullRequest(
                number: iid, state: state, author: author.username, headCommit: sha, baseRef: targetBranch,
                mergeCommit: state == .merged ? (mergeCommitSha ?? squashCommitSha) : nil, url: webUrl)
        }
    }

    private struct Note: Decodable {
        var id: Int
        var body: String
        var author: User
        var createdAt: Date
        var updatedAt: Date
        var system: Bool?

        var comment: ForgeComment {
            ForgeComment(id: id, author: author.username, body: body, createdAt: createdAt, updatedAt: updatedAt)
        }
    }

    private struct Approvals: Decodable {
        struct Approver: Decodable {
            var user: User
            /// GitLab 17.x and later; older servers do not say when, and such approvals
            /// cannot be placed after the plan they would approve.
            var approvedAt: Date?
        }
        var approvedBy: [Approver]
    }

    func currentUser() async throws -> String {
        guard let user = try await http.get("/user", as: User.self) else { throw ForgeError(.notFound, "no user for the token") }
        return user.username
    }

    func pullRequest(_ number: Int) async throws -> PullRequest {
        guard let request = try await http.get("\(project)/merge_requests/\(number)", as: MergeRequest.self) else {
            throw ForgeError(.notFound, "GitLab has no merge request \(repository)!\(number)")
        }
        return request.pullRequest
    }

    func pullRequests(withCommit commit: String) async throws -> [PullRequest] {
        try await http.get("\(project)/repository/commits/\(commit)/merge_requests", as: [MergeRequest].self)?.map(\.pullRequest) ?? []
    }

    func comments(on number: Int) async throws -> [ForgeComment] {
        try await http.pages(
            "\(project)/merge_requests/\(number)/notes?sort=asc&order_by=created_at", size: 100, sizeParameter: "per_page", as: Note.self
        ).filter { $0.system != true }.map(\.comment)
    }

    private struct Body: Encodable {
        var body: String
    }

    func createComment(on number: Int, body: String) async throws -> ForgeComment {
        let target = "\(project)/merge_requests/\(number)/notes"
        let answer = try await http.send(.POST, target, body: Body(body: body))
        return try http.decode(Note.self, answer?.body ?? Data(), target: target).comment
    }

    func updateComment(_ id: Int, on number: Int, body: String) async throws -> ForgeComment {
        let target = "\(project)/merge_requests/\(number)/notes/\(id)"
        let answer = try await http.send(.PUT, target, body: Body(body: body))
        return try http.decode(Note.self, answer?.body ?? Data(), target: target).comment
    }

    func deleteComment(_ id: Int, on number: Int) async throws {
        try await http.send(.DELETE, "\(project)/merge_requests/\(number)/notes/\(id)", missingIsNil: true)
    }

    func reviews(of pullRequest: PullRequest) async throws -> [ForgeReview] {
        let approvals = try await http.get("\(project)/merge_requests/\(pullRequest.number)/approvals", as: Approvals.self)
        return (approvals?.approvedBy ?? []).map { approver in
            ForgeReview(
                name: "GitLab approval of \(repository)!\(pullRequest.number)", reviewer: approver.user.username, verdict: .approved,
                commit: nil, submittedAt: approver.approvedAt)
        }
    }

    private struct Status: Encodable {
        var state: String
        var name: String
        var description: String
        var targetUrl: String?
    }

    func setStatus(_ status: CommitStatus, on commit: String) async throws {
        let state: String
        switch status.state {
        case .pending: state = "pending"
        case .success: state = "success"
        case .failure, .error: state = "failed"
        }
        do {
            try await http.send(
                .POST, "\(project)/statuses/\(commit)",
                body: Status(state: state, name: status.context, description: status.description, targetUrl: status.targetURL))
        } catch let error as ForgeError where error.code == .rejected && error.message.contains("Cannot transition status") {
            // GitLab keeps a status's state machine: posting the state it already has (pending
            // again, with a new description) is refused, and the status already says it.
            return
        }
    }

    func isMember(_ user: String, of team: String) async throws -> Bool {
        guard let found = try await http.get("/users?username=\(pathSegment(user))", as: [User].self)?.first, let id = found.id else {
            return false
        }
        return try await http.send(.GET, "/groups/\(pathSegment(team))/members/all/\(id)", missingIsNil: true) != nil
    }

    func shutdown() async {
        await http.shutdown()
    }
}
