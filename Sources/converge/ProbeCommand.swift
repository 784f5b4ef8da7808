import ArgumentParser
import ConvergeCore
import ConvergeDocker
import Foundation

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
        try await Terminal.run {
            let (files, _) = try source.load()
            let set = try ManifestSet.load(files)
            let results = try await ProbeSuite.run(set)
            if output == .json {
                Terminal.write(JSONOutput.encode(results))
            } else {
                Terminal.write(ProbeSuite.text(results))
            }
            if results.contains(where: { !$0.passed }) { throw ExitCode(1) }
        }
    }
}

/// Runs every probe of a set, each through the engine of its source's DockerHost.
enum ProbeSuite {
    static func run(_ set: ManifestSet) async throws -> [ProbeResult] {
        var results: [ProbeResult] = []
        for probe in set.resources(ofKind: ProbeSpec.kind) {
            guard let spec = probe.spec(as: ProbeSpec.self),
                  let host = set[spec.source(in: set)]?.spec.target(in: set),
                  let socket = set[host]?.spec(as: DockerHostSpec.self)?.socketPath else { continue }
            results.append(try await ProbeRunner(engine: DockerEngine(socketPath: socket)).run(probe, in: set))
        }
        return results
    }

    /// One line per probe, as the seed's report had them: `OK` or `FAIL`, then what was
    /// checked, then whether that matched the expectation.
    static func text(_ results: [ProbeResult]) -> String {
        guard !results.isEmpty else { return "No probes.\n" }
        var lines = results.map { result in
            let outcome = result.reachable ? "OK  " : "FAIL"
            let verdict = result.passed ? "as expected" : "EXPECTED \(result.expected ? "reachable" : "unreachable")"
            return "  \(outcome) \(result.probe): \(result.summary) (\(result.detail)) — \(verdict)"
        }
        let failed = results.filter { !$0.passed }.count
        lines.append(failed == 0 ? "All \(results.count) probes as expected." : "\(failed) of \(results.count) probes not as expected.")
        return lines.joined(separator: "\n") + "\n"
    }
}
