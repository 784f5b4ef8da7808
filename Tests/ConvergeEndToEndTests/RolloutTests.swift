import ConvergeDocker
import ConvergeStore
import Foundation
import Testing

/// Blue-green rollouts on the real Docker engine, through their HAProxy entry points, with a
/// client sending requests all along.
@Suite(.serialized) struct RolloutTests {
    static let fractional = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    /// The `at …` times of the lines of `text` that contain `marker`.
    static func times(after marker: String, in text: String) -> [Date] {
        text.split(separator: "\n").filter { $0.contains(marker) }.compactMap { line in
            guard let range = line.range(of: " at ") else { return nil }
            return try? fractional.parse(String(line[range.upperBound...].prefix { $0 != " " }))
        }
    }

    @Test func aHealthyVersionReplacesTheOldOneWithoutAFailedRequest() async throws {
        try await RolloutLab.with { lab in
            try lab.write([lab.rollout("web", version: "v1")])
            let first = try await lab.lab.reconcile("repo")
            #expect(first.exitCode == 0, "\(first.stdout)\n\(first.stderr)")
            let v1Replicas = try await lab.replicas("web")
            #expect(v1Replicas.count == 2, "\(v1Replicas)")

            let client = TrafficClient(address: try await lab.entryAddress("web"))
            client.start()
            try await Task.sleep(for: .milliseconds(500))
            try lab.write([lab.rollout("web", version: "v2")])
            let preview = try await lab.lab.reconcile("repo", "--dry-run")
            #expect(preview.stdout.contains("env.VERSION"), "\(preview.stdout)")
            #expect(preview.stdout.contains("runs as deploy → ready → switch → postPromotion → finalize"), "\(preview.stdout)")
            let second = try await lab.lab.reconcile("repo")
            try await Task.sleep(for: .milliseconds(500))
            let answers = await client.stop()
            #expect(second.exitCode == 0, "\(second.stdout)\n\(second.stderr)")

            let failed = answers.filter { $0.body == nil }
            #expect(failed.isEmpty, "\(failed.count) of \(answers.count) requests failed: \(failed.prefix(3).map { $0.error ?? "" })")
            #expect(answers.count > 200, "the client sent \(answers.count) requests")
            #expect(answers.first?.body == "v1")
            #expect(answers.last?.body == "v2")
            // Once v2 answered, v1 never did again.
            let firstV2 = try #require(answers.firstIndex { $0.body == "v2" })
            #expect(answers[firstV2...].allSatisfy { $0.body == "v2" })

            let replicas = try await lab.replicas("web")
            #expect(replicas.count == 2 && Set(replicas).isDisjoint(with: v1Replicas), "v1 was removed after the drain: \(replicas)")
            let show = try await lab.lab.converge(["runs", "show", "2"])
            for phase in ["(deploy)", "(ready)", "(switch)", "(postPromotion)", "(finalize)"] {
                #expect(show.stdout.contains(phase), "\(show.stdout)")
            }
            #expect(show.stdout.contains("traffic: version"), "\(show.stdout)")
            #expect(show.stdout.contains("removed after a drain of 1s"), "\(show.stdout)")
            let again = try await lab.lab.reconcile("repo", "--dry-run")
            #expect(again.stdout.contains("No changes."), "\(again.stdout)")

            // A restarted entry point comes back serving the version it served.
            try await lab.lab.engine.restartContainer("\(lab.name("web"))-entry")
            let afterRestart = TrafficClient(address: try await lab.entryAddress("web"))
            try await Task.sleep(for: .milliseconds(500))
            afterRestart.start()
            try await Task.sleep(for: .milliseconds(200))
            let restarted = await afterRestart.stop()
            #expect(!restarted.isEmpty && restarted.allSatisfy { $0.body == "v2" }, "\(restarted.prefix(3))")

            // A deleted Rollout manifest takes its replicas and entry point with it.
            try lab.write([])
            let pruned = try await lab.lab.reconcile("repo")
            #expect(pruned.exitCode == 0, "\(pruned.stdout)\n\(pruned.stderr)")
            #expect(try await lab.lab.managedContainers().isEmpty)
        }
    }

