import ConvergeCore
import ConvergeDocker
import ConvergeStore
import ConvergeTestSupport
import ConvergeWorkflow
import Foundation
import Testing

/// Retries: transient failures are tried again after the policy's backoff, on the engine's
/// clock; permanent ones are not.
@Suite struct RetryTests {
    static let policy = RetryPolicy(initialDelay: 1, multiplier: 2, maximumDelay: 60, maximumAttempts: 3)
    static var options: WorkflowOptions { WorkflowOptions(retry: policy) }

    /// A backoff sleep: shorter than the lease renewal's.
    static let isBackoff: @Sendable (Duration) -> Bool = { $0 < Harness.renewalInterval }

    @Test func transientFailuresAreRetriedAfterThePolicysBackoff() async throws {
        try await Harness.with { harness in
            harness.provider.fail("a", times: 2, transient: true)
            let clock = ManualClock()
            let delays = Delays()
            var engine = harness.engine(clock: clock)
            engine.events = { event in
                if case .stepRetrying(_, _, let delay, _) = event { delays.append(delay) }
            }
            let started = Task { [engine] in try await harness.start(with: engine, options: Self.options) }
            var slept: [Duration] = []
            for _ in 0..<2 {
                let backoff = await clock.nextSleep(where: Self.isBackoff)
                slept.append(backoff)
                clock.advance(by: backoff)
            }
            let run = try await started.value

            #expect(run.status == .succeeded)
            #expect(harness.provider.executed == ["a", "a", "a", "b", "c"])
            let journal = try await harness.journal(run.id)
            #expect(journal["a"]?.attempts == 3)
            #expect(journal["b"]?.attempts == 1)
            // Each wait is the one announced, within the policy's jitter of its delay.
            #expect(slept == delays.all.map { .milliseconds(Int64($0 * 1000)) })
            for (attempt, delay) in delays.all.enumerated() {
                let full = Self.policy.delay(afterAttempt: attempt + 1, random: 1)
                #expect(delay >= full / 2 && delay <= full, "after attempt \(attempt + 1): \(delay) s")
            }
            #expect(clock.sleeps.filter(Self.isBackoff).count == 2)
        }
    }

    @Test func aStepStillFailingAfterItsAttemptsRollsTheRunBack() async throws {
        try await Harness.with { harness in
            harness.provider.fail("b", times: 5, transient: true)
            let clock = ManualClock()
            let started = Task { [engine = harness.engine(clock: clock)] in try await harness.start(with: engine, options: Self.options) }
            for _ in 0..<2 { clock.advance(by: await clock.nextSleep(where: Self.isBackoff)) }
            let run = try await started.value

            #expect(run.status == .rolledBack)
            #expect(harness.provider.executions(of: "b") == 3)
            #expect(try await harness.journal(run.id)["b"]?.attempts == 3)
            #expect(harness.provider.compensated == ["b", "a"], "the failed step and the finished one are undone")
            #expect(harness.provider.executions(of: "c") == 0)
        }
    }

    @Test func aPermanentFailureIsNotRetried() async throws {
        try await Harness.with { harness in
            harness.provider.fail("a", transient: false)
            let clock = ManualClock()
            let run = try await harness.start(with: harness.engine(clock: clock), options: Self.options)

            #expect(run.status == .rolledBack)
            #expect(harness.provider.executions(of: "a") == 1)
            #expect(try await harness.journal(run.id)["a"]?.attempts == 1)
            #expect(run.error?.contains("bad request (400)") == true)
            #expect(clock.sleeps.filter(Self.isBackoff).isEmpty, "no backoff for a permanent failure")
        }
    }

    @Test func backoffDoublesUpToItsCapWithJitter() {
        let policy = RetryPolicy.standard
        #expect(policy.delay(afterAttempt: 1, random: 1) == 1)
        #expect(policy.delay(afterAttempt: 2, random: 1) == 2)
        #expect(policy.delay(afterAttempt: 4, random: 1) == 8)
        #expect(policy.delay(afterAttempt: 10, random: 1) == 60)
        #expect(policy.delay(afterAttempt: 3, random: 0.5) == 2)
    }
}

/// The delays the engine announced, collected from its events.
final class Delays: @unchecked Sendable {
    // @unchecked: `values` is guarded by `lock`.
    private let lock = NSLock()
    private var values: [Double] = []

    func append(_ delay: Double) { lock.withLock { values.append(delay) } }
    var all: [Double] { lock.withLock { values } }
}
