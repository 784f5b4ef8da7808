import ArgumentParser
import ConvergeCore
import ConvergeDocker
import Foundation

enum PlanFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, markdown
}

/// `converge reconcile [--dry-run]`: plan, and unless dry-run, apply.
struct ReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Compare the manifests with the live systems and apply the difference.",
        discussion: """
            Exit codes: 0 in sync (or applied), 2 changes pending (--dry-run only), 1 error.
            Objects are matched by the converge.dev/managed-by label; objects without it are never changed.
            """)

    @OptionGroup var source: ManifestSourceOptions

    @Flag(help: "Show the plan and change nothing.")
    var dryRun = false

    @Option(help: "How to print the plan: text, json (stable schema) or markdown (for a pull request).")
    var output: PlanFormat = .text

    @Option(help: "Colour: auto (on a terminal), always or never.")
    var color: ColorMode = .auto

    @Option(help: "Name of this Converge instance; it owns the objects labelled with it.")
    var instance: String = ProcessInfo.processInfo.environment["CONVERGE_INSTANCE"] ?? "converge"

    @Option(help: "How many steps may run at once when their dependencies allow.")
    var parallelism: Int = 8

    func run() async throws {
        do {
            let (files, revision) = try source.load()
            let set = try ManifestSet.load(files)
            let reconciler = Reconciler(providers: ProviderFactory.providers(for: set), instance: instance)
            let planned = try await reconciler.plan(set, source: revision)
            print(planned.plan)
            if dryRun {
                if !planned.plan.isEmpty { throw ExitCode(2) }
                return
            }
            guard !planned.plan.isEmpty else { return }
            try await apply(planned, with: reconciler)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw Terminal.fail(error)
        }
    }

    private func print(_ plan: Plan) {
        switch output {
        case .text: Terminal.write(PlanRenderer.text(plan, color: Terminal.useColor(color)))
        case .markdown: Terminal.write(PlanRenderer.markdown(plan))
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            Terminal.write(String(decoding: (try? encoder.encode(plan)) ?? Data(), as: UTF8.self) + "\n")
        }
    }

    private func apply(_ planned: Reconciler.PlannedChange, with reconciler: Reconciler) async throws {
        let progress = ProgressReporter(total: planned.plan.steps.count, live: Terminal.stderrIsTTY)
        let clock = ContinuousClock()
        let started = clock.now
        do {
            try await reconciler.apply(
                planned, executor: PlanExecutor(parallelism: parallelism),
                progress: { progress.update($0) },
                finished: { step, duration in progress.finished(step, duration: duration) })
        } catch {
            progress.clear()
            throw error
        }
        progress.clear()
        let summary = planned.plan.summary
        let elapsed = (clock.now - started).formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow))
        Terminal.log("Apply complete in \(elapsed): \(summary.add) added, \(summary.change) changed, \(summary.destroy) destroyed.")
    }
}

/// Step-by-step progress on stderr: a line per finished step, and on a terminal a live
/// line with the steps still running.
final class ProgressReporter: @unchecked Sendable {
    private let total: Int
    private let live: Bool
    private let lock = NSLock()
    private var done = 0
    private var statusShown = false

    init(total: Int, live: Bool) {
        self.total = total
        self.live = live
    }

    func update(_ progress: PlanExecutor.Progress) {
        guard live else { return }
        lock.withLock {
            let running = progress.running.map { "\($0.action) \($0.resource)" }.joined(separator: ", ")
            write("\r\u{1B}[2K[\(progress.finished)/\(total)] \(running)")
            statusShown = true
        }
    }

    func finished(_ step: PlanStep, duration: Duration) {
        lock.withLock {
            done += 1
            let millis = Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
            let line = "[\(done)/\(total)] \(past(step.action)) \(step.resource) (\(millis) ms)"
            write((statusShown ? "\r\u{1B}[2K" : "") + line + "\n")
            statusShown = false
        }
    }

    func clear() {
        lock.withLock {
            if statusShown { write("\r\u{1B}[2K") }
            statusShown = false
        }
    }

    private func past(_ action: PlanStep.Action) -> String {
        switch action {
        case .create: return "created"
        case .update: return "updated"
        case .delete: return "deleted"
        }
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
