import ConvergeStore
import Foundation
import Testing

/// How long journaling costs per step, printed so a test log shows it (the benchmarks in
/// `Benchmarks/` are the reference; this catches a backend becoming absurdly slow). A step is
/// journaled twice: `running` before it acts, its outcome after.
@Suite("Journal latency")
struct JournalLatencyTests {
    @Test("1,000 steps journaled (start and end of each) in reasonable time", arguments: Backend.allCases)
    func thousandSteps(backend: Backend) async throws {
        try await TestDatabase.with(backend) { database in
            let store = try await database.openMigrated()
            let run = try await store.createRun(newRun())
            let clock = ContinuousClock()
            let elapsed = try await clock.measure {
                for index in 0..<1000 {
                    try await store.recordStep(step(run: run.id, index: index, status: .running))
                    try await store.recordStep(step(run: run.id, index: index, status: .succeeded, output: #"{"id":"abc"}"#))
                }
            }
            let readStart = clock.now
            let steps = try await store.steps(run: run.id)
            let read = clock.now - readStart
            #expect(steps.count == 1000)
            #expect(steps.allSatisfy { $0.status == .succeeded })
            let perCall = elapsed / 2000
            print(
                "journal latency [\(backend)]: \(perCall) per recordStep, \(elapsed / 1000) per step (2 writes), "
                    + "reading 1,000 steps: \(read)")
            // Generous: an order of magnitude above the targets (2 ms SQLite, 5 ms PostgreSQL per step).
            #expect(elapsed / 1000 < .milliseconds(50))
        }
    }
}
