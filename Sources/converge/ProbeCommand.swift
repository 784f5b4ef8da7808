import ArgumentParser
import ConvergeCore
import ConvergeDocker
import ConvergeStore
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
            let results = await ProbeSuite.run(set)
            if output == .json {
                Terminal.write(JSONOutput.encode(results))
            } else {
                Terminal.write(ProbeSuite.text(results))
            }
            if results.contains(where: { !$0.passed }) { throw ExitCode(1) }
        }
    }
}

/// Runs every probe of a set, each through the engine of its source's DockerHost. A probe
/// that cannot run (its container is gone) counts as unreachable, with the reason.
enum ProbeSuite {
    /// All probes at once (each waits on the network, not the CPU), reported in set order.
    static func run(_ set: ManifestSet) async -> [ProbeRecord] {
        let probes = set.resources(ofKind: ProbeSpec.kind)
        return await withTaskGroup(of: (Int, ProbeRecord?).self) { group in
            for (index, probe) in probes.enumerated() {
                group.addTask { (index, await run(probe, in: set)) }
            }
            var results = [ProbeRecord?](repeating: nil, count: probes.count)
            for await (index, result) in group { results[index] = result }
            return results.compactMap { $0 }
        }
    }

    private static func run(_ probe: Resource, in set: ManifestSet) async -> ProbeRecord? {
        guard let spec = probe.spec(as: ProbeSpec.self) else { return nil }
        do {
            guard let host = set[spec.source(in: set)]?.spec.target(in: set),
                  let socket = set[host]?.spec(as: DockerHostSpec.self)?.socketPath else {
                throw ProbeError.unresolved(probe.id)
            }
            let result = try await ProbeRunner(engine: DockerEngine(socketPath: socket)).run(probe, in: set)
            return ProbeRecord(probe: result.probe, summary: result.summary, reachable: result.reachable,
                               expected: result.expected, detail: result.detail, at: Date())
        } catch {
            return ProbeRecord(probe: probe.id.name, summary: spec.summary(in: set), reachable: false, expected: spec.expectReachable,
                               detail: "could not run: \(error)", at: Date())
        }
    }

    /// One line per probe, as the seed's report had them: `OK` or `FAIL` (did it answer),
    /// what was checked, and whether that was what the probe expects.
    static func text(_ results: [ProbeRecord]) -> String {
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
