import ArgumentParser
import ConvergeCore

/// `converge`: GitOps reconciler for hybrid infrastructure.
@main
struct ConvergeCommand: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "converge",
        abstract: "Keep live infrastructure in line with the manifests committed to Git.",
        version: version,
        subcommands: [ValidateCommand.self, ReconcileCommand.self])
}
