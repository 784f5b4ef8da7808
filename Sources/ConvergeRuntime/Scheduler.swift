import ConvergeCore
import ConvergeStore
import ConvergeWorkflow
import Foundation
import Synchronization

/// Fires the due times of a manifest set's scheduled resources (`ScheduledResource`, such as
/// a `ScheduledPlaybook`). Each due time is claimed in the store first, so among processes
/// sharing a store (controller replicas, a host's cron running `converge schedules run-due`)
/// exactly one runs it; it then runs as a journaled action on the resource, or is recorded as
/// missed (past its starting deadline, or superseded by a later due time) or skipped (the
/// previous run still going, `concurrencyPolicy: Forbid`).
///
/// The clock is injected: tests move it instead of sleeping for minutes.
public final class Scheduler: Sendable {
    /// Missed due times recorded one by one, newest first; older ones are only counted.
    static let missedRecorded = 10
    /// A claimed firing with no run after this long lost the process that claimed it.
    static let orphanAfter: TimeInterval = 600

    public let runtime: Runtime
    public let store: any WorkflowStore
    public let options: WorkflowOptions
    public let owner: String
    private let now: @Sendable () -> Date
    /// The firings this process is running, by key, so `Replace` can stop them.
    private let running = Mutex<[String: Task<FiringRecord, Never>]>([:])

    public init(
        runtime: Runtime, store: any WorkflowStore, options: WorkflowOptions, owner: String = WorkflowEngine.processOwner,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.runtime = runtime
        self.store = store
        self.options = options
        self.owner = owner
        self.now = now
    }

    /// A due time this process claimed and is about to run.
    public struct Firing: Sendable {
        public var record: FiringRecord
        public var resource: ResourceID
        /// It may run beside the schedule's previous run (`concurrencyPolicy: Allow`).
        public var concurrent: Bool
    }

    /// The scheduled resources of `set`, by id, with their schedules.
    public static func schedules(in set: ManifestSet) -> [(resource: Resource, schedule: Schedule)] {
        set.resources.compactMap { resource in
            (resource.spec as? any ScheduledResource)?.schedule.map { (resource, $0) }
        }
    }

    /// The first due time after `date` among the set's schedules that are not suspended.
    public static func nextDue(in set: ManifestSet, after date: Date) -> Date? {
        schedules(in: set).filter { !$0.schedule.suspend }.compactMap { $0.schedule.nextTimes(after: date, count: 1).first }.min()
    }

    // MARK: One pass

    /// Decides every schedule of `set` at the clock's now: settles firings whose runs ended,
    /// records missed and skipped due times, stops runs `Replace` replaces, and claims the due
    /// times to run. Start each returned firing with `run(_:in:files:revision:)`.
    public func due(in set: ManifestSet) async throws -> Pass {
        try await settle()
        var pass = Pass()
        for (resource, schedule) in Self.schedules(in: set) where !schedule.suspend {
            if let firing = try await decide(resource.id, schedule, recording: &pass.recorded) { pass.firings.append(firing) }
        }
        return pass
    }

    /// What one pass decided.
    public struct Pass: Sendable {
        /// Due times claimed to run now.
        public var firings: [Firing] = []
        /// Due times this pass recorded as missed or skipped.
        public var recorded: [FiringRecord] = []
    }

