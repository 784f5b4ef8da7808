import ConvergeCore
import ConvergeRuntime
import ConvergeStore
import ConvergeTestSupport
import ConvergeWorkflow
import Foundation
import Synchronization
import Testing

/// A scheduled kind for the scheduler's tests: `Tick` on a `TickHost`, run by a scripted
/// provider, so the decisions (fire, missed, skipped, replaced, DST) are tested on a real
/// journal with a clock the test moves.
struct TickHostSpec: ResourceSpec {
    static let kind = "TickHost"
    static let isLiveObject = false
    init(spec: MappingReader, metadata: Metadata) {}
    func references(in set: ManifestSet) -> [Reference] { [] }
    func target(in set: ManifestSet) -> ResourceID? { nil }
}

struct TickSpec: ScheduledResource {
    static let kind = "Tick"
    static let isLiveObject = false
    var schedule: Schedule?
    init(spec: MappingReader, metadata: Metadata) { schedule = Schedule.read(spec) }
    func references(in set: ManifestSet) -> [Reference] { [] }
    func target(in set: ManifestSet) -> ResourceID? { set.defaultTarget(kind: TickHostSpec.kind) }
}

@Suite struct SchedulerTests {
    /// The clock the scheduler reads.
    final class Clock: Sendable {
        private let current: Mutex<Date>
        init(_ iso: String) throws { current = Mutex(try Date(iso, strategy: .iso8601)) }
        var now: Date { current.withLock { $0 } }
        func set(_ iso: String) throws {
            let date = try Date(iso, strategy: .iso8601)
            current.withLock { $0 = date }
        }
    }

    struct Setup {
        var scheduler: Scheduler
        var provider: ScriptedProvider
        var store: any WorkflowStore
        var set: ManifestSet
        var clock: Clock

        func pass() async throws -> [Scheduler.Firing] { try await scheduler.due(in: set).firings }

        func run(_ firing: Scheduler.Firing) async -> FiringRecord {
            await scheduler.run(firing, in: set, files: [], revision: testSource)
        }

        func history(_ name: String = "nightly") async throws -> [FiringRecord] {
            try await store.firings(instance: "sched", schedule: "Tick/\(name)", statuses: nil, limit: 100)
        }
    }

    static func with(_ schedule: String, at start: String, owners: Int = 1, _ body: ([Setup]) async throws -> Void) async throws {
        let yaml = """
            apiVersion: converge.dev/v1alpha1
            kind: TickHost
            metadata: {name: here}
            spec: {}
            ---
            apiVersion: converge.dev/v1alpha1
            kind: Tick
            metadata: {name: nightly}
            spec:
            \(schedule.split(separator: "\n").map { "  \($0)" }.joined(separator: "\n"))
            """
        let provider = ScriptedProvider(kinds: [])
        let plugin = ProviderPlugin(name: "tick", kinds: [TickHostSpec.self, TickSpec.self], targetKind: TickHostSpec.kind) { _, _ in
            provider
        }
        let runtime = Runtime(plugins: [plugin], instance: "sched", version: "test")
        let set = try runtime.load([SourceFile(path: "ticks.yaml", bytes: Array(yaml.utf8))])
        let database = try await ThrowawayDatabase.make(.sqlite, postgresURL: nil)
        let clock = try Clock(start)
        do {
            var setups: [Setup] = []
            for owner in 0..<owners {
                let store = try await database.openMigrated()
                let scheduler = Scheduler(
                    runtime: runtime, store: store, options: WorkflowOptions(), owner: "test:\(owner)", now: { clock.now })
                setups.append(Setup(scheduler: scheduler, provider: provider, store: store, set: set, clock: clock))
            }
            try await body(setups)
            await runtime.shutdown()
            try await database.destroy()
        } catch {
            await runtime.shutdown()
            try await database.destroy()
            throw error
        }
    }

