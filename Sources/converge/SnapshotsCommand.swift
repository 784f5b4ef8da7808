import ArgumentParser
import ConvergeCore
import ConvergeVSphere
import Foundation

/// `converge snapshots gc`: snapshot retention on every VCenter of the manifest set.
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
                The retention is the VCenter's spec.snapshotRetention (default 24h) unless --retention is given.
                An error on one VM is reported and the others are still handled; the exit code is then 1.
                """)

        @OptionGroup var source: ManifestSourceOptions

        @Flag(help: "List what would be deleted and delete nothing.")
        var dryRun = false

        @Option(help: "Keep automatic snapshots younger than this: whole hours from 1h to 99h, e.g. 24h.")
        var retention: String?

        @Option(help: "Name of this Converge instance; only the VMs it owns are handled.")
        var instance: String = ProcessInfo.processInfo.environment["CONVERGE_INSTANCE"] ?? "converge"

        func validate() throws {
            if let retention, case .failure(let error) = VCenterSpec.retentionHours(retention) {
                throw ValidationError("--retention '\(retention)' \(error): \(VCenterSpec.retentionHint)")
            }
        }

        func run() async throws {
            try await Terminal.run {
                let (files, _) = try source.load()
                let set = try ManifestSet.load(files)
                let vcenters = set.resources(ofKind: VCenterSpec.kind)
                guard !vcenters.isEmpty else {
                    throw CLIError("the manifest set has no VCenter", hint: "add a VCenter manifest for the vCenter whose snapshots to collect")
                }
                var failed = false
                for vcenter in vcenters {
                    guard let spec = vcenter.spec(as: VCenterSpec.self) else { continue }
                    let hours = retention.flatMap { try? VCenterSpec.retentionHours($0).get() } ?? spec.snapshotRetentionHours
                    let provider = EngineFactory.vsphereProvider(vcenter.id, spec: spec)
                    let collection = try await provider.collectSnapshots(instance: instance, retention: .seconds(hours * 3600), dryRun: dryRun)
                    Terminal.write(Self.report(collection, target: vcenter.id, hours: hours, dryRun: dryRun))
                    for error in collection.errors { Terminal.log("Error: \(error)") }
                    failed = failed || !collection.errors.isEmpty
                }
                if failed { throw ExitCode(1) }
            }
        }

        static func report(_ collection: SnapshotCollection, target: ResourceID, hours: Int, dryRun: Bool) -> String {
            let formatter = ISO8601DateFormatter()
            var lines = ["\(target): automatic snapshots older than \(hours)h"]
            for entry in collection.expired {
                lines.append("  \(dryRun ? "would delete" : "deleted") \(entry.vm): \(entry.snapshot) (created \(formatter.string(from: entry.created)))")
            }
            lines.append("  \(collection.expired.count) \(dryRun ? "to delete" : "deleted"), \(collection.recent.count) recent kept, \(collection.manual.count) manual never touched\(collection.errors.isEmpty ? "" : ", \(collection.errors.count) errors")")
            return lines.joined(separator: "\n") + "\n"
        }
    }
}
