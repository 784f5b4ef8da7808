import ArgumentParser
import ConvergeRuntime
import ConvergeStore
import ConvergeWorkflow
import Foundation

/// Who is deciding, and why; recorded with the decision.
struct DecisionOptions: ParsableArguments {
    @Option(help: "Who decides (default: $USER); with --server, the token's user decides.")
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
    @OptionGroup var remote: ServerOptions

    @Option(help: "The plan digest you reviewed (sha256:…); refused if the run's plan is another.")
    var digest: String?

    @Option(help: "How many steps may run at once.")
    var parallelism: Int = 8

    func run() async throws {
        try await Terminal.run { runtime in
            let handled = try await remote.ifServer { client in
                var body = ["comment": decision.comment]
                body["digest"] = digest
                let answer = try await client.send(.POST, "/api/v1/runs/\(id)/approve", body: body, as: [String: String].self)
                Terminal.log(
                    "Run \(id) approved by \(answer["approvedBy"] ?? "you") for \(answer["planDigest"] ?? "its plan"); the controller applies it."
                )
            }
            if handled { return }
            try await RunOutcome.act(onRun: id, runtime: runtime, storage: storage, parallelism: parallelism) { engine in
                try await engine.approve(id, approver: decision.approver, comment: decision.comment, digest: digest)
            }
        }
    }
}

/// `converge reject RUN_ID`: end a waiting run without changing anything.
struct RejectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reject", abstract: "Reject a run waiting for approval; nothing is changed.")

    @Argument(help: "The run's id.")
    var id: Int64

    @OptionGroup var decision: DecisionOptions
    @OptionGroup var storage: StoreOptions
    @OptionGroup var remote: ServerOptions

    func run() async throws {
        try await Terminal.run { runtime in
            let handled = try await remote.ifServer { client in
                let run = try await client.send(
                    .POST, "/api/v1/runs/\(id)/reject", body: ["comment": decision.comment], as: RunReport.RunSummary.self)
                Terminal.log("Run \(run.id) was rejected.")
            }
            if handled { return }
            try await RunOutcome.act(onRun: id, runtime: runtime, storage: storage, parallelism: 1) { engine in
                try await engine.reject(id, approver: decision.approver, comment: decision.comment)
            }
        }
    }
}
