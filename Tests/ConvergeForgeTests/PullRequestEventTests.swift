import Testing

@testable import ConvergeForge

@Suite struct PullRequestEventTests {
    @Test func githubEvents() {
        let opened = #"{"action":"opened","number":42,"pull_request":{"number":42},"repository":{"full_name":"acme/infra"}}"#
        #expect(
            PullRequestEvent.parse(kind: .github, event: "pull_request", body: Array(opened.utf8))
                == .init(repository: "acme/infra", number: 42, replan: false))
        let comment =
            #"{"action":"created","issue":{"number":7,"pull_request":{"url":"x"}},"comment":{"body":"/converge plan"},"repository":{"full_name":"acme/infra"}}"#
        #expect(PullRequestEvent.parse(kind: .github, event: "issue_comment", body: Array(comment.utf8))?.replan == true)
        let issue =
            #"{"action":"created","issue":{"number":7},"comment":{"body":"/converge plan"},"repository":{"full_name":"acme/infra"}}"#
        #expect(
            PullRequestEvent.parse(kind: .github, event: "issue_comment", body: Array(issue.utf8)) == nil,
            "a plain issue is no pull request")
        #expect(PullRequestEvent.parse(kind: .github, event: "push", body: Array(opened.utf8)) == nil)
    }

    @Test func giteaEvents() {
        let review = #"{"action":"reviewed","number":3,"pull_request":{"number":3},"repository":{"full_name":"acme/infra"}}"#
        #expect(PullRequestEvent.parse(kind: .gitea, event: "pull_request_approved", body: Array(review.utf8))?.number == 3)
        let comment =
            #"{"action":"created","issue":{"number":3},"comment":{"body":"hi"},"is_pull":true,"repository":{"full_name":"acme/infra"}}"#
        #expect(PullRequestEvent.parse(kind: .gitea, event: "issue_comment", body: Array(comment.utf8))?.number == 3)
    }

    @Test func gitlabEvents() {
        let merge =
            #"{"object_kind":"merge_request","project":{"path_with_namespace":"acme/infra"},"object_attributes":{"iid":5,"action":"update"}}"#
        #expect(
            PullRequestEvent.parse(kind: .gitlab, event: "Merge Request Hook", body: Array(merge.utf8))
                == .init(repository: "acme/infra", number: 5, replan: false))
        let note =
            #"{"object_kind":"note","project":{"path_with_namespace":"acme/infra"},"object_attributes":{"noteable_type":"MergeRequest","note":"/converge plan"},"merge_request":{"iid":5}}"#
        #expect(PullRequestEvent.parse(kind: .gitlab, event: "Note Hook", body: Array(note.utf8))?.replan == true)
        let issueNote =
            #"{"object_kind":"note","project":{"path_with_namespace":"acme/infra"},"object_attributes":{"noteable_type":"Issue","note":"x"}}"#
        #expect(PullRequestEvent.parse(kind: .gitlab, event: "Note Hook", body: Array(issueNote.utf8)) == nil)
    }
}
