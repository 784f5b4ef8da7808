import ArgumentParser
import ConvergeCore
import ConvergeRuntime
import ConvergeStore
import ConvergeWorkflow
import Foundation

/// `converge schedules`: the scheduled resources, their next times and history; `run-due`
/// fires what is due, for hosts that run Converge from their own cron instead of a controller.
struct SchedulesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedules",
        abstract: "List schedules (next times in their zone and in UTC, last run), show their history, fire what is due.",
        subcommands: [ListSchedules.self, RunDue.self, History.self], defaultSubcommand: ListSchedules.self)

    struct ListSchedules: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "Each schedule with its next three times and its last run.")

        @OptionGroup var source: ManifestSourceOptions
        @OptionGroup var storage: StoreOptions

        @Option(help: "Name of this Converge instance.")
        var instance: String = ConvergeCommand.defaultInstance

        func run() async throws {
            try await Terminal.run(instance: instance) { runtime in
                let set = try runtime.load(try await source.load())
                let schedules = Scheduler.schedules(in: set)
                guard !schedules.isEmpty else {
                    Terminal.write("No schedules.\n")
                    return
                }
                try await storage.with { store in
                    let now = Date()
                    var lines: [String] = []
                    for (resource, schedule) in schedules {
                        lines.append("\(resource.id)  \(schedule.summary)\(schedule.suspend ? "  (suspended)" : "")")
                        lines.append(
                            "  concurrencyPolicy \(schedule.concurrencyPolicy.rawValue), startingDeadline \(schedule.deadlineText)")
                        for next in schedule.nextTimes(after: now, count: 3) {
                            lines.append("  next  \(Self.local(next, in: schedule.timeZone))  =  \(Scheduler.stamp(next))")
                        }
                        let last = try await store.firings(
                            instance: runtime.instance, schedule: resource.id.description, statuses: nil, limit: 1
                        ).first
                        lines.append("  last  " + (last.map(History.line) ?? "never ran"))
                    }
                    Terminal.write(lines.joined(separator: "\n") + "\n")
                }
            }
        }

        /// `2026-03-29 03:00 CEST` (or `+02:00`): the wall time people in that zone read.
        static func local(_ date: Date, in zone: TimeZone) -> String {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = zone
            formatter.dateFormat = "yyyy-MM-dd HH:mm xxx"
            return formatter.string(from: date) + " \(zone.identifier)"
        }
    }

    struct RunDue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run-due",
            abstract: "One scheduler pass: run what is due now, record what was missed; for a host's cron, every minute.",
            discussion: """
                Each due time is claimed in the store first, so several hosts (or a controller) sharing a store never run it twice.
                Exit codes: 0 nothing failed, 1 a scheduled run failed.
                """)

        @OptionGroup var source: ManifestSourceOptions
        @OptionGroup var storage: StoreOptions
        @OptionGroup var workflow: WorkflowOptionsGroup

        @Option(help: "Name of this Converge instance.")
        var instance: String = ConvergeCommand.defaultInstance

        func run() async throws {
            try await Terminal.run(instance: instance) { runtime in
                let snapshot = try await source.load()
                let set = try runtime.load(snapshot)
                let failed = try await storage.with { store in
                    let scheduler = Scheduler(runtime: runtime, store: store, options: workflow.options)
                    let pass = try await scheduler.due(in: set)
                    let outcomes = await withTaskGroup(of: FiringRecord.self, returning: [FiringRecord].self) { group in
                        for firing in pass.firings {
                            group.addTask { await scheduler.run(firing, in: set, files: snapshot.files, revision: snapshot.revision) }
                        }
                        return await group.reduce(into: []) { $0.append($1) }
                    }
                    let recorded = pass.recorded
                    for firing in (outcomes + recorded).sorted(by: { ($0.schedule, $0.dueAt) < ($1.schedule, $1.dueAt) }) {
                        Terminal.write("\(firing.schedule)  \(History.line(firing))\n")
                    }
                    if outcomes.isEmpty, recorded.isEmpty { Terminal.log("Nothing is due.") }
                    return outcomes.contains { $0.status == .failed }
                }
                if failed { throw ExitCode(1) }
            }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "history", abstract: "The due times of a schedule, newest first: status, duration, run, why.")

        @Argument(help: "The schedule, as Kind/name (ScheduledPlaybook/nightly) or its name.")
        var schedule: String

        @Option(help: "At most this many.")
        var limit: Int = 20

        @OptionGroup var storage: StoreOptions

        @Option(help: "Name of this Converge instance.")
        var instance: String = ConvergeCommand.defaultInstance

        @Option(help: "text or json.")
        var output: ReportFormat = .text

        func run() async throws {
            try await Terminal.run(instance: instance) { _ in
                try await storage.with { store in
                    var firings = try await store.firings(instance: instance, schedule: schedule, statuses: nil, limit: limit)
                    if firings.isEmpty, !schedule.contains("/") {
                        firings = try await store.firings(
                            instance: instance, schedule: "ScheduledPlaybook/\(schedule)", statuses: nil, limit: limit)
                    }
                    switch output {
                    case .json: Terminal.write(JSONOutput.encode(firings.map(FiringReport.init)))
                    case .text:
                        Terminal.write(
                            firings.isEmpty ? "No firings of \(schedule).\n" : firings.map(Self.line).joined(separator: "\n") + "\n")
                    }
                }
            }
        }

        /// `2026-11-30T02:30:00Z  completed  12.4 s  run 31: …`
        static func line(_ firing: FiringRecord) -> String {
            var text = "\(Scheduler.stamp(firing.dueAt))  \(firing.status.rawValue)"
            if let started = firing.startedAt {
                text += "  started +\(String(format: "%.2f", started.timeIntervalSince(firing.dueAt))) s"
                if let finished = firing.finishedAt { text += ", took \(String(format: "%.1f", finished.timeIntervalSince(started))) s" }
            }
            if let run = firing.runID { text += "  run \(run)" }
            if let detail = firing.detail { text += ": \(detail.split(separator: "\n").first ?? "")" }
            return text
        }
    }
}

/// A firing as `schedules history --output json` shows it: the record, with its start delay
/// and duration in seconds (the dates are whole seconds in the JSON).
struct FiringReport: Encodable {
    var firing: FiringRecord
    var startDelaySeconds: Double?
    var durationSeconds: Double?

    init(_ firing: FiringRecord) {
        self.firing = firing
        startDelaySeconds = firing.startedAt.map { $0.timeIntervalSince(firing.dueAt) }
        durationSeconds = firing.startedAt.flatMap { started in firing.finishedAt.map { $0.timeIntervalSince(started) } }
    }

    private enum CodingKeys: String, CodingKey {
        case startDelaySeconds, durationSeconds
    }

    func encode(to encoder: Encoder) throws {
        try firing.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(startDelaySeconds, forKey: .startDelaySeconds)
        try container.encodeIfPresent(durationSeconds, forKey: .durationSeconds)
    }
}
