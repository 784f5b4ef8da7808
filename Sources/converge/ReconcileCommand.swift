import ArgumentParser
import ConvergeCore
import ConvergeStore
import ConvergeWorkflow
import Foundation

enum PlanFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, markdown
}

/// `converge reconcile [--dry-run]`: plan, and unless dry-run, run the plan as a durable run.
struct ReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Compare the manifests with the live systems and apply the difference.",
        discussion: """
            Exit codes: 0 in sync or applied, 2 changes pending (--dry-run), 3 waiting for approval, 1 error or rolled back.
            Interrupted runs of this instance are resumed first. Objects are matched by the
            converge.dev/managed-by label; objects without it are never changed.
            """)

    @OptionGroup var source: ManifestSourceOptions
    @OptionGroup var storage: StoreOptions
    @OptionGroup var workflow: WorkflowOptionsGroup

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
        try await Terminal.run {
            let (files, revision) = try source.load()
            let set = try ManifestSet.load(files)
            let progress = ProgressReporter(live: Terminal.stderrIsTTY)
            if dryRun {
                let reconciler = Reconciler(providers: EngineFactory.providers(for: set), instance: instance)
                let planned = try await reconciler.plan(set, source: revision)
                print(planned.plan)
                if !planned.plan.isEmpty { throw ExitCode(2) }
                return
            }
            try await storage.with { store in
                let engine = EngineFactory.engine(store: store, instance: instance, parallelism: parallelism, progress: progress)
                for resumed in try await engine.resumeInterrupted() {
                    progress.clear()
                    Terminal.log(RunReport.outcomeLine(resumed))
                }
                let planned = try await engine.plan(set, source: revision)
                print(planned.plan)
                guard !planned.plan.isEmpty else { return }
                progress.begin(total: planned.plan.steps.count)
                let run = try await engine.start(planned, manifests: files, options: workflow.options)
                progress.clear()
                Terminal.log(RunReport.outcomeLine(run))
                try RunReport.exit(for: run)
            }
        }
    }

    private func print(_ plan: Plan) {
        switch output {
        case .text: Terminal.write(PlanRenderer.text(plan, color: Terminal.useColor(color)))
        case .markdown: Terminal.write(PlanRenderer.markdown(plan))
        case .json: Terminal.write(JSONOutput.encode(plan))
        }
    }
}
