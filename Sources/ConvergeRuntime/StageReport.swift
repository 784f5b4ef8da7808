import ConvergeStore
import ConvergeWorkflow

/// Several runs read as the stages of one change, each with what its probes found, and a
/// verdict on the last: done when it succeeded and every probe is as expected.
public struct StageReport: Sendable {
    public struct Stage: Sendable {
        public var run: RunRecord
        public var probes: [ProbeRecord]
    }

    /// Oldest first; never empty.
    public var stages: [Stage]

    /// The stages of runs `ids` (oldest first), or of the last `last` runs of `instance`.
    public static func load(ids: [Int64], last: Int, instance: String, from store: any WorkflowStore) async throws -> StageReport {
        var runs: [RunRecord] = []
        if ids.isEmpty {
            runs = try await store.runs(RunFilter(instance: instance, limit: last)).reversed()
        } else {
            for id in ids {
                guard let run = try await store.run(id) else { throw WorkflowError.noSuchRun(id) }
                runs.append(run)
            }
        }
        guard !runs.isEmpty else { throw RuntimeError(.noRuns, "no runs to report") }
        var stages: [Stage] = []
        for run in runs { stages.append(Stage(run: run, probes: try await store.probeResults(run: run.id))) }
        return StageReport(stages: stages)
    }

    public var succeeded: Bool {
        guard let final = stages.last else { return false }
        return final.run.status == .succeeded && final.probes.allSatisfy(\.passed)
    }

    public var text: String {
        var lines: [String] = []
        for (index, stage) in stages.enumerated() {
            let commit = stage.run.commit.map { " @ \($0.prefix(12))" } ?? ""
            lines.append("Stage \(index + 1): run \(stage.run.id)\(commit): \(stage.run.status.rawValue)")
            lines.append(ProbeSuite.text(stage.probes).trimmingCharacters(in: .newlines))
            lines.append("")
        }
        if let final = stages.last {
            lines.append(
                succeeded
                    ? "SUCCESS: run \(final.run.id) succeeded and all \(final.probes.count) probes are as expected."
                    : "NOT DONE: run \(final.run.id) is \(final.run.status.rawValue); \(final.probes.filter { !$0.passed }.count) probes are not as expected."
            )
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