    private func decide(_ id: ResourceID, _ schedule: Schedule, recording recorded: inout [FiringRecord]) async throws -> Firing? {
        let at = now()
        let name = id.description
        // A one-time run committed before it was first seen still runs within its deadline.
        let since: Date
        if case .once(let instant) = schedule.timing {
            since = instant.addingTimeInterval(-1)
        } else {
            since = try await firstSeen(name, at: at)
        }
        let latest = try await store.firings(instance: runtime.instance, schedule: name, statuses: nil, limit: 1).first
        let after = max(since, latest?.dueAt ?? since)
        let (times, omitted) = schedule.dueTimes(after: after, through: at, limit: Self.missedRecorded + 1)
        guard let newest = times.last else { return nil }
        for (position, missed) in times.dropLast().enumerated() {
            let earlier = position == 0 && omitted > 0 ? " (and \(omitted) earlier due time\(omitted == 1 ? "" : "s"))" : ""
            try await record(
                name, missed, status: .missed, into: &recorded,
                detail: "not run: \(Self.stamp(newest)) was due as well, and only the most recent due time runs\(earlier)")
        }
        let late = at.timeIntervalSince(newest)
        let deadline = schedule.startingDeadline.timeInterval
        if late > deadline {
            try await record(
                name, newest, status: .missed, into: &recorded,
                detail:
                    "not run: \(Int(late)) s late, past the starting deadline of \(schedule.deadlineText) (an outage or a stopped scheduler)"
            )
            return nil
        }
        let active = try await store.firings(instance: runtime.instance, schedule: name, statuses: [.pending, .running], limit: 100)
        if !active.isEmpty {
            let previous = active.map { "\(Self.stamp($0.dueAt))\($0.runID.map { " (run \($0))" } ?? "")" }.joined(separator: ", ")
            switch schedule.concurrencyPolicy {
            case .forbid:
                try await record(
                    name, newest, status: .skipped, into: &recorded,
                    detail: "not run: the run due at \(previous) is still going (concurrencyPolicy Forbid)")
                return nil
            case .replace:
                guard try await claim(name, newest, status: .pending, detail: nil) else { return nil }
                for firing in active { try await replace(firing, by: newest) }
                return Firing(record: try await current(name, newest), resource: id, concurrent: false)
            case .allow:
                break
            }
        }
        guard try await claim(name, newest, status: .pending, detail: nil) else { return nil }
        return Firing(record: try await current(name, newest), resource: id, concurrent: schedule.concurrencyPolicy == .allow)
    }

    /// When this instance first saw the schedule: due times before it are not its business
    /// (a schedule added at 10:05 does not run its 10:00).
    private func firstSeen(_ name: String, at date: Date) async throws -> Date {
        let key = "schedule:\(name)"
        if let record = try await store.records(instance: runtime.instance, prefix: key).first(where: { $0.key == key }),
            let milliseconds = Int64(record.value)
        {
            return Date(storeMilliseconds: milliseconds)
        }
        try await store.putRecord(instance: runtime.instance, key: key, value: String(date.storeMilliseconds))
        return date.storeRounded
    }

    /// Claims a due time that will not run, keeping its record when this process claimed it.
    private func record(_ name: String, _ due: Date, status: FiringStatus, into recorded: inout [FiringRecord], detail: String) async throws
    {
        if try await claim(name, due, status: status, detail: detail) { recorded.append(try await current(name, due)) }
    }

    private func claim(_ name: String, _ due: Date, status: FiringStatus, detail: String?) async throws -> Bool {
        let at = now()
        return try await store.claimFiring(
            FiringRecord(
                instance: runtime.instance, schedule: name, dueAt: due, status: status, owner: owner, claimedAt: at,
                finishedAt: status.isFinal ? at : nil, detail: detail))
    }

    private func current(_ name: String, _ due: Date) async throws -> FiringRecord {
        let firings = try await store.firings(instance: runtime.instance, schedule: name, statuses: nil, limit: Self.missedRecorded + 2)
        guard let record = firings.first(where: { $0.dueAt == due.storeRounded }) else {
            throw RuntimeError(.unreadableSource, "the firing of \(name) at \(Self.stamp(due)) vanished from the store")
        }
        return record
    }

    /// Stops `firing`'s run for the one due at `due`: its task here is cancelled and its run
    /// ended; one another process runs is left to it, and recorded as replaced all the same.
    private func replace(_ firing: FiringRecord, by due: Date) async throws {
        let task = running.withLock { $0.removeValue(forKey: Self.key(firing)) }
        task?.cancel()
        _ = await task?.value
        if let runID = firing.runID, let run = try await store.run(runID), !run.status.isFinal {
            try await store.updateRun(
                runID, status: .failed, error: "replaced by the run due at \(Self.stamp(due)) (concurrencyPolicy Replace)", finished: true)
            try await store.releaseLeases(run: runID)
        }
        var replaced = firing
        replaced.status = .replaced
        replaced.finishedAt = now()
        replaced.detail = "stopped for the run due at \(Self.stamp(due)) (concurrencyPolicy Replace)"
        try await store.updateFiring(replaced)
    }