    @Test func aScheduleFiresAtItsDueTimeAndRecordsItsHistory() async throws {
        try await Self.with("schedule: \"*/5 * * * *\"", at: "2026-11-30T10:02:00Z") { setups in
            let lab = setups[0]
            #expect(try await lab.pass().isEmpty, "first seen at 10:02: nothing due, 10:00 is before it")
            try lab.clock.set("2026-11-30T10:04:59Z")
            #expect(try await lab.pass().isEmpty)
            try lab.clock.set("2026-11-30T10:05:00.300Z")
            let firings = try await lab.pass()
            #expect(firings.map { Scheduler.stamp($0.record.dueAt) } == ["2026-11-30T10:05:00Z"])
            let ended = await lab.run(try #require(firings.first))
            #expect(ended.status == .completed, "\(ended.detail ?? "")")
            #expect(lab.provider.executed == ["nightly"])
            let history = try await lab.history()
            #expect(history.map(\.status) == [.completed])
            let runID = try #require(history.first?.runID)
            let run = try #require(try await lab.store.run(runID))
            #expect(run.status == .succeeded)
            #expect(run.planJSON.contains("\"action\":\"scheduled for 2026-11-30T10:05:00Z\""), "\(run.planJSON)")
            #expect(try await lab.pass().isEmpty, "a due time runs once")
        }
    }

    @Test func twoProcessesAtTheSameDueTimeRunItOnce() async throws {
        try await Self.with("schedule: \"0 * * * *\"", at: "2026-11-30T09:30:00Z", owners: 2) { setups in
            _ = try await setups[0].pass()
            try setups[0].clock.set("2026-11-30T10:00:00.100Z")
            async let first = setups[0].pass()
            async let second = setups[1].pass()
            let claimed = try await first + second
            #expect(claimed.count == 1)
        }
    }

    @Test func forbidSkipsADueTimeWhileThePreviousRunIsGoing_replaceStopsIt() async throws {
        for (policy, expected) in [("Forbid", FiringStatus.skipped), ("Replace", .replaced), ("Allow", .completed)] {
            try await Self.with("schedule: \"*/5 * * * *\"\nconcurrencyPolicy: \(policy)", at: "2026-11-30T10:01:00Z") { setups in
                let lab = setups[0]
                _ = try await lab.pass()
                lab.provider.hold("nightly")
                try lab.clock.set("2026-11-30T10:05:01Z")
                let first = try #require(try await lab.pass().first)
                let running = Task { await lab.run(first) }
                await lab.provider.waitUntilExecuting("nightly")
                try lab.clock.set("2026-11-30T10:10:01Z")
                let next = try await lab.pass()
                let history = try await lab.history()
                switch policy {
                case "Forbid":
                    #expect(next.isEmpty)
                    #expect(history.first?.status == .skipped)
                    #expect(
                        history.first?.detail?.contains("is still going (concurrencyPolicy Forbid)") == true,
                        "\(history.first?.detail ?? "")")
                    lab.provider.release("nightly")
                    #expect(await running.value.status == .completed)
                case "Replace":
                    #expect(next.count == 1)
                    #expect(await running.value.status == .replaced)
                    let replaced = try await lab.history().first { $0.dueAt == first.record.dueAt }
                    #expect(replaced?.status == expected)
                    let replacedRun = try #require(replaced?.runID)
                    #expect(try await lab.store.run(replacedRun)?.status == .failed)
                    #expect(await lab.run(try #require(next.first)).status == .completed)
                default:
                    #expect(next.count == 1, "Allow runs beside the previous one")
                    #expect(await lab.run(try #require(next.first)).status == .completed)
                    lab.provider.release("nightly")
                    #expect(await running.value.status == expected)
                }
            }
        }
    }

