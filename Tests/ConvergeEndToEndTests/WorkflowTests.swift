import ConvergeDocker
import Foundation
import Testing

/// Durable runs end to end: the real engine, the `converge` binary killed with SIGKILL,
/// failures that roll back, two processes at once, approvals; against SQLite and PostgreSQL.
@Suite struct WorkflowTests {
    /// A run's report as `converge runs show ID --output json` prints it.
    struct Report: Decodable {
        struct Run: Decodable {
            var id: Int64
            var status: String
            var planDigest: String
            var error: String?
        }
        struct Step: Decodable {
            var index: Int
            var resource: String
            var action: String
            var status: String
            var attempts: Int
            var error: String?
        }
        struct Approval: Decodable {
            var decision: String
            var approver: String
            var comment: String
        }
        var run: Run
        var steps: [Step]
        var approvals: [Approval]
    }

    func report(_ lab: Lab, _ store: [String], run id: Int64) async throws -> Report {
        let result = try await lab.converge(["runs", "show", String(id), "--output", "json"] + store)
        #expect(result.exitCode == 0, "\(result.stderr)")
        let decoder = JSONDecoder()
        return try decoder.decode(Report.self, from: Data(result.stdout.utf8))
    }

    func runs(_ lab: Lab, _ store: [String], failed: Bool = false) async throws -> [Report] {
        let result = try await lab.converge(
            ["runs", "--output", "json", "--instance", lab.instance] + (failed ? ["--failed"] : []) + store)
        #expect(result.exitCode == 0, "\(result.stderr)")
        return try JSONDecoder().decode([Report].self, from: Data(result.stdout.utf8))
    }

