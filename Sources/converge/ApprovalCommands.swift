import ArgumentParser
import ConvergeStore
import ConvergeWorkflow
import Foundation

/// Who is deciding, and why; recorded with the decision.
struct DecisionOptions: ParsableArguments {
    @Option(help: "Who decides (default: $USER).")
    var approver: String = ProcessInfo.processInfo.environment["USER"] ?? "unknown"

    @Option(help: "Why; recorded with the decision.")
    var comment: String = ""
}

/// `converge approve RUN_ID`: approve a waiting run's plan, then run it.
struct ApproveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve",
        abstract: "Approve a run waiting for approval, then run it.",
        discussion: "The approval binds to the run's plan digest; if the live state now gives another plan, it is refused.")

    @Argument(help: "The run's id.")
    var id: Int64

    @OptionGroup var decision: DecisionOptions
    @OptionGroup var storage: StoreOptions
    @OptionGroup var workflow: WorkflowOptionsGroup

    @Option(help: "The plan digest you reviewed (sha256:…); refused if the run's plan is another.")
    var digest: String?

    @Option(help: "How many steps may run at once.")
    var parallelism: Int = 8

    func run() async throws {
        do {
            try await storage.with { store in
                guard let record = try await store.run(id) else { throw WorkflowError.noSuchRun(id) }
                let progress = ProgressReporter(live: Terminal.stderrIsTTY)
                let engine = EngineFactory.engine(store: store, instance: record.instance, parallelism: parallelism, progress: progress)
                let run = try await engine.approve(id, approver: decision.approver, comment: decision.comment, digest: digest)
                progress.clear()
                Terminal.log(RunReport.outcomeLine(run))
                try RunReport.exit(for: run)
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw Terminal.fail(error)
        }
    }
}

/// `converge reject RUN_ID`: end a waiting run without changing anything.
struct RejectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reject", abstract: "Reject a run waiting for approval; nothing is changed.")

    @Argument(help: "The run's id.")
    var id: Int64

    @OptionGroup var decision: DecisionOptions
    @OptionGroup var storage: StoreOptions

    func run() async throws {
        do {
            try await storage.with { store in
                guard let record = try await store.run(id) else { throw WorkflowError.noSuchRun(id) }
                let engine = EngineFactory.engine(store: store, instance: record.instance, parallelism: 1, progress: ProgressReporter(live: false))
                let run = try await engine.reject(id, approver: decision.approver, comment: decision.comment)
                Terminal.log(RunReport.outcomeLine(run))
            }
        } catch {
            throw Terminal.fail(error)
        }
    }
}
