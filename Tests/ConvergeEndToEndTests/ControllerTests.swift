import ConvergeDocker
import ConvergeStore
import Foundation
import Testing

/// `converge controller` as users run it: a real Git server on loopback, the Docker engine,
/// the HTTP API and webhooks, SQLite or PostgreSQL, processes killed and signalled.
@Suite("converge controller", .serialized)
struct ControllerTests {
    private func color(_ lab: Lab) async throws -> String? {
        let env = try await lab.engine.inspectContainer("\(lab.prefix)-web").config?.env ?? []
        return env.first { $0.hasPrefix("COLOR=") }.map { String($0.dropFirst("COLOR=".count)) }
    }

    private func githubPush(_ lab: ControllerLab, ref: String = "refs/heads/main", commit: String) -> String {
        #"{"ref":"\#(ref)","after":"\#(commit)","repository":{"clone_url":"\#(lab.repositoryURL)","html_url":"http://forge.invalid/team/infra"}}"#
    }

    @Test("a signed webhook applies a pushed commit at once; bad, oversized and replayed deliveries trigger nothing")
    func webhookTriggers() async throws {
        try await ControllerLab.with { lab in
            try await lab.push(lab.webManifests(color: "blue"))
            let controller = try await lab.startController(["--interval", "10m"])
            try await eventually("the first commit is applied", timeout: .seconds(60)) { try await color(lab.lab) == "blue" }
            #expect(try await controller.get("/readyz").status == 200)

            let second = try await lab.push(lab.webManifests(color: "green"))
            let unsigned = try await controller.webhook("github", payload: githubPush(lab, commit: second), secret: "not-the-secret-0000")
            #expect(unsigned.status == 401)
            let oversized = try await controller.webhook("github", payload: String(repeating: " ", count: 6 * 1024 * 1024))
            #expect(oversized.status == 413)
            let otherRef = try await controller.webhook("github", payload: githubPush(lab, ref: "refs/heads/feature", commit: second))
            #expect(otherRef.status == 200 && otherRef.body.contains("no source watches"))
            try await Task.sleep(for: .seconds(2))
            #expect(try await color(lab.lab) == "blue", "only a valid push to the watched ref may trigger a reconcile")
            #expect(try await controller.runs(lab.lab.instance).count == 1)

            let delivery = UUID().uuidString
            let accepted = try await controller.webhook("github", payload: githubPush(lab, commit: second), delivery: delivery)
            #expect(accepted.status == 202, "\(accepted.body)")
            try await eventually("the webhook's commit is applied", timeout: .seconds(20)) { try await color(lab.lab) == "green" }
            let replay = try await controller.webhook("github", payload: githubPush(lab, commit: second), delivery: delivery)
            #expect(replay.status == 200 && replay.body.contains("already received"))
            #expect(try await controller.runs(lab.lab.instance).count == 2)

            // Gitea and GitLab sign differently; both are checked.
            #expect(
                try await controller.webhook("gitea", payload: githubPush(lab, commit: second), secret: "wrong-secret-00000").status == 401)
            #expect(
                try await controller.webhook("gitlab", payload: githubPush(lab, commit: second), secret: "wrong-secret-00000").status == 401
            )
            #expect(try await controller.webhook("gitlab", payload: githubPush(lab, commit: second)).status == 202)
        }
    }

    @Test("without webhooks, the poll finds a pushed commit within an interval")
    func pollFindsCommits() async throws {
        try await ControllerLab.with { lab in
            try await lab.push(lab.webManifests(color: "blue"))
            let controller = try await lab.startController(["--interval", "2s"])
            try await eventually("the first commit is applied", timeout: .seconds(60)) { try await color(lab.lab) == "blue" }
            let second = try await lab.push(lab.webManifests(color: "green"))
            try await eventually("the poll applies the new commit", timeout: .seconds(15)) { try await color(lab.lab) == "green" }
            try await eventually("the status names the new commit", timeout: .seconds(10)) {
                try await controller.sourceStatus(lab.lab.instance)["lastAppliedRevision"] as? String == second
            }
            let info = try await controller.get("/metrics").body
            #expect(info.contains(#"converge_source_revision_info{source="\#(lab.lab.instance)",revision="\#(second)"} 1"#))
        }
    }

    @Test("with --workers, the controller's steps run on the workers, each step naming the one that ran it")
    func controllerQueuesStepsForWorkers() async throws {
        try await ControllerLab.with { lab in
            try await WorkerLab.with(in: lab.lab) { workers in
                // A named pool: its steps go to its workers whatever the controller last heard of them.
                let worker = try await workers.startWorker("\(lab.lab.prefix)-w1", pool: "dmz", concurrency: 2)
                var files = lab.webManifests(color: "blue")
                files["host.yaml"] = files["host.yaml"]?.replacingOccurrences(
                    of: #"spec: {endpoint: "unix:///var/run/docker.sock"}"#,
                    with: #"spec: {endpoint: "unix:///var/run/docker.sock", pool: dmz}"#)
                try await lab.push(files)
                let controller = try await lab.startController(
                    ["--interval", "2s"], store: ["--store", workers.url, "--workers", "--signing-key", workers.signingKey])
                // The container shows as soon as the worker made it; the step's record is
                // complete once the controller has its outcome and the run ends.
                var run: RunRecord?
                try await eventually("the run succeeds", timeout: .seconds(60)) {
                    run = try await workers.withQueue { try await $0.runs(RunFilter(instance: lab.lab.instance)).first }
                    return run?.status == .succeeded
                }
                #expect(try await color(lab.lab) == "blue")
                let steps = try await workers.withQueue { try await $0.steps(run: try #require(run).id) }
                #expect(
                    !steps.isEmpty && steps.allSatisfy { $0.worker == "\(lab.lab.prefix)-w1" },
                    "\(steps.map(\.worker)); worker: \(worker.output); controller: \(controller.logText)")
                // Stopped while its database is still there (leaving the worker lab drops it).
                controller.kill(SIGTERM)
                #expect(try await controller.waitForExit(timeout: .seconds(30)) == 0, "\(controller.logText)")
            }
        }
    }

    @Test("drift made by hand is corrected, or only reported, as the source's policy says", arguments: ["correct", "report"])
    func drift(policy: String) async throws {
        try await ControllerLab.with { lab in
            try await lab.push(lab.webManifests(color: "blue"))
            let controller = try await lab.startController(["--interval", "2s", "--drift", policy])
            try await eventually("the commit is applied", timeout: .seconds(60)) { try await color(lab.lab) == "blue" }
            try await lab.lab.engine.removeContainer("\(lab.lab.prefix)-web", force: true)
            let series = #"converge_drift_resources{source="\#(lab.lab.instance)"}"#
            if policy == "correct" {
                try await eventually("the container is back", timeout: .seconds(20)) { try await color(lab.lab) == "blue" }
                try await eventually("no drift is left", timeout: .seconds(10)) { try await controller.metric(series) == 0 }
                // A tick that observes the container while Docker is still removing it fails
                // its run, and the next interval corrects it: at least one correction run.
                let runs = try await controller.runs(lab.lab.instance)
                #expect(runs.count >= 2 && runs.first?["status"] as? String == "succeeded", "\(runs)")
            } else {
                try await eventually("the drift is reported", timeout: .seconds(20)) { try await controller.metric(series) == 1 }
                try await Task.sleep(for: .seconds(3))
                #expect(try await lab.lab.managedContainers().isEmpty, "drift: report must change nothing")
                #expect(try await controller.runs(lab.lab.instance).count == 1)
                let status = try await controller.sourceStatus(lab.lab.instance)
                #expect(status["driftedResources"] as? Int == 1)
                let ready = (status["conditions"] as? [[String: Any]])?.first { $0["type"] as? String == "Ready" }
                #expect(ready?["status"] as? String == "False" && ready?["reason"] as? String == "DriftReported")
            }
        }
    }

    @Test("a protected change waits; only a token of a listed approver applies it")
    func approvalThroughTheAPI() async throws {
        try await ControllerLab.with { lab in
            var files = lab.webManifests(color: "blue")
            files["policy.yaml"] = """
                apiVersion: converge.dev/v1alpha1
                kind: ApprovalPolicy
                metadata: {name: protect-web}
                spec:
                  match: {kinds: [Container]}
                  actions: [create, update, delete]
                  approvers: [alice]
                """
            try await lab.push(files)
            let controller = try await lab.startController(["--interval", "10m"])
            try await eventually("a run waits for approval", timeout: .seconds(60)) {
                try await controller.runs(lab.lab.instance).first?["status"] as? String == "awaiting_approval"
            }
            let id = try #require(try await controller.runs(lab.lab.instance).first?["id"] as? Int)
            #expect(try await controller.metric("converge_pending_approvals") == 1)
            let status = try await controller.sourceStatus(lab.lab.instance)
            #expect((status["pendingApproval"] as? [String: Any])?["runID"] as? Int == id)

            #expect(try await controller.request(.POST, "/api/v1/runs/\(id)/approve").status == 401)
            #expect(try await controller.request(.POST, "/api/v1/runs/\(id)/approve", token: "not-a-token").status == 401)
            let bob = try await controller.request(.POST, "/api/v1/runs/\(id)/approve", user: "bob")
            #expect(bob.status == 403, "\(bob.body)")
            let stale = try await controller.request(
                .POST, "/api/v1/runs/\(id)/approve", user: "alice", body: Array(#"{"digest":"sha256:0000"}"#.utf8))
            #expect(stale.status == 409, "\(stale.body)")
            #expect(try await lab.lab.managedContainers().isEmpty)

            // `converge approve --server` goes through the same API, as the token's user.
            let tokenFile = lab.lab.directory.appendingPathComponent("alice.token")
            try "\(ControllerLab.tokens["alice"]!)\n".write(to: tokenFile, atomically: true, encoding: .utf8)
            let server = ["--server", "http://127.0.0.1:\(controller.port)", "--token-file", tokenFile.path]
            let approved = try await lab.lab.converge(["approve", "\(id)", "--comment", "reviewed"] + server)
            #expect(approved.exitCode == 0, "\(approved.stderr)")
            try await eventually("the approved run applied the change", timeout: .seconds(30)) { try await color(lab.lab) == "blue" }
            // The container shows before the run records its end.
            try await eventually("the approved run succeeded", timeout: .seconds(30)) {
                try await (controller.run(id)["run"] as? [String: Any])?["status"] as? String == "succeeded"
            }
            let report = try await controller.run(id)
            let approvals = report["approvals"] as? [[String: Any]] ?? []
            #expect(approvals.map { $0["approver"] as? String } == ["alice"])
            let shown = try await lab.lab.converge(["runs", "show", "\(id)"] + server)
            #expect(shown.stdout.contains("approved by alice"), "\(shown.stdout)\(shown.stderr)")
        }
    }

    @Test("two controllers on one PostgreSQL: one applies; after kill -9 the other takes over and resumes without repeating steps")
    func leaderFailover() async throws {
        try await ControllerLab.with { lab in
            let store = try StoreKind.postgres.arguments(for: lab.lab)
            try await lab.push(lab.containerManifests(count: 4))
            // The PostgreSQL database is shared with other tests: a lease and run ids of this lab's own.
            let timing = [
                "--interval", "10m", "--parallelism", "1", "--lease-duration", "6", "--renew-every", "2", "--retry-every", "1",
                "--lease-name", lab.lab.prefix,
            ]
            let slow = ["CONVERGE_FAULT": "delay-steps:1500"]
            let first = try await lab.startController(timing, store: store, environment: slow, name: "first")
            try await eventually("the first controller leads", timeout: .seconds(20)) { try await first.metric("converge_leader") == 1 }
            let second = try await lab.startController(timing, store: store, environment: slow, name: "second")
            #expect(try await second.metric("converge_leader") == 0)

            try await eventually("the run has started", timeout: .seconds(60)) { !(try await first.runs(lab.lab.instance).isEmpty) }
            let id = try #require(try await first.runs(lab.lab.instance).first?["id"] as? Int)
            try await eventually("the run has finished two steps", timeout: .seconds(60)) {
                let steps = try await first.run(id)["steps"] as? [[String: Any]] ?? []
                return steps.filter { $0["status"] as? String == "succeeded" }.count >= 2
            }
            #expect(!second.logText.contains("run \(id)"), "the follower must not drive the run")
            let before = try await second.run(id)["steps"] as? [[String: Any]] ?? []
            let doneBefore = Set(before.filter { $0["status"] as? String == "succeeded" }.compactMap { $0["index"] as? Int })
            first.kill()
            let killed = ContinuousClock.now
            try await eventually("the second controller leads", timeout: .seconds(20)) { try await second.metric("converge_leader") == 1 }
            #expect(ContinuousClock.now - killed < .seconds(8), "takeover within the lease duration (6 s) and a retry")
            try await eventually("the resumed run succeeds", timeout: .seconds(60)) {
                (try await second.run(id)["run"] as? [String: Any])?["status"] as? String == "succeeded"
            }
            let steps = try await second.run(id)["steps"] as? [[String: Any]] ?? []
            for step in steps where doneBefore.contains(step["index"] as? Int ?? -1) {
                #expect(step["attempts"] as? Int == 1, "a step finished before the kill ran again: \(step)")
            }
            #expect(try await lab.lab.managedContainers().count == 5, "one container each, no duplicates")
            #expect(try await second.runs(lab.lab.instance).count == 1)
        }
    }

    @Test("a webhook that reaches a follower is passed on to the leader, which applies the commit at once")
    func webhookToFollower() async throws {
        try await ControllerLab.with { lab in
            let store = try StoreKind.postgres.arguments(for: lab.lab)
            try await lab.push(lab.webManifests(color: "blue"))
            let arguments = ["--interval", "10m", "--lease-name", lab.lab.prefix]
            let leader = try await lab.startController(arguments, store: store, name: "leader", advertise: true)
            try await eventually("the first controller leads", timeout: .seconds(20)) { try await leader.metric("converge_leader") == 1 }
            try await eventually("the first commit is applied", timeout: .seconds(60)) { try await color(lab.lab) == "blue" }
            let follower = try await lab.startController(arguments, store: store, name: "follower", advertise: true)
            try await eventually("the follower knows the leader", timeout: .seconds(10)) { try await follower.get("/readyz").status == 200 }

            let second = try await lab.push(lab.webManifests(color: "green"))
            let answer = try await follower.webhook("github", payload: githubPush(lab, commit: second))
            #expect(answer.status == 202, "\(answer.body)")
            try await eventually("the leader applied the commit", timeout: .seconds(15)) { try await color(lab.lab) == "green" }
            #expect(follower.logText.contains("passed on to the leader"))
            #expect(leader.logText.contains("webhook github: refs/heads/main moved"))
        }
    }

    @Test("SIGTERM during a run: the step in flight finishes, the lease is released, exit 0; the next leader continues")
    func gracefulShutdown() async throws {
        try await ControllerLab.with { lab in
            try await lab.push(lab.containerManifests(count: 4))
            let arguments = ["--interval", "10m", "--parallelism", "1"]
            let first = try await lab.startController(arguments, environment: ["CONVERGE_FAULT": "delay-steps:1500"], name: "first")
            try await eventually("the run has finished a step", timeout: .seconds(60)) {
                let steps = try await first.run(1)["steps"] as? [[String: Any]] ?? []
                return steps.contains { $0["status"] as? String == "succeeded" }
            }
            first.kill(SIGTERM)
            #expect(try await first.waitForExit(timeout: .seconds(30)) == 0)
            #expect(first.logText.contains("released the leader lease"))

            let journal = try await lab.lab.converge([
                "runs", "show", "1", "--output", "json", "--state", lab.lab.directory.appendingPathComponent("state.db").path,
            ])
            let report = try JSONSerialization.jsonObject(with: Data(journal.stdout.utf8)) as? [String: Any] ?? [:]
            let steps = report["steps"] as? [[String: Any]] ?? []
            #expect(!steps.isEmpty && !steps.contains { $0["status"] as? String == "running" }, "no step was cut off: \(steps)")
            #expect((report["run"] as? [String: Any])?["status"] as? String == "running", "left resumable")

            let second = try await lab.startController(arguments, name: "second")
            // Released, not expired: the second controller leads at once, not after 15 s.
            try await eventually("the second controller leads", timeout: .seconds(5)) { try await second.metric("converge_leader") == 1 }
            try await eventually("the run is finished", timeout: .seconds(60)) {
                (try await second.run(1)["run"] as? [String: Any])?["status"] as? String == "succeeded"
            }
            #expect(try await lab.lab.managedContainers().count == 5)
        }
    }
}

/// Leader election through a `coordination.k8s.io/v1` Lease on the test kube-apiserver.
@Suite("converge controller on a Kubernetes Lease", .serialized)
struct ControllerLeaseTests {
    @Test("replicas elect through a Lease: one holds it; a SIGTERM releases it and the other takes it at once")
    func kubernetesLease() async throws {
        let kubeconfig = try testKubeconfig()
        try await ControllerLab.with { lab in
            try await lab.push(lab.webManifests(color: "blue"))
            let lease = "\(lab.lab.prefix)-leader"
            let arguments = [
                "--interval", "10m", "--leader-election", "kubernetes", "--kubeconfig", kubeconfig, "--lease-name", lease,
                "--lease-duration", "6", "--renew-every", "2", "--retry-every", "1",
            ]
            let first = try await lab.startController(arguments, name: "first")
            try await eventually("the first controller leads", timeout: .seconds(20)) { try await first.metric("converge_leader") == 1 }
            let second = try await lab.startController(arguments, name: "second")
            try await Task.sleep(for: .seconds(3))
            #expect(try await second.metric("converge_leader") == 0)
            let holder = try await run(
                "/usr/bin/kubectl",
                ["--kubeconfig", kubeconfig, "-n", "default", "get", "lease", lease, "-o", "jsonpath={.spec.holderIdentity}"])
            #expect(first.logText.contains("identity=\(holder.stdout)"), "the Lease names the first controller: \(holder.stdout)")

            first.kill(SIGTERM)
            #expect(try await first.waitForExit(timeout: .seconds(30)) == 0)
            try await eventually("the second controller leads", timeout: .seconds(4)) { try await second.metric("converge_leader") == 1 }
            let transitions = try await run(
                "/usr/bin/kubectl",
                ["--kubeconfig", kubeconfig, "-n", "default", "get", "lease", lease, "-o", "jsonpath={.spec.leaseTransitions}"])
            #expect(transitions.stdout == "1")
            _ = try await run("/usr/bin/kubectl", ["--kubeconfig", kubeconfig, "-n", "default", "delete", "lease", lease])
        }
    }
}

/// `converge controller` without `--repo`: the ConvergeSource objects of a namespace.
@Suite("converge controller on ConvergeSource objects", .serialized)
struct ConvergeSourceTests {
    @Test("a ConvergeSource is reconciled and its status follows kstatus; an invalid one is Stalled")
    func convergeSource() async throws {
        let kubeconfig = try testKubeconfig()
        let kubectl = { (arguments: [String]) in try await run("/usr/bin/kubectl", ["--kubeconfig", kubeconfig] + arguments) }
        let crd = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("crds/convergesources.converge.dev.yaml").path
        #expect(try await kubectl(["apply", "-f", crd]).exitCode == 0)
        _ = try await kubectl(["wait", "--for=condition=Established", "crd/convergesources.converge.dev", "--timeout=30s"])
        try await ControllerLab.with { lab in
            let commit = try await lab.push(lab.webManifests(color: "blue"))
            let namespace = lab.lab.prefix
            _ = try await kubectl(["create", "namespace", namespace])
            let objects = lab.lab.directory.appendingPathComponent("sources.yaml")
            try """
            apiVersion: converge.dev/v1alpha1
            kind: ConvergeSource
            metadata: {name: \(lab.lab.instance), namespace: \(namespace)}
            spec: {repo: "\(lab.repositoryURL)", ref: main, interval: 10m}
            ---
            apiVersion: converge.dev/v1alpha1
            kind: ConvergeSource
            metadata: {name: \(lab.lab.prefix)-broken, namespace: \(namespace)}
            spec: {repo: "\(lab.repositoryURL)", credentials: {secretRef: {name: missing}}}
            """.write(to: objects, atomically: true, encoding: .utf8)
            #expect(try await kubectl(["apply", "-f", objects.path]).exitCode == 0)

            let controller = try await lab.startController(
                ["--kubeconfig", kubeconfig, "--namespace", namespace, "--lease-name", "\(namespace)-leader"], name: "cluster",
                withoutRepository: true)
            try await eventually("the ConvergeSource's commit is applied", timeout: .seconds(60)) {
                !(try await lab.lab.managedContainers().isEmpty)
            }
            let get = { (name: String, path: String) in
                try await kubectl(["-n", namespace, "get", "convergesource", name, "-o", "jsonpath=\(path)"]).stdout
            }
            try await eventually("the status says Ready", timeout: .seconds(30)) {
                try await get(lab.lab.instance, #"{.status.conditions[?(@.type=="Ready")].status}"#) == "True"
            }
            #expect(try await get(lab.lab.instance, "{.status.lastAppliedRevision}") == commit)
            #expect(try await get(lab.lab.instance, "{.status.observedGeneration}") == "1")
            #expect(try await get(lab.lab.instance, #"{.status.conditions[?(@.type=="Stalled")].status}"#) == "False")
            try await eventually("the broken source is Stalled", timeout: .seconds(30)) {
                try await get("\(lab.lab.prefix)-broken", #"{.status.conditions[?(@.type=="Stalled")].reason}"#) == "InvalidSpec"
            }
            #expect(try await controller.get("/readyz").status == 200)
            _ = try await kubectl(["delete", "namespace", namespace, "--wait=false"])
        }
    }
}
