import ConvergeCore

/// What one ansible-playbook run is made of: a playbook, the hosts, the variables, how.
struct PlaybookJob: Sendable {
    var playbookName: String
    var playbook: PlaybookSpec
    var hosts: [InventorySpec.Host]
    var variables: [String: JSONValue]
    var checkMode: Bool
    var forks: Int
    var timeout: Duration
    /// Warn about hosts that are not vCenter VMs (the run asked for snapshots).
    var snapshots: Bool
}

/// Runs playbooks on an inventory's hosts: the one path of `PlaybookRun` steps, on-demand
/// runs, schedules and VM provisioning.
struct PlaybookRunner: Sendable {
    var inventory: InventorySpec
    var set: ManifestSet

    /// The job of `run` (a PlaybookRun's or a schedule's) on its hosts, or on those within
    /// `limit` when given.
    func job(for run: PlaybookRunSpec, named name: String, limit: String?, checkMode: Bool) throws -> PlaybookJob {
        guard let playbook = run.playbookSpec(in: set) else {
            throw AnsibleError("\(name) names Playbook/\(run.playbook), which is not in the manifest set", hint: nil)
        }
        var hosts = run.hosts(in: set)
        if let limit {
            guard let limited = inventory.hosts(matching: limit, in: set) else {
                throw AnsibleError(
                    "--limit \(limit) is not a host, group or environment of the inventory",
                    hint: "known: \(inventory.targetNames(in: set).joined(separator: ", "))")
            }
            let names = Set(limited.map(\.name))
            hosts = hosts.filter { names.contains($0.name) }
            guard !hosts.isEmpty else {
                throw AnsibleError("--limit \(limit) has no host among those of \(name) (target \(run.target))", hint: nil)
            }
        }
        return PlaybookJob(
            playbookName: run.playbook, playbook: playbook, hosts: hosts, variables: run.variables(in: set), checkMode: checkMode,
            forks: run.forks ?? min(hosts.count, PlaybookRunSpec.maximumForks), timeout: run.timeout ?? playbook.timeout,
            snapshots: run.snapshot)
    }

    /// Runs `job`. The playbook's files are read again first and must still have
    /// `pinnedDigest`, the digest the plan showed: otherwise what runs is not what was
    /// reviewed, and the run is refused before ansible-playbook starts.
    func run(_ job: PlaybookJob, pinnedDigest: String?) async throws -> PlaybookResult {
        let bundle = try currentBundle(of: job.playbook)
        if let pinnedDigest, bundle.digest != pinnedDigest {
            throw AnsibleError(
                "the files of playbook \(job.playbookName) under \(job.playbook.folder)/ changed since the plan (planned \(pinnedDigest.prefix(19)), now \(bundle.digest.prefix(19))); the run was refused before ansible-playbook started",
                hint: "plan again to review the new files")
        }
        let invocation = PlaybookInvocation(
            name: job.playbookName, bundle: bundle, playbookPath: set.repositoryPath(job.playbook.path) ?? job.playbook.path,
            inventory: inventory, hosts: job.hosts,
            variables: job.variables, checkMode: job.checkMode, forks: job.forks, timeout: job.timeout)
        var result = try await invocation.run()
        if job.snapshots {
            result.warnings = job.hosts.filter { $0.vm == nil }.map { "host \($0.name) is not a vCenter VM: it ran without a snapshot" }
        }
        return result
    }

    /// The playbook's files as the source holds them now (for a journaled run, as journaled).
    private func currentBundle(of playbook: PlaybookSpec) throws -> PlaybookBundle {
        guard let repository = set.repository, let folder = set.repositoryPath(playbook.folder) else { return playbook.bundle(in: set) }
        guard let files = try repository.files(under: folder) else {
            throw AnsibleError("the folder \(folder) of the playbook is gone from \(repository.origin)", hint: "plan again")
        }
        return PlaybookBundle(folder: folder, files: files)
    }
}

/// A playbook could not run, or did not succeed on every host.
public struct AnsibleError: Error, CustomStringConvertible {
    public var message: String
    public var hint: String?

    init(_ message: String, hint: String?) {
        self.message = message
        self.hint = hint
    }

    public var description: String { hint.map { "\(message) (\($0))" } ?? message }
}
