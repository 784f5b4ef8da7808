import ArgumentParser
import ConvergeCore
import ConvergeRuntime
import ConvergeVSphere
import Foundation

/// `converge snapshots gc`: the snapshot retention pass on every VCenter of the manifest set.
struct SnapshotsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshots",
        abstract: "Manage the snapshots Converge takes before changing VMs.",
        subcommands: [GC.self])

    struct GC: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gc",
            abstract: "Delete automatic snapshots older than the retention.",
            discussion: """
                Only snapshots whose name starts with "\(SnapshotNaming.automaticPrefix)" (the ones Converge takes) and that are older than
                the retention are deleted, on the VMs this Converge instance owns. Any other snapshot is never touched.
                The retention is the VCenter's spec.snapshotRetention (default \(RetentionHours.standard.hours)h) unless --retention is given.
                An error on one VM is reported and the others are still handled; the exit code is then 1.
                """)

        @OptionGroup var source: ManifestSourceOptions
        @OptionGroup var storage: StoreOptions

        @Flag(help: "List what would be deleted and delete nothing.")
        var dryRun = false

        @Option(help: "Keep automatic snapshots younger than this: whole hours from 1h to 99h, e.g. 24h.")
        var retention: String?

        @Option(help: "Name of this Converge instance; only the VMs it owns are handled.")
        var instance: String = ConvergeCommand.defaultInstance

        func validate() throws {
            if let retention, case .failure(let error) = RetentionHours.parse(retention) {
                throw ValidationError("--retention '\(retention)' \(error): \(RetentionHours.hint)")
            }
        }

        func run() async throws {
            try await Terminal.run(instance: instance) { runtime in
                let set = try runtime.load(try await source.load())
                let override = retention.flatMap { try? RetentionHours.parse($0).get() }
                // The store says which VMs this instance snapshotted before playbooks.
                let outcomes = try await storage.with { store in
                    runtime.useStore(store)
                    return try await SnapshotRetentionPass(runtime: runtime).run(set, retention: override, dryRun: dryRun)
                }
                for outcome in outcomes {
                    Terminal.write(Self.report(outcome, dryRun: dryRun))
                    for error in outcome.collection.errors { Terminal.log("Error: \(error)") }
                }
                if outcomes.contains(where: { !$0.collection.errors.isEmpty }) { throw ExitCode(1) }
            }
        }

        static func report(_ outcome: SnapshotRetentionPass.TargetOutcome, dryRun: Bool) -> String {
            let formatter = ISO8601DateFormatter()
            let collection = outcome.collection
            var lines = ["\(outcome.target): automatic snapshots older than \(outcome.retention.hours)h"]
            for entry in collection.expired {
                lines.append(
                    "  \(dryRun ? "would delete" : "deleted") \(entry.object): \(entry.snapshot) (created \(formatter.string(from: entry.created)))"
                )
            }
            lines.append(
                "  \(collection.expired.count) \(dryRun ? "to delete" : "deleted"), \(collection.recent.count) recent kept, \(collection.manual.count) manual never touched\(collection.errors.isEmpty ? "" : ", \(collection.errors.count) errors")"
            )
            return lines.joined(separator: "\n") + "\n"
        }
    }
}