    /// The id in "Run 12 …" of a command's last line.
    func runID(_ result: CommandResult) -> Int64? {
        guard let range = result.stderr.range(of: #"Run (\d+)"#, options: .regularExpression) else { return nil }
        return Int64(result.stderr[range].dropFirst(4))
    }

    // MARK: Crash and resume

    @Test(arguments: StoreKind.allCases, ["kill-after-step", "kill-before-journal"])
    func killedAtEveryStepBoundaryResumesToTheSameEndState(store kind: StoreKind, fault: String) async throws {
        try await Lab.with { lab in
            let store = try kind.arguments(for: lab)
            try lab.write(lab.labManifests(), into: "set")
            for boundary in 0..<4 {
                let killed = try await lab.reconcile(["set"] + store, environment: ["CONVERGE_FAULT": "\(fault):\(boundary)"])
                #expect(killed.exitCode == 9, "step \(boundary): the process should die by SIGKILL; \(killed.stderr)")
                let interrupted = try #require(try await runs(lab, store).first)
                #expect(interrupted.run.status == "running")
                let finished = Dictionary(
                    uniqueKeysWithValues: interrupted.steps.filter { $0.status == "succeeded" }.map { ($0.index, $0.attempts) })
                let cutOff = Dictionary(
                    uniqueKeysWithValues: interrupted.steps.filter { $0.status == "running" }.map { ($0.index, $0.attempts) })
                if fault == "kill-after-step" {
                    #expect(finished[boundary] != nil, "step \(boundary) was journaled as finished before the kill")
                } else {
                    #expect(cutOff[boundary] != nil, "step \(boundary) ran but was not journaled as finished")
                }
                let before = try await lab.managedContainers().map(\.id)

                let resumed = try await lab.reconcile(["set"] + store)
                #expect(resumed.exitCode == 0, "\(resumed.stderr)")
                #expect(resumed.stderr.contains("resuming run \(interrupted.run.id)"))
                #expect(resumed.stdout.contains("No changes."), "after resuming, nothing is left to do")

                let containers = try await lab.managedContainers()
                #expect(containers.count == 2, "no duplicates")
                #expect(containers.allSatisfy { $0.state == "running" })
                #expect(Set(before).isSubset(of: Set(containers.map(\.id))), "objects made before the crash are kept, not made again")
                #expect(try await lab.managedNetworks().count == 2)

                let done = try await report(lab, store, run: interrupted.run.id)
                #expect(done.run.status == "succeeded", "\(done.run.error ?? "")")
                #expect(done.steps.count == 4 && done.steps.allSatisfy { $0.status == "succeeded" })
                for step in done.steps {
                    if let attempts = finished[step.index] {
                        #expect(step.attempts == attempts, "finished step \(step.index) must not run again")
                    } else if let attempts = cutOff[step.index] {
                        #expect(step.attempts == attempts + 1, "step \(step.index), cut off mid-flight, runs again")
                    } else {
                        #expect(step.attempts == 1, "step \(step.index) never started before the kill")
                    }
                }
                try await lab.cleanUp()
                try FileManager.default.createDirectory(at: lab.directory, withIntermediateDirectories: true)
                try lab.write(lab.labManifests(), into: "set")
            }
        }
    }

    // MARK: Rollback

    @Test(arguments: StoreKind.allCases)
    func aFailingStepRollsBackEverythingTheRunDid(store kind: StoreKind) async throws {
        try await Lab.with { lab in
            let store = try kind.arguments(for: lab)
            try lab.write(lab.labManifests(), into: "base")
            #expect(try await lab.reconcile(["base"] + store).exitCode == 0)
            let serverBefore = try await lab.engine.inspectContainer("\(lab.prefix)-server")

            // An update in place, a replacement, a new network, and a container that cannot start.
            var broken = lab.labManifests(
                serverRestart: "always",
                extra: """
                    ---
                    apiVersion: converge.dev/v1alpha1
                    kind: Network
                    metadata: {name: \(lab.prefix)-extra-net}
                    spec: {internal: true}
                    ---
                    apiVersion: converge.dev/v1alpha1
                    kind: Container
                    metadata: {name: \(lab.prefix)-broken}
                    spec:
                      image: converge-lab/busybox:1
                      command: [/no/such/program]
                      networks: [{name: \(lab.prefix)-extra-net}]
                      dependsOn: [\(lab.prefix)-client]
                    """)
            broken["containers.yaml"] = broken["containers.yaml"]!.replacingOccurrences(
                of: "[sleep, \"2147483647\"]", with: "[sleep, \"999999\"]")
            try lab.write(broken, into: "broken")

            let failed = try await lab.reconcile(["broken", "--retry-attempts", "2", "--retry-delay", "0.1"] + store)
            #expect(failed.exitCode == 1)
            #expect(failed.stderr.contains("rolled back"), "\(failed.stderr)")
            let id = try #require(runID(failed))
            let run = try await report(lab, store, run: id)
            #expect(run.run.status == "rolled_back")
            #expect(run.steps.contains { $0.status == "compensated" && $0.resource.hasSuffix("-broken") })
            #expect(run.run.error?.contains("no/such/program") == true, "the report names the cause")

            // Back exactly where it was: the base manifests are in sync, nothing new is left.
            let check = try await lab.reconcile(["--dry-run", "base"])
            #expect(check.exitCode == 0, "\(check.stdout)")
            let names = Set(try await lab.managedContainers().compactMap(\.name))
            #expect(names == ["\(lab.prefix)-client", "\(lab.prefix)-server"])
            #expect(try await lab.managedNetworks().count == 2)
            let serverAfter = try await lab.engine.inspectContainer("\(lab.prefix)-server")
            #expect(serverAfter.hostConfig?.restartPolicy?.name == serverBefore.hostConfig?.restartPolicy?.name)
            let client = try await lab.engine.inspectContainer("\(lab.prefix)-client")
            #expect(client.config?.cmd == ["sleep", "2147483647"], "the replaced client is back with its old spec")
            #expect(client.networkSettings?.networks?["\(lab.prefix)-client-net"]?.ipAddress == "\(lab.subnetA)10")

            let failures = try await runs(lab, store, failed: true)
            #expect(failures.map(\.run.id) == [id])
        }
    }

    @Test func noRollbackKeepsWhatWasDone() async throws {
        try await Lab.with { lab in
            let store = try StoreKind.sqlite.arguments(for: lab)
            let manifests = lab.labManifests(
                extra: """
                    ---
                    apiVersion: converge.dev/v1alpha1
                    kind: Container
                    metadata: {name: \(lab.prefix)-broken}
                    spec:
                      image: converge-lab/busybox:1
                      command: [/no/such/program]
                      dependsOn: [\(lab.prefix)-server]
                    """)
            try lab.write(manifests, into: "set")
            let result = try await lab.reconcile(["set", "--no-rollback"] + store)
            #expect(result.exitCode == 1)
            let id = try #require(runID(result))
            #expect(try await report(lab, store, run: id).run.status == "failed")
            #expect(try await lab.managedNetworks().count == 2, "what finished stays")
        }
    }

    // MARK: Concurrency

    /// Starts `converge reconcile` in the background and returns once its run is recorded.
    func startSlowRun(_ lab: Lab, _ store: [String]) async throws -> Task<CommandResult, any Error> {
        let first = Task {
            try await lab.reconcile(["set", "--parallelism", "1"] + store, environment: ["CONVERGE_FAULT": "delay-steps:1000"])
        }
        var polls = 0
        while try await runs(lab, store).isEmpty, polls < 200 {
            polls += 1
            try await Task.sleep(for: .milliseconds(25))
        }
        return first
    }

    @Test(arguments: StoreKind.allCases)
    func twoProcessesOnTheSameResourcesNeverRunAtOnce(store kind: StoreKind) async throws {
        try await Lab.with { lab in
            let store = try kind.arguments(for: lab)
            try lab.write(lab.labManifests(), into: "set")
            let first = try await startSlowRun(lab, store)
            let second = try await lab.reconcile(["set", "--lock-timeout", "0"] + store)
            let firstResult = try await first.value
            #expect(firstResult.exitCode == 0, "\(firstResult.stderr)")
            #expect(second.exitCode == 1)
            #expect(second.stderr.contains("resources are held by run"), "the second names the holder: \(second.stderr)")
            #expect(try await lab.managedContainers().count == 2)
            let all = try await runs(lab, store)
            #expect(all.filter { $0.run.status == "succeeded" }.count == 1)
            #expect(all.filter { $0.run.status == "failed" }.first?.steps.isEmpty == true, "the refused run changed nothing")
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aSecondProcessWaitsForTheFirstThenFindsNothingToRedo(store kind: StoreKind) async throws {
        try await Lab.with { lab in
            let store = try kind.arguments(for: lab)
            try lab.write(lab.labManifests(), into: "set")
            let first = try await startSlowRun(lab, store)
            let second = try await lab.reconcile(["set", "--lock-timeout", "60"] + store)
            #expect(try await first.value.exitCode == 0)
            #expect(second.exitCode == 0, "\(second.stderr)")
            #expect(second.stderr.contains("waiting for run"))
            #expect(try await lab.managedContainers().count == 2, "the waiting run's creates found the objects")
        }
    }

    // MARK: Approvals

    func protectedManifests(_ lab: Lab, serverRestart: String, approvers: String = "") -> [String: String] {
        var manifests = lab.labManifests(serverRestart: serverRestart)
        manifests["policy.yaml"] = """
            apiVersion: converge.dev/v1alpha1
            kind: ApprovalPolicy
            metadata: {name: protect-server}
            spec:
              match: {kinds: [Container], names: [\(lab.prefix)-server]}
              actions: [update, delete]
            \(approvers)
            """
        return manifests
    }

    @Test(arguments: StoreKind.allCases)
    func aProtectedChangeWaitsForApprovalBoundToItsPlan(store kind: StoreKind) async throws {
        try await Lab.with { lab in
            let store = try kind.arguments(for: lab)
            try lab.write(protectedManifests(lab, serverRestart: "no"), into: "set")
            #expect(try await lab.reconcile(["set"] + store).exitCode == 0, "creating is not protected")

            try lab.write(protectedManifests(lab, serverRestart: "always"), into: "set")
            let waiting = try await lab.reconcile(["set"] + store)
            #expect(waiting.exitCode == 3, "\(waiting.stderr)")
            #expect(waiting.stdout.contains("Approval required by ApprovalPolicy/protect-server"))
            let id = try #require(runID(waiting))
            #expect(try await report(lab, store, run: id).run.status == "awaiting_approval")
            #expect(try await lab.engine.inspectContainer("\(lab.prefix)-server").hostConfig?.restartPolicy?.name == "no")

            let again = try await lab.reconcile(["set"] + store)
            #expect(again.exitCode == 3)
            #expect(runID(again) == id, "the same plan reuses the waiting run")

            let wrong = try await lab.converge(["approve", String(id), "--approver", "alice", "--digest", "sha256:0000"] + store)
            #expect(wrong.exitCode == 1)
            #expect(wrong.stderr.contains("refused: the approval is for plan sha256:0000"))

            let approved = try await lab.converge(["approve", String(id), "--approver", "alice", "--comment", "reviewed in PR 7"] + store)
            #expect(approved.exitCode == 0, "\(approved.stderr)")
            #expect(try await lab.engine.inspectContainer("\(lab.prefix)-server").hostConfig?.restartPolicy?.name == "always")
            let done = try await report(lab, store, run: id)
            #expect(done.run.status == "succeeded")
            #expect(done.approvals.map(\.approver) == ["alice"])
            #expect(done.approvals.first?.comment == "reviewed in PR 7")
        }
    }

    @Test(arguments: StoreKind.allCases)
    func rejectEndsTheRunAndANewPlanSupersedesAnOldApproval(store kind: StoreKind) async throws {
        try await Lab.with { lab in
            let store = try kind.arguments(for: lab)
            try lab.write(protectedManifests(lab, serverRestart: "no", approvers: "  approvers: [alice]"), into: "set")
            #expect(try await lab.reconcile(["set"] + store).exitCode == 0)

            try lab.write(protectedManifests(lab, serverRestart: "always", approvers: "  approvers: [alice]"), into: "set")
            let first = try #require(runID(try await lab.reconcile(["set"] + store)))
            let rejected = try await lab.converge(["reject", String(first), "--approver", "alice", "--comment", "not now"] + store)
            #expect(rejected.exitCode == 0, "\(rejected.stderr)")
            #expect(try await report(lab, store, run: first).run.status == "rejected")
            #expect(try await lab.engine.inspectContainer("\(lab.prefix)-server").hostConfig?.restartPolicy?.name == "no")

            let older = try #require(runID(try await lab.reconcile(["set"] + store)))
            try lab.write(protectedManifests(lab, serverRestart: "unless-stopped", approvers: "  approvers: [alice]"), into: "set")
            let newer = try #require(runID(try await lab.reconcile(["set"] + store)))
            #expect(newer != older)
            #expect(try await report(lab, store, run: older).run.status == "superseded")
            let stale = try await lab.converge(["approve", String(older), "--approver", "alice"] + store)
            #expect(stale.exitCode == 1)
            #expect(stale.stderr.contains("superseded"))

            let stranger = try await lab.converge(["approve", String(newer), "--approver", "mallory"] + store)
            #expect(stranger.exitCode == 1)
            #expect(stranger.stderr.contains("'mallory' may not approve"))

            // Drift after the review changes the plan: the approval does not carry over.
            try await lab.engine.stopContainer("\(lab.prefix)-client", timeoutSeconds: 0)
            let drifted = try await lab.converge(["approve", String(newer), "--approver", "alice"] + store)
            #expect(drifted.exitCode == 1)
            #expect(drifted.stderr.contains("the live state changed"))
            #expect(try await lab.engine.inspectContainer("\(lab.prefix)-server").hostConfig?.restartPolicy?.name == "no")
        }
    }
}
