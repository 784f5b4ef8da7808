import ConvergeCore
import ConvergeStore
import Foundation

/// Runs the check manifests of a set (`Probe`s), each through the plug-in that runs its kind:
/// after every run (the results go into its report) and on demand.
public struct ProbeSuite: Sendable {
    public let registry: ProviderRegistry

    public init(registry: ProviderRegistry) {
        self.registry = registry
    }

    /// All checks at once (each waits on the network, not the CPU), reported in set order.
    public func run(_ set: ManifestSet) async -> [ProbeRecord] {
        let checks = registry.checks(in: set)
        return await withTaskGroup(of: (Int, ProbeRecord).self) { group in
            for (index, check) in checks.enumerated() {
                group.addTask {
                    let result = await check.run(check.resource, set)
                    return (
                        index,
                        ProbeRecord(
                            probe: result.probe, summary: result.summary, reachable: result.reachable,
                            expected: result.expected, detail: result.detail, at: Date())
                    )
                }
            }
            var results = [ProbeRecord?](repeating: nil, count: checks.count)
            for await (index, result) in group { results[index] = result }
            return results.compactMap { $0 }
        }
    }

    /// One line per probe: `OK` or `FAIL` (did it answer), what was checked, and whether that
    /// was what the probe expects; then a count.
    public static func text(_ results: [ProbeRecord]) -> String {
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