    /// Firings left pending or running by a run that ended since (a crash, an approval) take
    /// their run's outcome; one whose process died before its run started fails.
    private func settle() async throws {
        let open = try await store.firings(instance: runtime.instance, schedule: nil, statuses: [.pending, .running], limit: 1000)
        for var firing in open where running.withLock({ $0[Self.key(firing)] == nil }) {
            if let runID = firing.runID {
                guard let run = try await store.run(runID), run.status.isFinal else { continue }
                firing.status = run.status == .succeeded ? .completed : .failed
                firing.finishedAt = run.finishedAt ?? now()
                firing.detail = firing.detail ?? run.error
            } else if now().timeIntervalSince(firing.claimedAt) > Self.orphanAfter {
                firing.status = .failed
                firing.finishedAt = now()
                firing.detail = "the process that claimed it (\(firing.owner)) stopped before its run started"
            } else {
                continue
            }
            try await store.updateFiring(firing)
        }
    }

    // MARK: Running

    /// Runs a claimed firing to its end as a journaled action on its resource (planned now,
    /// against the live systems) and records how it ended.
    @discardableResult
    public func run(_ firing: Firing, in set: ManifestSet, files: [SourceFile], revision: SourceRevision) async -> FiringRecord {
        let task = Task { await self.execute(firing, in: set, files: files, revision: revision) }
        running.withLock { $0[Self.key(firing.record)] = task }
        let record = await task.value
        running.withLock { _ = $0.removeValue(forKey: Self.key(firing.record)) }
        return record
    }

    private func execute(_ firing: Firing, in set: ManifestSet, files: [SourceFile], revision: SourceRevision) async -> FiringRecord {
        var record = firing.record
        record.status = .running
        record.startedAt = now()
        do {
            try await store.updateFiring(record)
            // The run's id is written as soon as the run is recorded, so a crash leaves the
            // firing pointing at the run that resumes.
            let early = Mutex<(run: Int64, update: Task<Void, Never>)?>(nil)
            let store = self.store
            let running = record
            let engine = runtime.engine(
                store: store, parallelism: 1,
                events: { event in
                    guard case .runStarted(let id) = event else { return }
                    var withRun = running
                    withRun.runID = id
                    let update = Task { [withRun] in _ = try? await store.updateFiring(withRun) }
                    early.withLock { $0 = (id, update) }
                })
            let planned = try await runtime.planAction(
                on: firing.resource, in: set,
                fields: [
                    FieldChange(
                        path: "scheduledFor", before: nil, after: .string(Self.stamp(firing.record.dueAt)), forcesReplacement: false)
                ],
                reason: "scheduled for \(Self.stamp(firing.record.dueAt))", source: revision, concurrent: firing.concurrent)
            let run: RunRecord
            do {
                run = try await engine.start(planned, manifests: files, options: options)
                await early.withLock { $0 }?.update.value
            } catch {
                // Stopped (Replace) or failed after its run was recorded: the firing keeps it.
                record.runID = early.withLock { $0 }?.run
                await early.withLock { $0 }?.update.value
                throw error
            }
            record.runID = run.id
            switch run.status {
            case .succeeded: record.status = .completed
            case .awaitingApproval, .pending, .running, .rollingBack: record.status = .running
            default: record.status = .failed
            }
            record.detail = run.error.map { String($0.prefix(2000)) }
        } catch {
            record.status = Task.isCancelled ? .replaced : .failed
            record.detail = String(String(describing: error).prefix(2000))
        }
        if record.status.isFinal { record.finishedAt = now() }
        try? await store.updateFiring(record)
        return record
    }

    static func key(_ firing: FiringRecord) -> String { "\(firing.schedule)@\(firing.dueAt.storeMilliseconds)" }

    /// ISO 8601 in UTC, the form histories show.
    public static func stamp(_ date: Date) -> String { date.formatted(.iso8601) }
}
