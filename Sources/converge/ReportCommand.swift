import ArgumentParser
import ConvergeRuntime

/// `converge report`: several runs read as the stages of one change, with what the probes
/// found after each, and a verdict on the last.
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
    var instance: String = ConvergeCommand.defaultInstance

    @OptionGroup var storage: StoreOptions

    func run() async throws {
        try await Terminal.run { _ in
            let report = try await storage.with { store in
                try await StageReport.load(ids: ids, last: last, instance: instance, from: store)
            }
            Terminal.write(report.text)
            if !report.succeeded { throw ExitCode(1) }
        }
    }
}
