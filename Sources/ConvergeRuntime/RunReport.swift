import ConvergeCore
import ConvergeStore
import Foundation

/// A run as people and tools read it: its record without the bulky inputs, its plan, steps,
/// decisions, and what the probes found once it had ended.
public struct RunReport: Codable, Sendable {
    public var run: RunSummary
    public var plan: Plan?
    public var steps: [StepRecord]
    public var approvals: [ApprovalRecord]
    /// What the set's probes found once the run had ended.
    public var probes: [ProbeRecord]

    /// The run without its bulky inputs (plan and manifests are shown separately).
    public struct RunSummary: Codable, Sendable {
        public var id: Int64
        public var status: RunStatus
        public var instance: String
        public var repository: String
        public var commit: String?
        public var planDigest: String
        public var executor: String
        public var convergeVersion: String
        public var error: String?
        public var createdAt: Date
        public var finishedAt: Date?
        public var durationSeconds: Double?
    }

    public static func load(_ run: RunRecord, from store: any WorkflowStore) async throws -> RunReport {
        RunReport(
            run: summary(run),
            plan: try? JSONDecoder().decode(Plan.self, from: Data(run.planJSON.utf8)),
            steps: try await store.steps(run: run.id),
            approvals: try await store.approvals(run: run.id),
            probes: try await store.probeResults(run: run.id))
    }

    public static func summary(_ run: RunRecord) -> RunSummary {
        RunSummary(
            id: run.id, status: run.status, instance: run.instance, repository: run.repository, commit: run.commit,
            planDigest: run.planDigest, executor: run.executor, convergeVersion: run.convergeVersion, error: run.error,
            createdAt: run.createdAt, finishedAt: run.finishedAt,
            durationSeconds: run.finishedAt.map { $0.timeIntervalSince(run.createdAt) })
    }

    /// `converge runs show`: the run, its plan, each step with attempts, timing and errors,
    /// the approvals.
    public var text: String {
        var lines: [String] = []
        lines.append("Run \(run.id): \(run.status.rawValue)")
        lines.append("  source:   \(run.repository)\(run.commit.map { " @ \($0.prefix(12))" } ?? "")")
        lines.append("  plan:     \(run.planDigest)")
        if let plan {
            lines.append("            \(plan.summary.add) to add, \(plan.summary.change) to change, \(plan.summary.destroy) to destroy")
            for warning in plan.warnings { lines.append("  warning:  \(warning)") }
        }
        lines.append("  started:  \(Self.timestamp(run.createdAt)) by \(run.executor) (Converge \(run.convergeVersion))")
        if let finished = run.finishedAt {
            lines.append("  finished: \(Self.timestamp(finished)) (\(String(format: "%.2f", finished.timeIntervalSince(run.createdAt))) s)")
        }
        if let plan, !plan.changes.isEmpty {
            // What the steps act on: each change's fields, as the plan showed them.
            lines.append("")
            lines.append("Changes:")
            for change in plan.changes {
                lines.append("  \(change.action.rawValue) \(change.resource)" + (change.reason.map { " (\($0))" } ?? ""))
                for field in change.fields {
                    let before = field.before?.rendered ?? "(none)", after = field.after?.rendered ?? "(none)"
                    lines.append("      \(field.path): " + (change.action == .create ? after : "\(before) → \(after)"))
                }
            }
        }
        if !steps.isEmpty {
            lines.append("")
            lines.append("Steps:")
            for step in steps {
                let phase = plan?.steps.indices.contains(step.index) == true ? plan?.steps[step.index].phase.map { " (\($0))" } : nil
                var line =
                    "  \(String(step.index).leftPad(3)). \(step.status.rawValue.padding(toLength: 19, withPad: " ", startingAt: 0)) \(step.action) \(step.resource)\(phase ?? "")"
                if step.attempts > 1 { line += " (\(step.attempts) attempts)" }
                if let started = step.startedAt, let finished = step.finishedAt {
                    line += " \(Int(finished.timeIntervalSince(started) * 1000)) ms"
                }
                if let worker = step.worker { line += " on worker \(worker) (Converge \(step.convergeVersion))" }
                lines.append(line)
                if let error = step.error { lines.append("       \(error)") }
                // A provider's report (a playbook's recap per host) carries its own rendering.
                if let text = step.reportText {
                    lines += text.split(separator: "\n", omittingEmptySubsequences: false).map { "       \($0)" }
                }
            }
        }
        if let plan, !plan.approvals.isEmpty {
            lines.append("")
            lines.append("Approvals required:")
            for requirement in plan.approvals {
                let held = requirement.gate.map { " (before step \($0))" } ?? ""
                lines.append("  ApprovalPolicy/\(requirement.policy): \(requirement.resources.map(\.description).joined(separator: ", "))\(held)")
            }
        }
        if !approvals.isEmpty {
            lines.append("")
            lines.append("Decisions:")
            for approval in approvals {
                lines.append(
                    "  \(approval.decision.rawValue) by \(approval.approver) at \(Self.timestamp(approval.at)) for \(approval.planDigest)\(approval.via.map { " (\($0))" } ?? "")\(approval.comment.isEmpty ? "" : ": \(approval.comment)")"
                )
            }
        }
        if !probes.isEmpty {
            lines.append("")
            lines.append("Probes:")
            lines.append(ProbeSuite.text(probes).trimmingCharacters(in: .newlines))
        }
        if let error = run.error {
            lines.append("")
            lines.append("Error:")
            lines.append(contentsOf: error.split(separator: "\n").map { "  \($0)" })
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}

extension String {
    fileprivate func leftPad(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

extension StepRecord {
    /// The rendering a step's report carries for people (its `text` field), if any.
    /// What its compensation reported follows, when it was rolled back.
    public var reportText: String? {
        let report = self.report.flatMap { try? JSONValue.parse(Array($0.utf8)) }
        let texts = [report?["text"]?.string, report?["compensation"]?["text"]?.string.map { "rolled back: \($0)" }].compactMap { $0 }
        return texts.isEmpty ? nil : texts.joined(separator: "\n")
    }
}
