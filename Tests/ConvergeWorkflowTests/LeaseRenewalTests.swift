import ConvergeCore
import ConvergeStore
import ConvergeTestSupport
import ConvergeWorkflow
import Foundation
import Testing

/// Leases are renewed while a run goes on; when a renewal fails, the run stops starting steps
/// and stays resumable, and another process finishes it without running a finished step twice.
@Suite struct LeaseRenewalTests {
    static let isRenewal: @Sendable (Duration) -> Bool = { $0 == Harness.renewalInterval }

    /// Starts a run on engine-a, over a scripted store and on a manual clock, and waits until
    /// its step `b` is held in flight and its lease renewal is waiting for the clock.
    static func startHeld(_ harness: Harness) async -> (ScriptedStore, ManualClock, Task<RunRecord, any Error>) {
        let store = ScriptedStore(harness.store)
        let clock = ManualClock()
        harness.provider.hold("b")
        let started = Task { [engine = harness.engine(clock: clock, store: store)] in try await harness.start(with: engine) }
        await harness.provider.waitUntilExecuting("b")
        await clock.nextSleep(where: isRenewal)
        return (store, clock, started)
    }

    /// The error a task ended with, or nil when it returned.
    static func failure(of task: Task<RunRecord, any Error>) async -> (any Error)? {
        do {
            _ = try await task.value
            return nil
        } catch {
            return error
        }
    }

    @Test func leasesAreRenewedWhileTheRunGoesOn() async throws {
        try await Harness.with { harness in
            let (store, clock, started) = await Self.startHeld(harness)
            for _ in 0..<3 {
                clock.advance(by: Harness.renewalInterval)
                await clock.nextSleep(where: Self.isRenewal)
            }
            harness.provider.release("b")
            let run = try await started.value
            #expect(run.status == .succeeded)
            #expect(store.renewals == 3)
        }
    }

    @Test func aStoreFailingARenewalStopsTheRunResumable() async throws {
        try await Harness.with { harness in
            let (store, clock, started) = await Self.startHeld(harness)
            store.failRenewals(.error)
            clock.advance(by: Harness.renewalInterval)

            let stopped = try #require(try await harness.onlyRun())
            let error = await Self.failure(of: started)
            guard let error = error as? WorkflowError, error.code == .leaseRenewalFailed, error.run == stopped.id else {
                Issue.record("expected leaseRenewalFailed, got \(String(describing: error))")
                return
            }
            #expect(error.message.contains("connection to the store lost"))
            let after = try #require(try await harness.store.run(stopped.id))
            #expect(after.status == .running, "neither failed nor rolled back")
            #expect(try await harness.journal(stopped.id).mapValues(\.status) == ["a": .succeeded, "b": .running])
            #expect(harness.provider.executed == ["a", "b"], "no step started after the renewal failed")
            #expect(harness.provider.compensated.isEmpty)

            // Another process, which knows engine-a is gone, resumes it.
            let successor = harness.engine(owner: "engine-b", liveness: ProcessLiveness { $0 == "engine-a" })
            let resumed = try await successor.resumeInterrupted()
            #expect(resumed.map(\.status) == [.succeeded])
            // `b` was cut off before it was journaled as finished: it alone runs again.
            #expect(["a", "b", "c"].map(harness.provider.executions(of:)) == [1, 2, 1])
            #expect(harness.provider.compensated.isEmpty)
        }
    }

    @Test func aRunWhoseLeasesAnotherOwnerTookStopsWithoutTouchingTheJournal() async throws {
        try await Harness.with { harness in
            let (_, clock, started) = await Self.startHeld(harness)
            let run = try #require(try await harness.onlyRun())

            // engine-a stalls in `b` past its leases' TTL; engine-b, for which they expired,
            // takes them and finishes the run.
            let successor = harness.engine(owner: "engine-b", clock: ManualClock(now: Date().addingTimeInterval(60)))
            let finished = try await successor.resume(run.id)
            #expect(finished.status == .succeeded)
            let journal = try await harness.journal(run.id)

            // engine-a's next renewal finds the leases gone: it stops, writing nothing.
            clock.advance(by: Harness.renewalInterval)
            #expect(await Self.failure(of: started) as? WorkflowError == .leaseLost(run.id))
            #expect(try await harness.store.run(run.id)?.status == .succeeded)
            #expect(try await harness.journal(run.id) == journal)
            #expect(["a", "b", "c"].map(harness.provider.executions(of:)) == [1, 2, 1])
        }
    }

    @Test func aRenewalToldTheLeasesAreLostStopsTheRun() async throws {
        try await Harness.with { harness in
            let (store, clock, started) = await Self.startHeld(harness)
            store.failRenewals(after: 1, .lost)
            clock.advance(by: Harness.renewalInterval)
            await clock.nextSleep(where: Self.isRenewal)
            clock.advance(by: Harness.renewalInterval)

            let run = try #require(try await harness.onlyRun())
            #expect(await Self.failure(of: started) as? WorkflowError == .leaseLost(run.id))
            #expect(try await harness.store.run(run.id)?.status == .running)
            #expect(harness.provider.executed == ["a", "b"])
            #expect(store.renewals == 2)
        }
    }
}
