import ArgumentParser
import ConvergeRuntime

/// `converge probe`: runs the set's `Probe` manifests and reports OK/FAIL for each.
struct ProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Run the Probe manifests: reachability from containers and routers.",
        discussion: "Exit 0 when every probe gets what it expects, 1 otherwise.")

    @OptionGroup var source: ManifestSourceOptions

    @Option(help: "text or json.")
    var output: ReportFormat = .text

    func run() async throws {
        try await Terminal.run { runtime in
            let set = try runtime.load(try await source.load())
            let results = await ProbeSuite(registry: runtime.registry).run(set)
            Terminal.write(output == .json ? JSONOutput.encode(results) : ProbeSuite.text(results))
            if results.contains(where: { !$0.passed }) { throw ExitCode(1) }
        }
    }
}
