import ArgumentParser
import ConvergeCore
import ConvergeStore
import Foundation

/// A run as people and tools read it: `converge runs`, `converge runs show`, and the line
/// `converge reconcile` ends with.
struct RunReport: Encodable {
    var run: RunSummary
    var plan: Plan?
    var steps: [StepRecord]
    var approvals: [ApprovalRecord]
    /// What the set's probes found once the run had ended.
    var probes: [ProbeRecord]

    /// The run without its bulky inputs (plan and manifests are shown separately).
    struct RunSummary: Encodable {
        var id: Int64
        var status: RunStatus
        var instance: String
        var repository: String
        var commit: String?
        var planDigest: String
        var executor: String
        var convergeVersion: String
        var error: String?
        var createdAt: Date
        var finishedAt: Date?
        var durationSeconds: Double?
    }

    static func load(_ run: RunRecord, from store: any WorkflowStore) async throws -> RunReport {
        RunReport(
            run: summary(run),
            plan: try? JSONDecoder().decode(Plan.self, from: Data(run.planJSON.utf8)),
            steps: try await store.steps(run: run.id),
            approvals: try await store.approvals(run: run.id),
            probes: try await store.probeResults(run: run.id))
    }

    static func summary(_ run: RunRecord) -> RunSummary {
        RunSummary(
            id: run.id, status: run.status, instance: run.instance, repository: run.repository, commit: run.commit,
            planDigest: run.planDigest, executor: run.executor, convergeVersion: run.convergeVersion, error: run.error,
            createdAt: run.createdAt, finishedAt: run.finishedAt,
            durationSeconds: run.finishedAt.map { $0.timeIntervalSince(run.createdAt) })
    }

    /// The last line of `converge reconcile`, `approve` and `runs resume`.
    static func outcomeLine(_ run: RunRecord) -> String {
        switch run.status {
        case .succeeded: return "Run \(run.id) succeeded."
        case .awaitingApproval: return "Run \(run.id) is waiting for approval: converge approve \(run.id) --approver NAME (or converge reject \(run.id))."
        case .rolledBack: return "Run \(run.id) failed and was rolled back: \(run.error ?? "")"
        case .rollbackFailed: return "Run \(run.id) failed and its rollback failed too (see converge runs show \(run.id)):\n\(run.error ?? "")"
        case .failed: return "Run \(run.id) failed: \(run.error ?? "")"
        case .rejected: return "Run \(run.id) was rejected."
        case .superseded: return "Run \(run.id) was superseded: \(run.error ?? "")"
        case .pending, .running, .rollingBack: return "Run \(run.id) is \(run.status.rawValue)."
        }
    }

    /// 0 succeeded (or rejected, as asked), 3 waiting for approval, 1 anything that ended badly.
    static func exit(for run: RunRecord) throws {
        switch run.status {
        case .succeeded, .rejected, .pending, .running: return
        case .awaitingApproval: throw ExitCode(3)
        default: throw ExitCode(1)
        }
    }

    /// `converge runs show`: the run, its plan, each step with attempts, timing and errors,
    /// the approvals.
    var text: String {
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
        if !steps.isEmpty {
            lines.append("")
            lines.append("Steps:")
            for step in steps {
                var line = "  \(String(step.index).leftPad(3)). \(step.status.rawValue.padding(toLength: 19, withPad: " ", startingAt: 0)) \(step.action) \(step.resource)"
                if step.attempts > 1 { line += " (\(step.attempts) attempts)" }
                if let started = step.startedAt, let finished = step.finishedAt {
                    line += " \(Int(finished.timeIntervalSince(started) * 1000)) ms"
                }
                lines.append(line)
                if let error = step.error { lines.append("       \(error)") }
            }
        }
        if let plan, !plan.approvals.isEmpty {
            lines.append("")
            lines.append("Approvals required:")
            for requirement in plan.approvals {
                lines.append("  ApprovalPolicy/\(requirement.policy): \(requirement.resources.map(\.description).joined(separator: ", "))")
            }
        }
        if !approvals.isEmpty {
            lines.append("")
            lines.append("Decisions:")
            for approval in approvals {
                lines.append("  \(approval.decision.rawValue) by \(approval.approver) at \(Self.timestamp(approval.at)) for \(approval.planDigest)\(approval.comment.isEmpty ? "" : ": \(approval.comment)")")
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

    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}

extension String {
    func leftPad(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
