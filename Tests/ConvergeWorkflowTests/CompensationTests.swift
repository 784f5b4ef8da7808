import ConvergeCore
import ConvergeStore
import ConvergeTestSupport
import ConvergeWorkflow
import Foundation
import Testing

/// Rollback (saga): every step that may have changed something is compensated, in the
/// reverse order of completion, with the snapshot journaled before it acted.
@Suite struct CompensationTests {
    @Test func compensationsRunInTheReverseOrderOfCompletion() async throws {
        try await Harness.with(networks: ["a", "b", "c", "d"]) { harness in
            harness.provider.fail("d", transient: false)
            let run = try await harness.start(with: harness.engine())

            #expect(run.status == .rolledBack)
            let executed = harness.provider.executed
            #expect(executed == ["a", "b", "c", "d"])
            #expect(harness.provider.compensated == executed.reversed(), "the failed step (it may have half-made its object) first")
            let compensations = harness.provider.calls.compactMap { call -> String? in
                if case .compensate(_, let snapshot) = call { return snapshot } else { return nil }
            }
            #expect(compensations == ["before d", "before c", "before b", "before a"], "each gets its own journaled snapshot")
            let journal = try await harness.journal(run.id)
            #expect(journal.values.allSatisfy { $0.status == .compensated })
        }
    }

    @Test func aFailedCompensationIsRecordedAndTheOthersStillRun() async throws {
        try await Harness.with { harness in
            harness.provider.fail("c", transient: false)
            harness.provider.failCompensation("b")
            let run = try await harness.start(with: harness.engine())

            #expect(run.status == .rollbackFailed)
            #expect(harness.provider.compensated == ["c", "b", "a"])
            let journal = try await harness.journal(run.id)
            #expect(journal["b"]?.status == .compensationFailed)
            #expect(journal["a"]?.status == .compensated)
            #expect(run.error?.contains("rollback: create Network/b") == true, "\(run.error ?? "")")
        }
    }

    @Test func withoutRollbackAFailedRunKeepsWhatItDid() async throws {
        try await Harness.with { harness in
            harness.provider.fail("b", transient: false)
            let run = try await harness.start(with: harness.engine(), options: WorkflowOptions(rollback: false))

            #expect(run.status == .failed)
            #expect(harness.provider.compensated.isEmpty)
            #expect(try await harness.store.leases().isEmpty, "a finished run holds no lease")
        }
    }
}
