import ConvergeDocker
import Foundation
import Testing

/// `converge reconcile` against the real Docker engine, manifests from a real Git repository.
@Suite(.serialized) struct ReconcileTests {
    @Test func reconcilesACommitThenIsInSyncAndAppliesTheNextCommit() async throws {
        try await Lab.with { lab in
            let repo = try await lab.gitRepository()
            try await repo.commit(lab.labManifests(), message: "lab")

            let preview = try await lab.reconcile("--dry-run", "--repo", repo.directory.path)
            #expect(preview.exitCode == 2, "\(preview.stderr)")
            #expect(preview.stdout.contains("Plan: 4 to add, 0 to change, 0 to destroy."))
            #expect(try await lab.managedContainers().isEmpty, "a dry run must change nothing")

            let apply = try await lab.reconcile("--repo", repo.directory.path)
            #expect(apply.exitCode == 0, "\(apply.stderr)")
            #expect(apply.stderr.contains("[4/4]"))
            let containers = try await lab.managedContainers()
            #expect(containers.count == 2)
            #expect(containers.allSatisfy { $0.state == "running" })
            let server = try await lab.engine.inspectContainer("\(lab.prefix)-server")
            #expect(server.networkSettings?.networks?["\(lab.prefix)-server-net"]?.ipAddress == "\(lab.subnetB)10")

            let again = try await lab.reconcile("--dry-run", "--repo", repo.directory.path)
            #expect(again.exitCode == 0, "\(again.stdout)\(again.stderr)")
            #expect(again.stdout.contains("No changes."))

            let commit = try await repo.commit(lab.labManifests(serverRestart: "always"), message: "restart always")
            let change = try await lab.reconcile("--dry-run", "--repo", repo.directory.path)
            #expect(change.exitCode == 2)
            #expect(change.stdout.contains("~ restartPolicy = \"unless-stopped\" → \"always\""))
            #expect(change.stdout.contains("Plan: 0 to add, 1 to change, 0 to destroy."))
            #expect(change.stdout.contains(String(commit.prefix(12))), "the plan names the commit it came from")

            #expect(try await lab.reconcile("--repo", repo.directory.path).exitCode == 0)
            let updated = try await lab.engine.inspectContainer("\(lab.prefix)-server")
            #expect(updated.hostConfig?.restartPolicy?.name == "always")
            #expect(updated.id == server.id, "a restart policy changes in place")
            #expect(try await lab.reconcile("--dry-run", "--repo", repo.directory.path).exitCode == 0)
        }
    }

    @Test func aChangeTheEngineCannotMakeInPlaceReplacesTheContainer() async throws {
        try await Lab.with { lab in
            try lab.write(lab.labManifests(), into: "set")
            #expect(try await lab.reconcile("set").exitCode == 0)
            let before = try await lab.engine.inspectContainer("\(lab.prefix)-client")

            var manifests = lab.labManifests()
            manifests["containers.yaml"] = manifests["containers.yaml"]!.replacingOccurrences(
                of: "[sleep, \"2147483647\"]", with: "[sleep, \"1000000\"]")
            try lab.write(manifests, into: "set")
            let plan = try await lab.reconcile("--dry-run", "set")
            #expect(plan.exitCode == 2)
            #expect(plan.stdout.contains("-/+ Container/\(lab.prefix)-client"))
            #expect(plan.stdout.contains("# forces replacement"))
            #expect(plan.stdout.contains("Plan: 1 to add, 0 to change, 1 to destroy."))

            #expect(try await lab.reconcile("set").exitCode == 0)
            let after = try await lab.engine.inspectContainer("\(lab.prefix)-client")
            #expect(after.id != before.id)
            #expect(after.config?.cmd == ["sleep", "1000000"])
            #expect(after.networkSettings?.networks?["\(lab.prefix)-client-net"]?.ipAddress == "\(lab.subnetA)10")
        }
    }