    @Test func aVersionOnAnotherNetworkIsReachedWithoutAFailedRequestAndTheEntryPointFollowsInOneRun() async throws {
        try await RolloutLab.with { lab in
            try lab.write([lab.rollout("web", version: "v1")])
            #expect(try await lab.lab.reconcile("repo").exitCode == 0)
            let client = TrafficClient(address: try await lab.entryAddress("web"))
            client.start()
            try lab.write([
                lab.rollout("web", version: "v2").replacingOccurrences(
                    of: "networks: [\(lab.network)]", with: "networks: [\(lab.otherNetwork)]")
            ])
            let moved = try await lab.lab.reconcile("repo")
            try await Task.sleep(for: .milliseconds(300))
            let answers = await client.stop()
            #expect(moved.exitCode == 0, "\(moved.stdout)\n\(moved.stderr)")
            #expect(answers.allSatisfy { $0.body != nil }, "\(answers.filter { $0.body == nil }.prefix(2))")
            #expect(answers.last?.body == "v2")
            let after = try await lab.lab.reconcile("repo", "--dry-run")
            #expect(after.stdout.contains("No changes."), "the entry point moved to the new network in the same run: \(after.stdout)")
            let entry = try await lab.lab.engine.inspectContainer("\(lab.name("web"))-entry")
            #expect(entry.networkSettings?.networks?.keys.sorted() == [lab.otherNetwork])
        }
    }

