import ArgumentParser
import ConvergeCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `converge`: GitOps reconciler for hybrid infrastructure.
@main
struct ConvergeCommand: AsyncParsableCommand {
    static let version = "0.1.0"
    /// The instance a command acts as unless `--instance` names another.
    static let defaultInstance = ProcessInfo.processInfo.environment["CONVERGE_INSTANCE"] ?? "converge"

    static let configuration = CommandConfiguration(
        commandName: "converge",
        abstract: "Keep live infrastructure in line with the manifests committed to Git.",
        version: version,
        subcommands: [
            ValidateCommand.self, ReconcileCommand.self, ControllerCommand.self, ProbeCommand.self, RunsCommand.self, ReportCommand.self,
            ApproveCommand.self, RejectCommand.self, SnapshotsCommand.self, PullRequestCommand.self, PlaybooksCommand.self,
            InventoryCommand.self, SchedulesCommand.self, ImportCommand.self, WorkerCommand.self, WorkersCommand.self, KeysCommand.self,
        ])

    /// A closed pipe (`converge … | head`, a remote hanging up on libgit2) must surface as an
    /// error on that write, not kill the process halfway through a change.
    static func main() async {
        signal(SIGPIPE, SIG_IGN)
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
