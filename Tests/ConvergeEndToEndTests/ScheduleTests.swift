import Foundation
import Testing

/// Scheduled playbooks fired by `converge schedules run-due` and by the controller, on the
/// lab's sshd containers.
@Suite struct ScheduleTests {
    static func scheduled(_ name: String, at date: Date, target: String = "web") -> String {
        """
        apiVersion: converge.dev/v1alpha1
        kind: Playbook
        metadata: {name: \(name)}
        spec: {path: ansible/\(name).yml}
        ---
        apiVersion: converge.dev/v1alpha1
        kind: ScheduledPlaybook
        metadata: {name: \(name)}
        spec:
          playbook: \(name)
          target: \(target)
          at: "\(date.formatted(.iso8601))"
        """
    }

    static let stampPlaybook = """
        - hosts: all
          gather_facts: false
          tasks:
            - shell: date +%s.%N >> /tmp/scheduled
        """

    @Test func runDueRunsWhatIsDueOnceAndRecordsItsHistory() async throws {
        try await AnsibleLab.with(hosts: 2) { lab in
            try lab.write([
                "inventory.yaml": lab.inventory(),
                "ansible/stamp.yml": Self.stampPlaybook,
                "schedule.yaml": Self.scheduled("stamp", at: Date().addingTimeInterval(-2)),
            ])
            let instance = ["--instance", lab.lab.instance]
            let first = try await lab.converge(["schedules", "run-due", "repo"] + instance)
            #expect(first.exitCode == 0, "\(first.stdout)\n\(first.stderr)")
            #expect(first.stdout.contains("ScheduledPlaybook/stamp"), "\(first.stdout)")
            #expect(first.stdout.contains("completed"), "\(first.stdout)")
            for host in ["h1", "h2"] {
                #expect(try await lab.file("/tmp/scheduled", on: host)?.split(separator: "\n").count == 1)
            }
            let again = try await lab.converge(["schedules", "run-due", "repo"] + instance)
            #expect(again.exitCode == 0)
            #expect(again.stderr.contains("Nothing is due."), "\(again.stdout)\n\(again.stderr)")
            #expect(try await lab.file("/tmp/scheduled", on: "h1")?.split(separator: "\n").count == 1, "a due time runs once")

            let history = try await lab.converge(["schedules", "history", "stamp"] + instance)
            #expect(history.stdout.contains("completed  started +"), "\(history.stdout)")
            let runID = try #require(history.stdout.components(separatedBy: "run ").last?.prefix { $0.isNumber })
            let show = try await lab.converge(["runs", "show", String(runID)])
            #expect(show.stdout.contains("playbook stamp: all_ok: 2 of 2 hosts ok"), "\(show.stdout)")
            let list = try await lab.converge(["schedules", "repo"] + instance)
            #expect(list.stdout.contains("ScheduledPlaybook/stamp  once at"), "\(list.stdout)")
            #expect(list.stdout.contains("last  "), "\(list.stdout)")
            #expect(list.stdout.contains("completed"), "\(list.stdout)")
        }
    }

    @Test func theControllerFiresADueTimeWithoutBeingAsked() async throws {
        try await ControllerLab.with { controllerLab in
            let lab = try await AnsibleLab.start(controllerLab.lab, hosts: 1)
            try await controllerLab.push([
                "inventory.yaml": lab.inventory(),
                "ansible/stamp.yml": Self.stampPlaybook,
                "schedule.yaml": Self.scheduled("stamp", at: Date().addingTimeInterval(8)),
            ])
            let controller = try await controllerLab.startController(["--interval", "1h"])
            let series =
                #"converge_schedule_firings_total{source="\#(controllerLab.lab.instance)",schedule="ScheduledPlaybook/stamp",status="completed"}"#
            try await eventually("the scheduled run completes", timeout: .seconds(90)) {
                let stamped = try await lab.file("/tmp/scheduled", on: "h1") != nil
                let completed = try await controller.metric(series)
                return stamped && completed == 1
            }
            let history = try await run(
                convergeBinary,
                [
                    "schedules", "history", "stamp", "--instance", controllerLab.lab.instance, "--state",
                    controllerLab.lab.directory.appendingPathComponent("state.db").path,
                ])
            #expect(history.stdout.contains("completed  started +"), "\(history.stdout)\n\(history.stderr)")
        }
    }
}