    @Test func driftMadeByHandIsShownAndRepaired() async throws {
        try await Lab.with { lab in
            try lab.write(lab.labManifests(), into: "set")
            #expect(try await lab.reconcile("set").exitCode == 0)

            try await lab.engine.stopContainer("\(lab.prefix)-server", timeoutSeconds: 0)
            try await lab.engine.updateContainer("\(lab.prefix)-server", restartPolicy: DockerRestartPolicy(name: "always"))
            try await lab.engine.disconnect(network: "\(lab.prefix)-server-net", container: "\(lab.prefix)-server", force: true)
            try await lab.engine.removeContainer("\(lab.prefix)-client", force: true)

            let plan = try await lab.reconcile("--dry-run", "set")
            #expect(plan.exitCode == 2)
            #expect(plan.stdout.contains("+   Container/\(lab.prefix)-client"))
            #expect(plan.stdout.contains("~ state") && plan.stdout.contains("\"stopped\" → \"running\""))
            #expect(plan.stdout.contains("~ restartPolicy") && plan.stdout.contains("\"always\" → \"unless-stopped\""))
            #expect(plan.stdout.contains("+ networks.\(lab.prefix)-server-net"))
            #expect(plan.stdout.contains("Plan: 1 to add, 1 to change, 0 to destroy."))

            #expect(try await lab.reconcile("set").exitCode == 0)
            let server = try await lab.engine.inspectContainer("\(lab.prefix)-server")
            #expect(server.state?.running == true)
            #expect(server.hostConfig?.restartPolicy?.name == "unless-stopped")
            #expect(server.networkSettings?.networks?["\(lab.prefix)-server-net"]?.ipAddress == "\(lab.subnetB)10")
            let client = try await lab.engine.inspectContainer("\(lab.prefix)-client")
            #expect(client.state?.running == true)
            #expect(try await lab.reconcile("--dry-run", "set").exitCode == 0)
        }
    }

    @Test func objectsWithoutTheOwnershipLabelAreNeverTouched() async throws {
        try await Lab.with { lab in
            // Someone else's container with the name a manifest wants.
            let foreignID = try await lab.engine.createContainer(
                name: "\(lab.prefix)-client",
                ContainerCreate(image: "converge-lab/busybox:1", cmd: ["sleep", "2147483647"], labels: ["owner": "someone-else"]))
            try lab.write(lab.labManifests(), into: "set")

            let plan = try await lab.reconcile("--dry-run", "set")
            #expect(plan.exitCode == 1)
            #expect(plan.stderr.contains("Container/\(lab.prefix)-client"))
            #expect(plan.stderr.contains("no converge.dev/managed-by label"))
            let apply = try await lab.reconcile("set")
            #expect(apply.exitCode == 1)
            #expect(try await lab.managedNetworks().isEmpty, "nothing is applied when any object clashes")
            #expect(try await lab.engine.inspectContainer(foreignID).config?.labels?["owner"] == "someone-else")

            // Without a clash, an unlabelled container on a managed network survives pruning.
            try await lab.engine.removeContainer(foreignID, force: true)
            #expect(try await lab.reconcile("set").exitCode == 0)
            let bystander = try await lab.engine.createContainer(
                name: "\(lab.prefix)-bystander",
                ContainerCreate(image: "converge-lab/busybox:1", cmd: ["sleep", "2147483647"]))
            var fewer = lab.labManifests()
            fewer["containers.yaml"] = nil
            try FileManager.default.removeItem(at: lab.directory.appendingPathComponent("set/containers.yaml"))
            try lab.write(fewer, into: "set")
            let prune = try await lab.reconcile("set")
            #expect(prune.exitCode == 0, "\(prune.stderr)")
            #expect(prune.stdout.contains("-   Container/\(lab.prefix)-client"))
            #expect(try await lab.managedContainers().isEmpty)
            #expect(try await lab.engine.inspectContainer(bystander).name == "/\(lab.prefix)-bystander")
        }
    }

    @Test func jsonAndMarkdownOutputs() async throws {
        try await Lab.with { lab in
            let repo = try await lab.gitRepository()
            let commit = try await repo.commit(lab.labManifests(), message: "lab")
            let json = try await lab.reconcile("--dry-run", "--repo", repo.directory.path, "--output", "json")
            #expect(json.exitCode == 2)
            let plan = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            #expect(plan?["formatVersion"] as? Int == 1)
            #expect((plan?["digest"] as? String)?.hasPrefix("sha256:") == true)
            #expect((plan?["source"] as? [String: Any])?["commit"] as? String == commit)
            #expect((plan?["summary"] as? [String: Int]) == ["add": 4, "change": 0, "destroy": 0])
            #expect((plan?["steps"] as? [Any])?.count == 4)

            let markdown = try await lab.reconcile("--dry-run", "--repo", repo.directory.path, "--output", "markdown")
            #expect(markdown.exitCode == 2)
            #expect(markdown.stdout.contains("### Converge plan"))
            #expect(markdown.stdout.contains("| `+` | `Container/\(lab.prefix)-server` | will be created |"))
        }
    }
}
