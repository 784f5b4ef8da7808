import ConvergeDocker
import ConvergeTestSupport
import Foundation
import Testing

/// Container settings people expect from docker-compose: limits, user, working directory,
/// read-only root, security options, logging, how a container stops, and start order by
/// health; on the real engine.
@Suite struct ContainerSettingsTests {
    static func container(_ lab: Lab, _ name: String, _ body: String) -> String {
        """
        apiVersion: converge.dev/v1alpha1
        kind: Container
        metadata: {name: \(lab.prefix)-\(name)}
        spec:
          image: converge-lab/busybox:1
          networks: [{name: \(lab.prefix)-net}]
        \(body)
        """
    }

    static func write(_ lab: Lab, _ documents: [String]) throws {
        let base = localDockerNetwork("\(lab.prefix)-net", subnet: "\(lab.subnetA)0/24")
        try lab.write(["set.yaml": ([base] + documents).joined(separator: "\n---\n")], into: "repo")
    }

    /// Seconds since 1970 of an engine timestamp (RFC 3339 with nanoseconds).
    static func seconds(_ text: String?) -> Double? {
        guard let text, let dot = text.firstIndex(of: ".") else { return nil }
        guard let base = try? Date.ISO8601FormatStyle().parse(String(text[..<dot]) + "Z") else { return nil }
        let fraction = text[text.index(after: dot)...].prefix { $0.isNumber }
        return base.timeIntervalSince1970 + (Double("0." + fraction) ?? 0)
    }

    @Test func limitsUserAndTheRestAreAppliedAndDriftInThemIsRepaired() async throws {
        try await Lab.with { lab in
            let settings = """
                  command: [sleep, "2147483647"]
                  resources: {memory: 64Mi, cpus: 0.5, pidsLimit: 50}
                  user: "1000:1000"
                  workingDir: /tmp
                  readOnlyRootFilesystem: true
                  securityOpt: [no-new-privileges]
                  logging: {driver: json-file, options: {max-size: 1m}}
                  stopTimeout: 3s
                """
            try Self.write(lab, [Self.container(lab, "app", settings)])
            let first = try await lab.reconcile("repo")
            #expect(first.exitCode == 0, "\(first.stdout)\n\(first.stderr)")
            let name = "\(lab.prefix)-app"
            let inspect = try await lab.engine.inspectContainer(name)
            let host = try #require(inspect.hostConfig)
            #expect(host.memory == 64 * 1_048_576 && host.nanoCpus == 500_000_000 && host.pidsLimit == 50)
            #expect(host.readonlyRootfs == true && host.securityOpt == ["no-new-privileges"])
            #expect(host.logConfig == DockerLogConfig(type: "json-file", config: ["max-size": "1m"]))
            #expect(inspect.config?.user == "1000:1000" && inspect.config?.workingDir == "/tmp" && inspect.config?.stopTimeout == 3)
            let inSync = try await lab.reconcile("repo", "--dry-run")
            #expect(inSync.stdout.contains("No changes."), "what the engine reports reads back as the manifest: \(inSync.stdout)")

            // A limit changed by hand is drift: the plan shows it and the container is recreated with the manifest's.
            try await run("docker", ["update", "--pids-limit", "80", name])
            let drift = try await lab.reconcile("repo", "--dry-run")
            #expect(drift.stdout.contains("resources.pidsLimit"), "\(drift.stdout)")
            #expect(drift.stdout.contains("80") && drift.stdout.contains("50"), "\(drift.stdout)")
            #expect(try await lab.reconcile("repo").exitCode == 0)
            #expect(try await lab.engine.inspectContainer(name).hostConfig?.pidsLimit == 50)
        }
    }

    @Test func aContainerWaitsForItsDependencyToBeHealthy() async throws {
        try await Lab.with { lab in
            let database = """
                  command: [sh, -c, "sleep 2; touch /tmp/ready; exec sleep 2147483647"]
                  healthcheck: {test: "test -f /tmp/ready", interval: 500ms, retries: 30}
                """
            let app = """
                  command: [sleep, "2147483647"]
                  dependsOn: [{name: \(lab.prefix)-db, condition: healthy, timeout: 30s}]
                """
            try Self.write(lab, [Self.container(lab, "db", database), Self.container(lab, "app", app)])
            let result = try await lab.reconcile("repo")
            #expect(result.exitCode == 0, "\(result.stdout)\n\(result.stderr)")
            let db = try await lab.engine.inspectContainer("\(lab.prefix)-db")
            let healthy = try #require(db.state?.health?.log?.first { $0.exitCode == 0 }?.end)
            let created = try #require(try await lab.engine.inspectContainer("\(lab.prefix)-app").created)
            let healthyAt = try #require(Self.seconds(healthy)), createdAt = try #require(Self.seconds(created))
            #expect(createdAt >= healthyAt, "app created at \(created), db healthy at \(healthy)")
        }
    }

    @Test func aDependencyThatNeverGetsHealthyFailsTheStepAndRollsBack() async throws {
        try await Lab.with { lab in
            let database = """
                  command: [sleep, "2147483647"]
                  healthcheck: {test: "false", interval: 500ms, retries: 1}
                """
            let app = """
                  command: [sleep, "2147483647"]
                  dependsOn: [{name: \(lab.prefix)-db, condition: healthy, timeout: 20s}]
                """
            try Self.write(lab, [Self.container(lab, "db", database), Self.container(lab, "app", app)])
            let result = try await lab.reconcile("repo")
            #expect(result.exitCode == 1, "\(result.stdout)\n\(result.stderr)")
            #expect(result.stderr.contains("waits for Container/\(lab.prefix)-db to be healthy, but it is unhealthy"), "\(result.stderr)")
            #expect(result.stderr.contains("rolled back"), "\(result.stderr)")
            #expect(try await lab.managedContainers().isEmpty, "the run undid the database it made")
        }
    }

    @Test func aDeletedContainerIsStoppedWithItsOwnSignal() async throws {
        try await Lab.with { lab in
            let worker = """
                  command: [sh, -c, "trap 'exit 0' USR1; while true; do sleep 0.2; done"]
                  stopSignal: SIGUSR1
                  stopTimeout: 20s
                """
            try Self.write(lab, [Self.container(lab, "worker", worker)])
            #expect(try await lab.reconcile("repo").exitCode == 0)
            let since = String(Int(Date().timeIntervalSince1970) - 1)
            try Self.write(lab, [])
            let started = Date()
            let removed = try await lab.reconcile("repo")
            #expect(removed.exitCode == 0, "\(removed.stdout)\n\(removed.stderr)")
            #expect(Date().timeIntervalSince(started) < 15, "it stopped on its signal, not after the timeout")
            let events = try await run(
                "docker",
                [
                    "events", "--since", since, "--until", String(Int(Date().timeIntervalSince1970) + 1), "--filter",
                    "container=\(lab.prefix)-worker", "--filter", "event=kill", "--format", "{{.Actor.Attributes.signal}}",
                ])
            #expect(events.stdout.split(separator: "\n").first == "10", "the first signal was SIGUSR1: \(events.stdout)")
        }
    }
}
