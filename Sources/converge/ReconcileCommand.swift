import ArgumentParser
import ConvergeCore
import ConvergeRuntime
import ConvergeStore
import ConvergeWorkers
import ConvergeWorkflow

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
    var instance: String = ConvergeCommand.defaultInstance

    @Option(help: "How many steps may run at once when their dependencies allow.")
    var parallelism: Int = 8

    @OptionGroup var workers: WorkerDispatchOptions

    func run() async throws {
        try await Terminal.run(instance: instance) { runtime in
            let snapshot = try await source.load()
            let set = try runtime.load(snapshot)
            if dryRun {
                // The store is read, never written: some providers keep what no live system
                // says (the inputs a playbook last ran with) in it.
                let planned = try await storage.with { store in
                    runtime.useStore(store)
                    return try await runtime.plan(set, source: snapshot.revision)
                }
                print(planned.plan)
                if !planned.plan.isEmpty { throw ExitCode(2) }
                return
            }
            let progress = ProgressReporter(live: Terminal.stderrIsTTY)
            try await storage.with { store in
                try await workers.withDispatcher(store) { dispatcher in
                    var engine = runtime.engine(
                        store: store, parallelism: parallelism, events: { progress.handle($0) }, faults: FaultInjection.hook)
                    engine.dispatcher = dispatcher
                    let tick = ReconcileTick(
                        engine: engine, options: workflow.options,
                        resumed: { run in
                            progress.clear()
                            Terminal.log(RunOutcome.line(run))
                        },
                        planned: { plan in
                            print(plan)
                            if !plan.isEmpty { progress.begin(total: plan.steps.count) }
                        })
                    guard case .ran(_, let run) = try await tick.run(set, files: snapshot.files, revision: snapshot.revision) else {
                        return
                    }
                    progress.clear()
                    Terminal.log(RunOutcome.line(run))
                    try RunOutcome.exit(for: run)
                }
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