    @Test func aContainerHoldingTheEntryPointsNameStopsThePlan() async throws {
        try await RolloutLab.with { lab in
            let squatter = try await lab.lab.engine.createContainer(
                name: "\(lab.name("web"))-entry", ContainerCreate(image: "converge-lab/busybox:1", cmd: ["sleep", "60"]))
            try lab.write([lab.rollout("web", version: "v1")])
            let result = try await lab.lab.reconcile("repo")
            #expect(result.exitCode == 1, "\(result.stdout)\n\(result.stderr)")
            #expect(
                result.stderr.contains("Rollout/\(lab.name("web")): a live object with this name has no converge.dev/managed-by label"),
                "\(result.stderr)")
            #expect(try await lab.replicas("web").isEmpty, "nothing was made")
            try await lab.lab.engine.removeContainer(squatter, force: true)
        }
    }

    @Test func aProbeInTheAnalysisRunsAndAFirstVersionThatFailsLeavesNothing() async throws {
        try await RolloutLab.with { lab in
            let client = """
                apiVersion: converge.dev/v1alpha1
                kind: Container
                metadata: {name: \(lab.name("client"))}
                spec:
                  image: converge-lab/busybox:1
                  command: [sleep, "2147483647"]
                  networks: [{name: \(lab.network)}]
                ---
                apiVersion: converge.dev/v1alpha1
                kind: Probe
                metadata: {name: \(lab.name("nothing-there"))}
                spec: {from: \(lab.name("client")), to: \(lab.lab.subnetA)250, type: tcp, port: 80, expect: reachable, timeout: 1s}
                """
            let rollout = lab.rollout("web", version: "v1").replacingOccurrences(
                of: "- http: {path: /status.json, status: 200, field: healthy, equals: true}",
                with: "- probe: \(lab.name("nothing-there"))")
            try lab.write([client, rollout])
            let result = try await lab.lab.reconcile("repo")
            #expect(result.exitCode == 1, "\(result.stdout)\n\(result.stderr)")
            #expect(result.stderr.contains("probe \(lab.name("nothing-there"))"), "\(result.stderr)")
            #expect(result.stderr.contains("rolled back"), "\(result.stderr)")
            let left = try await lab.lab.managedContainers().compactMap(\.name)
            #expect(!left.contains { $0.hasPrefix(lab.name("web")) }, "the entry point and the replicas were removed: \(left)")
        }
    }

    @Test func anEntryPointSettingChangeRecreatesItServingTheSameVersion() async throws {
        try await RolloutLab.with { lab in
            try lab.write([lab.rollout("web", version: "v1")])
            #expect(try await lab.lab.reconcile("repo").exitCode == 0)
            let port = Int.random(in: 20000..<40000)
            try lab.write([
                lab.rollout("web", version: "v1").replacingOccurrences(
                    of: "entryPoint: {port: 80}", with: "entryPoint: {port: 80, publish: \"127.0.0.1:\(port)\"}")
            ])
            let plan = try await lab.lab.reconcile("repo", "--dry-run")
            #expect(plan.stdout.contains("entryPoint.publish"), "\(plan.stdout)")
            #expect(!plan.stdout.contains("runs as"), "no new version: one step")
            #expect(try await lab.lab.reconcile("repo").exitCode == 0)
            let client = TrafficClient(address: "127.0.0.1", port: port)
            client.start()
            try await Task.sleep(for: .milliseconds(300))
            let answers = await client.stop()
            #expect(!answers.isEmpty && answers.allSatisfy { $0.body == "v1" }, "\(answers.prefix(2))")
            #expect(try await lab.replicas("web").count == 2, "the replicas were kept")
        }
    }

    @Test func aVersionWhoseAnalysisFailsIsRolledBackAndServedOnlyDuringTheAnalysis() async throws {
        try await RolloutLab.with { lab in
            try lab.write([lab.rollout("web", version: "v2")])
            #expect(try await lab.lab.reconcile("repo").exitCode == 0)
            let v2Replicas = try await lab.replicas("web")

            let client = TrafficClient(address: try await lab.entryAddress("web"))
            client.start()
            try lab.write([lab.rollout("web", version: "v3", healthy: false)])
            let result = try await lab.lab.reconcile("repo")
            try await Task.sleep(for: .milliseconds(300))
            let answers = await client.stop()
            #expect(result.exitCode == 1, "\(result.stdout)\n\(result.stderr)")
            #expect(result.stderr.contains("rolled back"), "\(result.stderr)")
            #expect(result.stderr.contains("post-promotion analysis"), "\(result.stderr)")

            let show = try await lab.lab.converge(["runs", "show", "2"])
            #expect(show.stdout.contains("rolled_back"), "\(show.stdout)")
            let switched = try #require(Self.times(after: "traffic: version", in: show.stdout).first, "\(show.stdout)")
            let returned = try #require(Self.times(after: "traffic: back to", in: show.stdout).first, "\(show.stdout)")
            // v3 answered only between the switch and the switch back.
            let v3 = answers.filter { $0.body == "v3" }
            #expect(!v3.isEmpty, "the client should have seen v3 during its analysis")
            #expect(
                v3.allSatisfy { $0.at >= switched.addingTimeInterval(-0.05) && $0.at <= returned }, "v3 outside \(switched)…\(returned)")
            #expect(answers.filter { $0.body == nil }.isEmpty, "no request failed")
            #expect(answers.last?.body == "v2")
            #expect(try await lab.replicas("web") == v2Replicas, "v3 was removed, v2 kept")
        }
    }

    @Test(arguments: ["switch", "postPromotion"])
    func aProcessKilledDuringAPhaseResumesToOneServingVersion(phase: String) async throws {
        try await RolloutLab.with { lab in
            try lab.write([lab.rollout("web", version: "v1")])
            #expect(try await lab.lab.reconcile("repo").exitCode == 0)
            try lab.write([lab.rollout("web", version: "v2")])
            let plan = try await lab.lab.reconcile("repo", "--dry-run", "--output", "json")
            let steps =
                try #require(try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])["steps"] as? [[String: Any]]
            let index = try #require(steps?.firstIndex { $0["phase"] as? String == phase })
            let killed = try await lab.lab.reconcile(["repo"], environment: ["CONVERGE_FAULT": "kill-before-journal:\(index)"])
            #expect(killed.exitCode == 9, "\(killed.stderr)")

            let resumed = try await lab.lab.reconcile("repo")
            #expect(resumed.exitCode == 0, "\(resumed.stdout)\n\(resumed.stderr)")
            let show = try await lab.lab.converge(["runs", "show", "2"])
            #expect(show.stdout.contains("succeeded"), "\(show.stdout)")
            #expect(show.stdout.contains("(\(phase)) (2 attempts)"), "the \(phase) phase ran again: \(show.stdout)")
            let client = TrafficClient(address: try await lab.entryAddress("web"))
            client.start()
            try await Task.sleep(for: .milliseconds(300))
            let answers = await client.stop()
            #expect(!answers.isEmpty && answers.allSatisfy { $0.body == "v2" })
            #expect(try await lab.replicas("web").count == 2, "no orphan replicas")
        }
    }

    @Test func theSwitchWaitsForAnApprovalWhenAutoPromoteIsOff() async throws {
        try await RolloutLab.with { lab in
            try lab.write([lab.rollout("web", version: "v1", autoPromote: false)])
            #expect(try await lab.lab.reconcile("repo").exitCode == 0, "a first version is promoted at once")
            try lab.write([lab.rollout("web", version: "v2", autoPromote: false)])
            let waiting = try await lab.lab.reconcile("repo")
            #expect(waiting.exitCode == 3, "\(waiting.stdout)\n\(waiting.stderr)")
            #expect(waiting.stderr.contains("waits before step"), "\(waiting.stderr)")
            #expect(try await lab.replicas("web").count == 4, "the preview is up beside v1")
            let client = TrafficClient(address: try await lab.entryAddress("web"))
            client.start()
            try await Task.sleep(for: .milliseconds(300))
            let approved = try await lab.lab.converge(["approve", "2", "--approver", "alice"])
            #expect(approved.exitCode == 0, "\(approved.stdout)\n\(approved.stderr)")
            let answers = await client.stop()
            #expect(answers.first?.body == "v1")
            #expect(answers.last?.body == "v2")
            #expect(answers.allSatisfy { $0.body != nil })
            #expect(try await lab.replicas("web").count == 2)
        }
    }

    @Test func aPipelineRunsItsWavesInOrderAndStopsAtAFailure() async throws {
        try await RolloutLab.with { lab in
            let pipeline = """
                apiVersion: converge.dev/v1alpha1
                kind: Pipeline
                metadata: {name: release}
                spec:
                  waves:
                    - [\(lab.name("api")), \(lab.name("worker"))]
                    - [\(lab.name("web"))]
                """
            try lab.write([pipeline] + ["api", "worker", "web"].map { lab.rollout($0, version: "v1", drainDelay: "0s", analysisCount: 1) })
            #expect(try await lab.lab.reconcile("repo").exitCode == 0)
            try lab.write([pipeline] + ["api", "worker", "web"].map { lab.rollout($0, version: "v2", drainDelay: "0s", analysisCount: 1) })
            let second = try await lab.lab.reconcile("repo")
            #expect(second.exitCode == 0, "\(second.stdout)\n\(second.stderr)")
            let store = try SQLiteWorkflowStore(path: lab.lab.directory.appendingPathComponent(".converge/state.db").path)
            let steps = try await store.steps(run: 2)
            func span(_ service: String) -> (start: Date, end: Date) {
                let own = steps.filter { $0.resource == "Rollout/\(lab.name(service))" }
                return (own.compactMap(\.startedAt).min() ?? .distantPast, own.compactMap(\.finishedAt).max() ?? .distantFuture)
            }
            let api = span("api"), worker = span("worker"), web = span("web")
            #expect(api.start < worker.end && worker.start < api.end, "wave 1's rollouts overlap: \(api) \(worker)")
            #expect(web.start >= max(api.end, worker.end), "wave 2 starts after wave 1: \(web)")

            // A failure in wave 1 stops wave 2 and rolls back only the failed rollout.
            try lab.write(
                [
                    pipeline, lab.rollout("api", version: "v3", drainDelay: "0s", analysisCount: 1),
                    lab.rollout("worker", version: "v3", healthy: false, drainDelay: "0s", analysisCount: 1),
                    lab.rollout("web", version: "v3", drainDelay: "0s", analysisCount: 1),
                ])
            let third = try await lab.lab.reconcile("repo")
            #expect(third.exitCode == 1, "\(third.stdout)\n\(third.stderr)")
            #expect(third.stderr.contains("rolled back: Rollout/\(lab.name("worker"))"), "\(third.stderr)")
            let failedSteps = try await store.steps(run: 3)
            #expect(!failedSteps.contains { $0.resource == "Rollout/\(lab.name("web"))" }, "wave 2 never started")
            for (service, expected) in [("api", "v3"), ("worker", "v2"), ("web", "v2")] {
                let client = TrafficClient(address: try await lab.entryAddress(service))
                client.start()
                try await Task.sleep(for: .milliseconds(100))
                let answers = await client.stop()
                #expect(answers.last?.body == expected, "\(service) serves \(answers.last?.body ?? "nothing")")
            }
        }
    }
}
