import ArgumentParser
import ConvergeRuntime
import ConvergeStore
import ConvergeWorkflow
import Foundation

enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// `converge runs`: the history of reconcile runs.
struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List reconcile runs, newest first.",
        subcommands: [ListRuns.self, ShowRun.self, ResumeRun.self],
        defaultSubcommand: ListRuns.self)

    struct ListRuns: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List runs, newest first.")

        @OptionGroup var storage: StoreOptions
        @OptionGroup var remote: ServerOptions

        @Flag(help: "Only runs that failed, rolled back or could not roll back.")
        var failed = false

        @Option(help: "text, or json (with each run's steps, errors and approvals, for diagnosis).")
        var output: ReportFormat = .text

        @Option(help: "At most this many runs.")
        var limit: Int = 50

        @Option(help: "Only the runs of this Converge instance.")
        var instance: String?

        func run() async throws {
            try await Terminal.run { _ in
                let statuses: Set<RunStatus>? = failed ? Set(RunStatus.allCases.filter(\.isFailure)) : nil
                let handled = try await remote.ifServer { client in
                    var path = "/api/v1/runs?limit=\(limit)"
                    if let instance { path += "&source=\(instance)" }
                    let runs = try await client.send(.GET, path, as: [RunReport.RunSummary].self).filter {
                        statuses?.contains($0.status) ?? true
                    }
                    switch output {
                    case .json:
                        var reports: [RunReport] = []
                        for run in runs { reports.append(try await client.send(.GET, "/api/v1/runs/\(run.id)", as: RunReport.self)) }
                        Terminal.write(JSONOutput.encode(reports))
                    case .text:
                        Terminal.write(table(runs))
                    }
                }
                if handled { return }
                try await storage.with { store in
                    let runs = try await store.runs(RunFilter(statuses: statuses, instance: instance, limit: limit))
                    switch output {
                    case .json:
                        var reports: [RunReport] = []
                        for run in runs { reports.append(try await RunReport.load(run, from: store)) }
                        Terminal.write(JSONOutput.encode(reports))
                    case .text:
                        Terminal.write(table(runs.map(RunReport.summary)))
                    }
                }
            }
        }

        private func table(_ runs: [RunReport.RunSummary]) -> String {
            guard !runs.isEmpty else { return "No runs.\n" }
            var lines = ["ID    STATUS             CREATED                   COMMIT        PLAN"]
            for run in runs {
                let plan = String(run.planDigest.dropFirst("sha256:".count).prefix(12))
                lines.append(
                    "\(String(run.id).padding(toLength: 5, withPad: " ", startingAt: 0)) \(run.status.rawValue.padding(toLength: 18, withPad: " ", startingAt: 0)) \(RunReport.timestamp(run.createdAt).padding(toLength: 25, withPad: " ", startingAt: 0)) \(String((run.commit ?? "-").prefix(12)).padding(toLength: 13, withPad: " ", startingAt: 0)) \(plan)"
                )
            }
            return lines.joined(separator: "\n") + "\n"
        }
    }

    struct ShowRun: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show", abstract: "Show one run: plan, steps, durations, errors, approvals.")

        @Argument(help: "The run's id.")
        var id: Int64

        @OptionGroup var storage: StoreOptions
        @OptionGroup var remote: ServerOptions

        @Option(help: "text or json.")
        var output: ReportFormat = .text

        func run() async throws {
            try await Terminal.run { _ in
                let handled = try await remote.ifServer { client in
                    let report = try await client.send(.GET, "/api/v1/runs/\(id)", as: RunReport.self)
                    Terminal.write(output == .json ? JSONOutput.encode(report) : report.text)
                }
                if handled { return }
                try await storage.with { store in
                    guard let run = try await store.run(id) else { throw WorkflowError.noSuchRun(id) }
                    let report = try await RunReport.load(run, from: store)
                    Terminal.write(output == .json ? JSONOutput.encode(report) : report.text)
                }
            }
        }
    }

    struct ResumeRun: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "resume", abstract: "Continue an interrupted run where it stopped.")

        @Argument(help: "The run's id.")
        var id: Int64

        @OptionGroup var storage: StoreOptions

        @Option(help: "How many steps may run at once.")
        var parallelism: Int = 8

        func run() async throws {
            try await Terminal.run { runtime in
                try await RunOutcome.act(onRun: id, runtime: runtime, storage: storage, parallelism: parallelism) { engine in
                    try await engine.resume(id)
                }
            }
        }
    }
}
