import ConvergeVSphere
import Foundation
import Testing

/// Playbooks run by the `converge` binary with Debian's ansible-playbook, over real ssh, on
/// containers of the lab's sshd image; snapshots on the vCenter simulator.
@Suite struct AnsibleTests {
    /// Writes `content` (become: true) to /etc/converge-marker on each host.
    static func markerPlaybook(_ extraTasks: String = "") -> String {
        """
        - hosts: all
          gather_facts: false
          tasks:
            - name: write the marker
              become: true
              copy: {dest: /etc/converge-marker, content: "{{ message }}"}
        \(extraTasks)
        """
    }

    /// The ids of the lab's runs, newest first.
    static func runIDs(_ lab: AnsibleLab) async throws -> [String] {
        let list = try await lab.converge(["runs", "--output", "json", "--instance", lab.lab.instance])
        let runs = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]] ?? []
        return runs.compactMap { (($0["run"] as? [String: Any])?["id"] as? Int).map(String.init) }
    }

    @Test func aPlaybookRunsOnOneHostOnceForEachChangeOfItsInputs() async throws {
        try await AnsibleLab.with(hosts: 1) { lab in
            try lab.write([
                "inventory.yaml": lab.inventory(),
                "ansible/marker.yml": Self.markerPlaybook(),
                "runs.yaml": lab.playbook("marker", target: "h1", runSpec: "  extraVars: {message: first}"),
            ])
            let first = try await lab.reconcile()
            #expect(first.exitCode == 0, "\(first.stdout)\n\(first.stderr)")
            #expect(first.stdout.contains("+   PlaybookRun/marker"), "\(first.stdout)")
            #expect(try await lab.file("/etc/converge-marker", on: "h1") == "first")

            let again = try await lab.reconcile()
            #expect(again.exitCode == 0)
            #expect(again.stdout.contains("No changes"), "unchanged inputs run nothing:\n\(again.stdout)")
            #expect(try await Self.runIDs(lab).count == 1)

            try lab.write(["runs.yaml": lab.playbook("marker", target: "h1", runSpec: "  extraVars: {message: second}")])
            let changed = try await lab.reconcile()
            #expect(changed.exitCode == 0, "\(changed.stderr)")
            #expect(changed.stdout.contains("~ vars.message = \"first\" → \"second\""), "\(changed.stdout)")
            #expect(try await lab.file("/etc/converge-marker", on: "h1") == "second")

            let runs = try await Self.runIDs(lab)
            let show = try await lab.converge(["runs", "show", try #require(runs.first)])
            #expect(show.stdout.contains("playbook marker: all_ok: 1 of 1 host ok"), "\(show.stdout)")
            #expect(show.stdout.contains("HOST  OK CHANGED FAILED DARK SKIPPED"), "\(show.stdout)")
        }
    }

    @Test func fromACommitAPlaybookBesideTheManifestsFolderRunsAsCommitted() async throws {
        try await AnsibleLab.with(hosts: 1) { lab in
            let repository = try await lab.lab.gitRepository()
            // Paths are relative to the manifests' folder (prod/), here reaching ../ansible.
            let runs = lab.playbook("marker", target: "h1", runSpec: "  extraVars: {message: committed}")
                .replacingOccurrences(of: "path: ansible/marker.yml", with: "path: ../ansible/marker.yml")
            try await repository.commit(
                ["prod/inventory.yaml": lab.inventory(), "prod/runs.yaml": runs, "ansible/marker.yml": Self.markerPlaybook()],
                message: "playbook")
            // An uncommitted edit is not what runs: the commit is.
            try Self.markerPlaybook().replacingOccurrences(of: "message", with: "nothing").write(
                to: repository.directory.appendingPathComponent("ansible/marker.yml"), atomically: true, encoding: .utf8)
            let result = try await lab.lab.reconcile(["--repo", repository.directory.path, "--path", "prod"])
            #expect(result.exitCode == 0, "\(result.stdout)\n\(result.stderr)")
            #expect(try await lab.file("/etc/converge-marker", on: "h1") == "committed")
        }
    }

    @Test func aGroupOfFiveRunsInParallel() async throws {
        try await AnsibleLab.with(hosts: 5) { lab in
            try lab.write([
                "inventory.yaml": lab.inventory(),
                "ansible/slow.yml": """
                - hosts: all
                  gather_facts: false
                  tasks:
                    - shell: date +%s.%N > /tmp/started; sleep 6; date +%s.%N > /tmp/ended
                """,
                "runs.yaml": lab.playbook("slow"),
            ])
            let result = try await lab.reconcile()
            #expect(result.exitCode == 0, "\(result.stdout)\n\(result.stderr)")
            var starts: [Double] = []
            var ends: [Double] = []
            for host in lab.addresses.keys {
                starts.append(
                    Double(try await lab.file("/tmp/started", on: host)?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? .infinity
                )
                ends.append(Double(try await lab.file("/tmp/ended", on: host)?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0)
            }
            // Every host was inside its six seconds of sleep at the same moment (one after another, the
            // starts would span 24 s).
            #expect(try #require(starts.max()) < (try #require(ends.min())), "starts \(starts.sorted()), ends \(ends.sorted())")
            let show = try await lab.converge(["runs", "show", try #require(try await Self.runIDs(lab).first)])
            #expect(show.stdout.contains("all_ok: 5 of 5 hosts ok"), "\(show.stdout)")
        }
    }

    @Test func oneFailingHostMakesThePlaybookPartialAndTheRunRollsBack() async throws {
        try await AnsibleLab.with(hosts: 5) { lab in
            try lab.write([
                "inventory.yaml": lab.inventory(),
                "ansible/marker.yml": Self.markerPlaybook(
                    """
                        - name: check the disk
                          fail: {msg: "disk full on {{ inventory_hostname }}"}
                          when: inventory_hostname == 'h3'
                    """),
                "runs.yaml": lab.playbook("marker", runSpec: "  extraVars: {message: hello}"),
            ])
            let result = try await lab.reconcile()
            #expect(result.exitCode == 1, "\(result.stdout)\n\(result.stderr)")
            #expect(
                result.stderr.contains("partial: 4 of 5 hosts ok; h3 failed at task \"check the disk\": disk full on h3"),
                "\(result.stderr)")
            let show = try await lab.converge(["runs", "show", try #require(try await Self.runIDs(lab).first)])
            #expect(show.stdout.contains("rolled_back"), "\(show.stdout)")
            #expect(show.stdout.contains("h3: failed at \"check the disk\": disk full on h3"), "\(show.stdout)")
            // The run did not succeed, so its inputs are not recorded: the next reconcile tries again.
            let again = try await lab.reconcile(["--dry-run"])
            #expect(again.exitCode == 2, "\(again.stdout)")
        }
    }

    @Test func anUnreachableHostMakesThePlaybookPartial() async throws {
        try await AnsibleLab.with(hosts: 4) { lab in
            try lab.write([
                "inventory.yaml": lab.inventory(extraHosts: ["h9: {address: 127.0.0.1, ssh: {port: 1}}"]),
                "ansible/marker.yml": Self.markerPlaybook(),
                "runs.yaml": lab.playbook("marker", runSpec: "  extraVars: {message: hello}"),
            ])
            let result = try await lab.reconcile()
            #expect(result.exitCode == 1, "\(result.stdout)\n\(result.stderr)")
            #expect(result.stderr.contains("partial: 4 of 5 hosts ok; h9 unreachable at task \"write the marker\""), "\(result.stderr)")
            for host in ["h1", "h2", "h3", "h4"] {
                #expect(try await lab.file("/etc/converge-marker", on: host) == "hello", "the reachable hosts ran the playbook")
            }
            let show = try await lab.converge(["runs", "show", try #require(try await Self.runIDs(lab).first)])
            #expect(show.stdout.contains("h9     0       0      0    1       0"), "\(show.stdout)")
        }
    }

    @Test func checkModeChangesNothing() async throws {
        try await AnsibleLab.with(hosts: 2) { lab in
            try lab.write([
                "inventory.yaml": lab.inventory(),
                "ansible/marker.yml": Self.markerPlaybook(),
                "runs.yaml": lab.playbook("marker", runSpec: "  extraVars: {message: hello}\n  checkMode: true"),
            ])
            let result = try await lab.reconcile()
            #expect(result.exitCode == 0, "\(result.stdout)\n\(result.stderr)")
            for host in ["h1", "h2"] { #expect(try await lab.file("/etc/converge-marker", on: host) == nil) }
            let show = try await lab.converge(["runs", "show", try #require(try await Self.runIDs(lab).first)])
            #expect(show.stdout.contains("all_ok: 2 of 2 hosts ok (check mode)"), "\(show.stdout)")
            #expect(show.stdout.contains("h1     1       1      0    0       0"), "check mode reports what would change:\n\(show.stdout)")

            // On demand, on one host, in check mode, as a journaled run of its own.
            try lab.write(["runs.yaml": lab.playbook("marker", runSpec: "  extraVars: {message: hello}")])
            let onDemand = try await lab.converge([
                "playbooks", "run", "marker", "repo", "--limit", "h2", "--check", "--instance", lab.lab.instance,
            ])
            #expect(onDemand.exitCode == 0, "\(onDemand.stdout)\n\(onDemand.stderr)")
            #expect(onDemand.stdout.contains("all_ok: 1 of 1 host ok (check mode)"), "\(onDemand.stdout)")
            #expect(try await lab.file("/etc/converge-marker", on: "h2") == nil)
            // An on-demand run is not the manifest's run: the change of check mode is still pending.
            #expect(try await lab.reconcile(["--dry-run"]).exitCode == 2)
        }
    }

    @Test func vmHostsAreSnapshottedBeforeThePlaybookAndOthersGetAWarning() async throws {
        try await VCenterLab.with { vcenter in
            try await AnsibleLab.with(hosts: 2) { lab in
                // h1 reaches a container while its snapshot is taken of the simulator's VM.
                let inventory = lab.inventory(
                    hosts: ["h2"], extraHosts: ["h1: {address: \(lab.addresses["h1"] ?? ""), vm: {name: DC0_C0_RP0_VM0}}"])
                try lab.write([
                    "vcenter.yaml": vcenter.vcenterManifest(),
                    "inventory.yaml": inventory,
                    "ansible/stamp.yml": """
                    - hosts: all
                      gather_facts: false
                      tasks:
                        - shell: date +%s.%N > /tmp/ran
                    """,
                    "runs.yaml": lab.playbook("stamp"),
                ])
                let environment = [VCenterLab.passwordVariable: vcenter.password]
                let result = try await lab.reconcile(environment: environment)
                #expect(result.exitCode == 0, "\(result.stdout)\n\(result.stderr)")
                let vm = try #require(try await VSphereTests.vms(in: vcenter)["DC0_C0_RP0_VM0"])
                let snapshot = try #require(
                    vm.snapshots.first { $0.name.hasPrefix("Before executing stamp - ") }, "\(vm.snapshots.map(\.name))")
                let show = try await lab.converge(["runs", "show", try #require(try await Self.runIDs(lab).first)])
                #expect(show.stdout.contains("snapshot of DC0_C0_RP0_VM0: \(snapshot.name)"), "\(show.stdout)")
                #expect(show.stdout.contains("warning: host h2 is not a vCenter VM: it ran without a snapshot"), "\(show.stdout)")
                // Taken before the playbook ran (to the second: vcsim and the container share this clock).
                let ran = Double(try await lab.file("/tmp/ran", on: "h1")?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
                let inspector = try await vcenter.client()
                let created =
                    try await inspector.retrieve([vm.ref], properties: ["snapshot"]).first?["snapshot"]?
                    .children("rootSnapshotList").first?.child("createTime")?.text ?? ""
                await inspector.logout()
                let formatter = ISO8601DateFormatter()
                let snapshotSecond = try #require(formatter.date(from: String(created.prefix(19)) + "Z"), "createTime \(created)")
                #expect(snapshotSecond.timeIntervalSince1970 <= ran, "snapshot at \(created), playbook at \(ran)")

                // Retention covers the VM it snapshotted, which the instance does not own, and
                // leaves a manual snapshot of it alone.
                let client = try await vcenter.client()
                let manual = try #require(
                    try await client.runTask("CreateSnapshot_Task", on: vm.ref) { writer in
                        writer.leaf("name", "manual before upgrade")
                        writer.leaf("memory", false)
                        writer.leaf("quiesce", false)
                    }.result?.reference)
                await client.logout()
                try await vcenter.setCreationTime(of: snapshot.ref, to: Date().addingTimeInterval(-30 * 3600))
                try await vcenter.setCreationTime(of: manual, to: Date().addingTimeInterval(-300 * 3600))
                let collected = try await run(
                    convergeBinary, ["snapshots", "gc", "repo", "--retention", "24h", "--instance", lab.lab.instance], in: lab.directory,
                    environment: environment)
                #expect(collected.exitCode == 0, "\(collected.stdout)\n\(collected.stderr)")
                #expect(collected.stdout.contains("deleted DC0_C0_RP0_VM0: \(snapshot.name)"), "\(collected.stdout)")
                let names = try await VSphereTests.vms(in: vcenter)["DC0_C0_RP0_VM0"]?.snapshots.map(\.name)
                #expect(names == ["manual before upgrade"])
            }
        }
    }

    /// The tasks vCenter ran lately on a VM and on snapshots (`VirtualMachine.createSnapshot`,
    /// `VirtualMachineSnapshot.revert`…), from the TaskManager's recent tasks: the simulator's
    /// revert changes nothing else a test could see.
    static func recentTasks(of vm: ManagedObjectReference, in vcenter: VCenterLab) async throws -> [String] {
        let client = try await vcenter.client()
        let manager = ManagedObjectReference(type: "TaskManager", value: "TaskManager")
        let tasks =
            try await client.retrieve([manager], properties: ["recentTask"]).first?["recentTask"]?.children.compactMap(\.reference) ?? []
        let infos = tasks.isEmpty ? [] : try await client.retrieve(tasks, properties: ["info.descriptionId", "info.entity"])
        await client.logout()
        // A revert's entity is the snapshot; each test has a simulator of its own.
        return infos.filter { $0["info.entity"]?.reference == vm || $0["info.entity"]?.reference?.type == "VirtualMachineSnapshot" }
            .compactMap { $0["info.descriptionId"]?.text }
    }

    @Test(arguments: [true, false])
    func aFailedPlaybookRevertsItsVMsOnlyWithRevertOnFailure(revert: Bool) async throws {
        try await VCenterLab.with { vcenter in
            try await AnsibleLab.with(hosts: 1) { lab in
                let inventory = lab.inventory(
                    hosts: [], extraHosts: ["h1: {address: \(lab.addresses["h1"] ?? ""), vm: {name: DC0_C0_RP0_VM1}}"])
                let failing = """
                    - hosts: all
                      gather_facts: false
                      tasks:
                        - fail: {msg: "the upgrade broke the service"}
                    """
                try lab.write([
                    "vcenter.yaml": vcenter.vcenterManifest(), "inventory.yaml": inventory, "ansible/upgrade.yml": failing,
                    "runs.yaml": lab.playbook("upgrade", target: "h1", runSpec: "  revertOnFailure: \(revert)"),
                ])
                let result = try await lab.reconcile(environment: [VCenterLab.passwordVariable: vcenter.password])
                #expect(result.exitCode == 1, "\(result.stdout)\n\(result.stderr)")
                let vm = try #require(try await VSphereTests.vms(in: vcenter)["DC0_C0_RP0_VM1"])
                let guardSnapshot = try #require(vm.snapshots.first { $0.name.hasPrefix("Before executing upgrade - ") })
                #expect(vm.currentSnapshot == guardSnapshot.ref)
                let tasks = try await Self.recentTasks(of: vm.ref, in: vcenter)
                #expect(tasks.contains { $0.contains("createSnapshot") }, "\(tasks)")
                #expect(tasks.contains { $0.contains("revertToSnapshot") } == revert, "reverted only with revertOnFailure: \(tasks)")
                #expect(vm.powerState == "poweredOn", "a reverted VM runs again")
            }
        }
    }
}