    @Test func afterAnOutageOnlyTheMostRecentDueTimeRunsAndOnlyWithinItsDeadline() async throws {
        try await Self.with("schedule: \"*/5 * * * *\"\nstartingDeadline: 5m", at: "2026-11-30T10:00:30Z") { setups in
            let lab = setups[0]
            _ = try await lab.pass()
            // Down from 10:01 to 12:07: 25 due times passed; 12:05 is 2 minutes late.
            try lab.clock.set("2026-11-30T12:07:00Z")
            let firings = try await lab.pass()
            #expect(firings.map { Scheduler.stamp($0.record.dueAt) } == ["2026-11-30T12:05:00Z"])
            let history = try await lab.history()
            let missed = history.filter { $0.status == .missed }
            #expect(missed.count == 10, "the ten before the newest are recorded, older ones counted")
            #expect(missed.last?.detail?.contains("and 14 earlier due times") == true, "\(missed.last?.detail ?? "")")
            #expect(lab.provider.executed.isEmpty, "no catch-up storm")

            // Down again until 13:12: 13:10 is 2 minutes late and runs; with an hourly schedule
            // 13:00 would be 12 minutes late: recorded as missed, never started.
            _ = await lab.run(try #require(firings.first))
        }
        try await Self.with("schedule: \"0 * * * *\"\nstartingDeadline: 5m", at: "2026-11-30T11:30:00Z") { setups in
            let lab = setups[0]
            _ = try await lab.pass()
            try lab.clock.set("2026-11-30T12:12:00Z")
            #expect(try await lab.pass().isEmpty)
            let history = try await lab.history()
            #expect(history.map(\.status) == [.missed])
            #expect(
                history.first?.detail?.contains("720 s late, past the starting deadline of 5m") == true, "\(history.first?.detail ?? "")")
            #expect(lab.provider.executed.isEmpty)
        }
    }

    @Test func springForwardRunsOnceAtTheFirstValidMinute_fallBackRunsTheRepeatedTimeOnce() async throws {
        // Berlin, 2026-03-29: 02:00 CET → 03:00 CEST; 02:30 does not exist that day.
        try await Self.with("schedule: \"30 2 * * *\"\ntimeZone: Europe/Berlin", at: "2026-03-28T12:00:00Z") { setups in
            let lab = setups[0]
            _ = try await lab.pass()
            try lab.clock.set("2026-03-29T00:59:59Z")
            #expect(try await lab.pass().isEmpty)
            try lab.clock.set("2026-03-29T01:00:00.200Z")  // 03:00:00 CEST
            let firings = try await lab.pass()
            #expect(firings.map { Scheduler.stamp($0.record.dueAt) } == ["2026-03-29T01:00:00Z"])
            try lab.clock.set("2026-03-29T01:31:00Z")
            #expect(try await lab.pass().isEmpty, "once that day")
        }
        // Berlin, 2026-10-25: 03:00 CEST → 02:00 CET; 02:30 happens twice.
        try await Self.with("schedule: \"30 2 * * *\"\ntimeZone: Europe/Berlin", at: "2026-10-24T12:00:00Z") { setups in
            let lab = setups[0]
            _ = try await lab.pass()
            try lab.clock.set("2026-10-25T00:30:00.200Z")  // 02:30 CEST, the first
            let firings = try await lab.pass()
            #expect(firings.map { Scheduler.stamp($0.record.dueAt) } == ["2026-10-25T00:30:00Z"])
            _ = await lab.run(try #require(firings.first))
            try lab.clock.set("2026-10-25T01:30:00.200Z")  // 02:30 CET, the repeat
            #expect(try await lab.pass().isEmpty, "the repeated 02:30 does not run again")
            #expect(try await lab.history().count == 1)
        }
    }

    @Test func aOneTimeRunFiresOnceWithinItsDeadline() async throws {
        try await Self.with("at: 2026-12-24T18:00\ntimeZone: America/New_York", at: "2026-12-24T23:01:00Z") { setups in
            let lab = setups[0]
            // 18:00 in New York is 23:00 UTC; first seen a minute later, still within 5m.
            let firings = try await lab.pass()
            #expect(firings.map { Scheduler.stamp($0.record.dueAt) } == ["2026-12-24T23:00:00Z"])
            try lab.clock.set("2026-12-25T23:00:00Z")
            #expect(try await lab.pass().isEmpty)
        }
    }
}
