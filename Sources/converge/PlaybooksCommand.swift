import ArgumentParser
import ConvergeAnsible
import ConvergeCore
import ConvergeRuntime
import ConvergeStore
import Foundation

/// `converge playbooks run NAME`: a PlaybookRun now, on demand, as a journaled run.
struct PlaybooksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "playbooks", abstract: "Run playbooks on demand.", subcommands: [RunPlaybook.self])

    struct RunPlaybook: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Run a PlaybookRun (or a ScheduledPlaybook) now, whether or not its inputs changed, as a journaled run.",
            discussion: """
                The playbook's files are the source's, pinned by the plan; its approval policies apply.
                Exit codes: 0 every host ok, 3 waiting for approval, 1 a host failed or the run could not start.
                """)

        @Argument(help: "The name of a PlaybookRun, or of a ScheduledPlaybook to run now.")
        var name: String

        @Option(help: "Only this host, group or environment of its target.")
        var limit: String?

        @Flag(help: "Check mode (ansible-playbook --check): report what would change, change nothing.")
        var check = false

        @OptionGroup var source: ManifestSourceOptions
        @OptionGroup var storage: StoreOptions
        @OptionGroup var workflow: WorkflowOptionsGroup

        @Option(help: "Name of this Converge instance.")
        var instance: String = ConvergeCommand.defaultInstance

        func run() async throws {
            try await Terminal.run(instance: instance) { runtime in
                let snapshot = try await source.load()
                let set = try runtime.load(snapshot)
                // A PlaybookRun, or a schedule's playbook run now, outside its schedule.
                guard
                    let id = [PlaybookRunSpec.kind, ScheduledPlaybookSpec.kind].map({ ResourceID(kind: $0, name: name) }).first(where: {
                        set[$0] != nil
                    })
                else {
                    let known = (set.resources(ofKind: PlaybookRunSpec.kind) + set.resources(ofKind: ScheduledPlaybookSpec.kind)).map(
                        \.id.description)
                    throw ValidationError(
                        "no PlaybookRun or ScheduledPlaybook named '\(name)' in the manifests (defined: \(known.isEmpty ? "none" : known.joined(separator: ", ")))"
                    )
                }
                var fields: [FieldChange] = []
                if let limit {
                    fields.append(FieldChange(path: ActionField.limit, before: nil, after: .string(limit), forcesReplacement: false))
                }
                if check { fields.append(FieldChange(path: "checkMode", before: nil, after: .bool(true), forcesReplacement: false)) }
                try await storage.with { store in
                    let progress = ProgressReporter(live: Terminal.stderrIsTTY)
                    let engine = runtime.engine(store: store, parallelism: 1, events: { progress.handle($0) }, faults: FaultInjection.hook)
                    let planned = try await runtime.planAction(
                        on: id, in: set, fields: fields, reason: "on demand (converge playbooks run)", source: snapshot.revision)
                    Terminal.write(PlanRenderer.text(planned.plan, color: false))
                    let run = try await engine.start(planned, manifests: snapshot.files, options: workflow.options)
                    progress.clear()
                    for step in try await store.steps(run: run.id) {
                        if let text = step.reportText {
                            Terminal.write(text + "\n")
                        }
                    }
                    Terminal.log(RunOutcome.line(run))
                    try RunOutcome.exit(for: run)
                }
            }
        }
    }
}

/// `converge inventory`: the hosts of every Inventory, as playbooks see them.
struct InventoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inventory", abstract: "List the hosts of the inventories: environment, groups, address, ssh user, VM.")

    @OptionGroup var source: ManifestSourceOptions
    @OptionGroup var storage: StoreOptions

    @Option(help: "Name of this Converge instance (whose provisioned machines are shown active).")
    var instance: String = ConvergeCommand.defaultInstance

    @Option(help: "text or json.")
    var output: ReportFormat = .text

    func run() async throws {
        try await Terminal.run(instance: instance) { runtime in
            let set = try runtime.load(try await source.load())
            let statuses = try await storage.with { store in
                Dictionary(try await store.records(instance: instance, prefix: "").map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
            }
            var rows: [HostRow] = []
            for inventory in set.resources(ofKind: InventorySpec.kind) {
                guard let spec = inventory.spec(as: InventorySpec.self) else { continue }
                for host in spec.hosts(in: set) {
                    let status = host.vm.flatMap { statuses[MachineStatus.recordKey(target: $0.vcenter, machine: $0.name)] }
                        .flatMap { try? JSONDecoder().decode(MachineStatus.self, from: Data($0.utf8)) }
                    rows.append(
                        HostRow(
                            inventory: inventory.id.name, environment: host.environment, groups: host.groups, host: host.name,
                            address: host.address, user: host.ssh.user ?? "", port: host.ssh.port ?? 22,
                            vm: host.vm.map { "\($0.vcenter.name)/\($0.name)" }, status: status.map { "\($0.status) (\($0.playbook))" }))
                }
            }
            switch output {
            case .json: Terminal.write(JSONOutput.encode(rows))
            case .text: Terminal.write(HostRow.table(rows))
            }
        }
    }

    struct HostRow: Codable {
        var inventory: String
        var environment: String
        var groups: [String]
        var host: String
        var address: String
        var user: String
        var port: Int
        var vm: String?
        /// `active (base)` once a provisioning playbook succeeded on it.
        var status: String?

        static func table(_ rows: [HostRow]) -> String {
            guard !rows.isEmpty else { return "No hosts.\n" }
            let header = ["INVENTORY", "ENVIRONMENT", "GROUPS", "HOST", "ADDRESS", "USER", "PORT", "VM", "STATUS"]
            let cells = rows.map {
                [
                    $0.inventory, $0.environment, $0.groups.joined(separator: ","), $0.host, $0.address, $0.user, String($0.port),
                    $0.vm ?? "-", $0.status ?? "-",
                ]
            }
            return Terminal.table(header, cells)
        }
    }
}
