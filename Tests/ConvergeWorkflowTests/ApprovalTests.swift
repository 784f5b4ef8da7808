import ConvergeCore
import ConvergeStore
import ConvergeTestSupport
import ConvergeWorkflow
import Foundation
import Testing

/// Runs that wait for approval: one per plan; a newer plan supersedes a waiting one.
@Suite struct ApprovalTests {
    static let policy = """
        apiVersion: converge.dev/v1alpha1
        kind: ApprovalPolicy
        metadata: {name: networks}
        spec:
          match: {kinds: [Network]}
          approvers: [alice]
        """

    @Test func theSamePlanReusesTheWaitingRun() async throws {
        try await Harness.with(extra: Self.policy) { harness in
            let engine = harness.engine()
            let first = try await harness.start(with: engine)
            #expect(first.status == .awaitingApproval)
            let again = try await harness.start(with: engine)
            #expect(again.id == first.id)
            #expect(try await harness.store.runs(RunFilter(instance: Harness.instance)).count == 1)
            #expect(harness.provider.executed.isEmpty)
        }
    }

    @Test func aWaitingRunWithAnotherPlanIsSuperseded() async throws {
        try await Harness.with(extra: Self.policy) { harness in
            let engine = harness.engine()
            let first = try await harness.start(with: engine)
            let (planned, files) = try await harness.plan(Harness.manifests(["a", "b", "c", "d"], extra: Self.policy), with: engine)
            let second = try await engine.start(planned, manifests: files, options: WorkflowOptions())

            #expect(second.id != first.id)
            #expect(second.status == .awaitingApproval)
            let superseded = try #require(try await harness.store.run(first.id))
            #expect(superseded.status == .superseded)
            #expect(superseded.error?.contains(planned.plan.digest) == true)
            #expect(harness.provider.executed.isEmpty)
        }
    }

    @Test func anApprovalRunsThePlanItWasGivenFor() async throws {
        try await Harness.with(extra: Self.policy) { harness in
            let engine = harness.engine()
            let waiting = try await harness.start(with: engine)
            await #expect(throws: WorkflowError.staleApproval(run: waiting.id, approved: "sha256:other", current: waiting.planDigest)) {
                try await engine.approve(waiting.id, approver: "alice", comment: "", digest: "sha256:other")
            }
            await #expect(throws: WorkflowError.notAnApprover("mallory", allowed: ["alice"])) {
                try await engine.approve(waiting.id, approver: "mallory", comment: "", digest: nil)
            }
            let approved = try await engine.approve(waiting.id, approver: "alice", comment: "ok", digest: waiting.planDigest)
            #expect(approved.status == .succeeded)
            #expect(harness.provider.executed == ["a", "b", "c"])
        }
    }
}
