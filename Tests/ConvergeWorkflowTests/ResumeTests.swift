import ConvergeCore
import ConvergeStore
import ConvergeTestSupport
import ConvergeWorkflow
import Foundation
import Testing

/// A run stopped by a fault (as by a crash) is resumed by another engine: finished steps are
/// skipped, a step cut off before its end was journaled runs again.
@Suite struct ResumeTests {
    /// A hook that stops the run at `point` of step `index`.
    static func crash(at point: FaultPoint, step index: Int) -> FaultHook {
        { at, step in if at == point, step.index == index { throw Crash() } }
    }

    /// An engine for another process, which knows the first one (`engine-a`) is gone.
    static func successor(_ harness: Harness) -> WorkflowEngine {
        harness.engine(owner: "engine-b", liveness: ProcessLiveness { $0 == "engine-a" })
    }

    @Test func stepsJournaledAsFinishedAreNotRunAgain() async throws {
        try await Harness.with { harness in
            let crashing = harness.engine(faults: Self.crash(at: .afterStep, step: 1))
            await #expect(throws: Crash.self) { try await harness.start(with: crashing) }
            let stopped = try #require(try await harness.onlyRun())
            #expect(stopped.status == .running, "stopped, not failed: resumable")
            #expect(try await harness.journal(stopped.id).mapValues(\.status) == ["a": .succeeded, "b": .succeeded])

            let resumed = try await Self.successor(harness).resumeInterrupted()
            #expect(resumed.map(\.id) == [stopped.id])
            #expect(resumed.first?.status == .succeeded)
            #expect(["a", "b", "c"].map(harness.provider.executions(of:)) == [1, 1, 1])
            #expect(try await harness.journal(stopped.id).mapValues(\.attempts) == ["a": 1, "b": 1, "c": 1])
        }
    }

    @Test func aStepCutOffBeforeItsEndWasJournaledRunsAgain() async throws {
        try await Harness.with { harness in
            let crashing = harness.engine(faults: Self.crash(at: .beforeJournal, step: 1))
            await #expect(throws: Crash.self) { try await harness.start(with: crashing) }
            let stopped = try #require(try await harness.onlyRun())
            #expect(try await harness.journal(stopped.id)["b"]?.status == .running)

            let resumed = try await Self.successor(harness).resume(stopped.id)
            #expect(resumed.status == .succeeded)
            #expect(["a", "b", "c"].map(harness.provider.executions(of:)) == [1, 2, 1])
            #expect(try await harness.journal(stopped.id).mapValues(\.attempts) == ["a": 1, "b": 2, "c": 1])
            #expect(
                harness.provider.calls.filter { $0 == .snapshot("b") }.count == 1,
                "the cut-off step keeps the snapshot taken before it first acted")
        }
    }

    @Test func aRunIsNotResumedWhileItsHolderLivesAndItsLeasesLast() async throws {
        try await Harness.with { harness in
            await #expect(throws: Crash.self) {
                try await harness.start(with: harness.engine(faults: Self.crash(at: .beforeStep, step: 0)))
            }
            let stopped = try #require(try await harness.onlyRun())

            // Another process that cannot tell whether engine-a lives waits for its leases.
            let other = harness.engine(owner: "engine-b")
            do {
                _ = try await other.resume(stopped.id)
                Issue.record("resumed while engine-a's leases last")
            } catch let error as WorkflowError {
                guard error.code == .resourcesHeld, let lease = error.lease else { throw error }
                #expect(lease.owner == "engine-a")
            }
            #expect(harness.provider.executed.isEmpty)

            // Past the leases' TTL on its clock, it takes the run over.
            let later = harness.engine(owner: "engine-b", clock: ManualClock(now: Date().addingTimeInterval(60)))
            #expect(try await later.resume(stopped.id).status == .succeeded)
            #expect(harness.provider.executed == ["a", "b", "c"])
        }
    }
}
