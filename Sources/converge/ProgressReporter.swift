import ConvergeCore
import ConvergeRuntime
import ConvergeStore
import ConvergeWorkflow
import Foundation

/// Turns workflow events into progress on stderr: a line per finished, retried, failed or
/// compensated step, and on a terminal a live line naming the steps in flight.
final class ProgressReporter: @unchecked Sendable {
    private let live: Bool
    private let lock = NSLock()
    private var total: Int?
    private var done = 0
    private var running: [Int: String] = [:]
    private var statusShown = false

    init(live: Bool) {
        self.live = live
    }

    /// Starts counting a run of `total` steps (nil when unknown, e.g. a resumed run).
    func begin(total: Int?) {
        lock.withLock {
            self.total = total
            done = 0
            running = [:]
        }
    }

    func handle(_ event: WorkflowEvent) {
        lock.withLock {
            switch event {
            case .stepStarted(let step, let attempt):
                running[step.index] = "\(step.action) \(step.resource)\(phase(step))" + (attempt > 1 ? " (attempt \(attempt))" : "")
                if attempt == 1, let warning = step.guard?.warning {
                    line("warning: \(warning)")
                } else {
                    redraw()
                }
            case .stepProgress(let step, let text):
                guard running[step.index] != nil else { break }
                running[step.index] = "\(step.action) \(step.resource)\(phase(step)): \(text)"
                redraw()
            case .stepFinished(let step, let duration):
                running[step.index] = nil
                done += 1
                line("\(counter) \(past(step.action)) \(step.resource)\(phase(step)) (\(milliseconds(duration)) ms)")
            case .stepRetrying(let step, let attempt, let delay, let error):
                line(
                    "attempt \(attempt) of \(step.action) \(step.resource) failed, retrying in \(String(format: "%.1f", delay)) s: \(error)"
                )
            case .stepFailed(let step, let error):
                running[step.index] = nil
                line("FAILED \(step.action) \(step.resource)\(phase(step)): \(error)")
            case .compensating(let step):
                running[step.index] = "undo \(step.action) \(step.resource)"
                redraw()
            case .compensated(let step):
                running[step.index] = nil
                line("rolled back \(step.action) \(step.resource)\(phase(step))")
            case .compensationFailed(let step, let error):
                running[step.index] = nil
                line("ROLLBACK FAILED for \(step.action) \(step.resource): \(error)")
            case .waitingForLease(let lease):
                line("waiting for run \(lease.runID) (\(lease.owner)), which holds these resources…")
            case .probed(let results):
                line("Probes:\n" + ProbeSuite.text(results).trimmingCharacters(in: .newlines))
            case .awaitingStepApproval(_, let message):
                line(message)
            case .runStarted:
                break
            case .resuming(let id):
                total = nil
                done = 0
                line("resuming run \(id), interrupted earlier")
            }
        }
    }

    func clear() {
        lock.withLock {
            if statusShown { write("\r\u{1B}[2K") }
            statusShown = false
        }
    }

    private var counter: String { total.map { "[\(done)/\($0)]" } ?? "[\(done)]" }

    private func redraw() {
        guard live else { return }
        let names = running.sorted { $0.key < $1.key }.map(\.value).joined(separator: ", ")
        write("\r\u{1B}[2K\(counter) \(names)")
        statusShown = true
    }

    private func line(_ text: String) {
        write((statusShown ? "\r\u{1B}[2K" : "") + text + "\n")
        statusShown = false
        if !running.isEmpty { redraw() }
    }

    /// ` (switch)` for a phase of a phased change (a rollout's), nothing otherwise.
    private func phase(_ step: PlanStep) -> String {
        step.phase.map { " (\($0))" } ?? ""
    }

    private func past(_ action: PlanStep.Action) -> String {
        switch action {
        case .create: return "created"
        case .update: return "updated"
        case .delete: return "deleted"
        }
    }

    private func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
