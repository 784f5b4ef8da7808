import ArgumentParser
import ConvergeStore
import ConvergeWorkflow
import Foundation

/// `converge report`: several runs read as the stages of one change, with what the probes
/// found after each, and a verdict on the last (scenario S1's final report).
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Show runs as stages, with each stage's probe results and a final verdict.",
        discussion: "Exit 0 when the last stage succeeded and all its probes are as expected, 1 otherwise.")

    @Argument(help: "Run ids, oldest first (default: the last --last runs of --instance).")
    var ids: [Int64] = []

    @Option(help: "Without ids: how many of the latest runs.")
    var last: Int = 3

    @Option(help: "Without ids: the runs of this instance.")
    var instance: String = ProcessInfo.processInfo.environment["CONVERGE_INSTANCE"] ?? "converge"

    @OptionGroup var storage: StoreOptions

    func run() async throws {
        try await Terminal.run {
            try await storage.with { store in
                var runs: [RunRecord] = []
                if ids.isEmpty {
                    runs = try await store.runs(RunFilter(instance: instance, limit: last)).reversed()
                } else {
                    for id in ids {
                        guard let run = try await store.run(id) else { throw WorkflowError.noSuchRun(id) }
                        runs.append(run)
                    }
                }
                guard let final = runs.last else { throw CLIError("no runs to report", hint: "run converge reconcile first") }
                var lines: [String] = []
                for (index, run) in runs.enumerated() {
                    let commit = run.commit.map { " @ \($0.prefix(12))" } ?? ""
                    lines.append("Stage \(index + 1): run \(run.id)\(commit): \(run.status.rawValue)")
                    let probes = try await store.probeResults(run: run.id)
                    lines.append(ProbeSuite.text(probes).trimmingCharacters(in: .newlines))
                    lines.append("")
                }
                let probes = try await store.probeResults(run: final.id)
                let success = final.status == .succeeded && probes.allSatisfy(\.passed)
                lines.append(success
                    ? "SUCCESS: run \(final.id) succeeded and all \(probes.count) probes are as expected."
                    : "NOT DONE: run \(final.id) is \(final.status.rawValue); \(probes.filter { !$0.passed }.count) probes are not as expected.")
                Terminal.write(lines.joined(separator: "\n") + "\n")
                if !success { throw ExitCode(1) }
            }
        }
    }
}
