import ConvergeCore
import Testing

@testable import ConvergeAnsible

/// Reading ansible.posix.jsonl events (shapes as ansible-core 2.14 with ansible.posix 1.5 writes
/// them) into the recap per host and the all OK / partial / all failed summary.
@Suite struct PlaybookResultTests {
    static func event(_ name: String, task: String, host: String, _ result: String) -> String {
        #"{"_event":"\#(name)","hosts":{"\#(host)":\#(result)},"task":{"name":"\#(task)","duration":{"start":"2026-11-30T07:29:26Z"}}}"#
    }

    static func stats(_ hosts: [String: (ok: Int, changed: Int, failures: Int, unreachable: Int)]) -> String {
        let entries = hosts.sorted { $0.key < $1.key }.map { host, counts in
            #""\#(host)":{"changed":\#(counts.changed),"failures":\#(counts.failures),"ignored":0,"ok":\#(counts.ok),"rescued":0,"skipped":0,"unreachable":\#(counts.unreachable)}"#
        }
        return #"{"_event":"v2_playbook_on_stats","custom_stats":{},"global_custom_stats":{},"stats":{\#(entries.joined(separator: ","))}}"#
    }

    static func read(_ lines: [String], targets: [String], exitCode: Int32?) -> PlaybookResult {
        PlaybookResult.read(
            jsonl: Array(lines.joined(separator: "\n").utf8), targets: targets, playbook: "site", exitCode: exitCode, checkMode: false,
            duration: 1)
    }

    @Test func everyHostOkIsAllOK() {
        let result = Self.read(
            [
                #"{"_event":"v2_playbook_on_play_start","play":{"name":"site"},"tasks":[]}"#,
                Self.event("v2_runner_on_ok", task: "say hi", host: "h1", #"{"changed":true,"stdout":"hi","msg":""}"#),
                Self.event("v2_runner_on_ok", task: "say hi", host: "h2", #"{"changed":false}"#),
                Self.stats(["h1": (1, 1, 0, 0), "h2": (1, 0, 0, 0)]),
            ], targets: ["h1", "h2"], exitCode: 0)
        #expect(result.summary == .allOK)
        #expect(result.hosts.map(\.host) == ["h1", "h2"])
        #expect(
            result.hosts[0].tasks == [
                PlaybookResult.TaskOutcome(task: "say hi", status: "changed", message: nil, stdout: "hi", stderr: nil)
            ])
        #expect(result.line == "all_ok: 2 of 2 hosts ok")
    }

    @Test func aFailedAndAnUnreachableHostArePartialWithTheirTasks() {
        let result = Self.read(
            [
                "No config file found; using defaults",
                Self.event("v2_runner_on_ok", task: "ping", host: "h1", #"{"changed":false}"#),
                Self.event("v2_runner_on_failed", task: "deploy", host: "h2", #"{"failed":true,"msg":"disk full"}"#),
                Self.event("v2_runner_on_unreachable", task: "ping", host: "h3", #"{"unreachable":true,"msg":"Connection refused"}"#),
                Self.stats(["h1": (1, 0, 0, 0), "h2": (0, 0, 1, 0), "h3": (0, 0, 0, 1)]),
            ], targets: ["h1", "h2", "h3"], exitCode: 4)
        #expect(result.summary == .partial)
        #expect(
            result.line
                == #"partial: 1 of 3 hosts ok; h2 failed at task "deploy": disk full; h3 unreachable at task "ping": Connection refused"#)
        #expect(result.exitMeaning == "hosts unreachable (or a parse error)")
        #expect(result.rendered.contains("  h3     0       0      0    1       0"), "\(result.rendered)")
    }

    @Test func noHostOkIsAllFailed_andAHostNoPlayReachedDidNotRun() {
        let result = Self.read(
            [Self.event("v2_runner_on_failed", task: "x", host: "h1", #"{"msg":"no"}"#), Self.stats(["h1": (0, 0, 1, 0)])],
            targets: ["h1", "h2"], exitCode: 2)
        #expect(result.summary == .allFailed)
        #expect(result.hosts[1].ran == false)
        #expect(result.line.contains("h2 not reached by any play"), "\(result.line)")
    }

    @Test func aRunThatDiedBeforeTheRecapFailsEveryHost() {
        let result = Self.read(["ERROR! the playbook could not be found"], targets: ["h1"], exitCode: 1)
        #expect(result.summary == .allFailed)
        #expect(result.line.hasSuffix("ansible-playbook: error"), "\(result.line)")
    }

    @Test func outputIsBoundedPerFieldAndPerHost() {
        let long = String(repeating: "x", count: PlaybookResult.outputLimitPerField * 3)
        var lines: [String] = []
        for index in 0..<40 {
            lines.append(Self.event("v2_runner_on_ok", task: "t\(index)", host: "h1", #"{"changed":false,"stdout":"\#(long)"}"#))
        }
        lines.append(Self.stats(["h1": (40, 0, 0, 0)]))
        let result = Self.read(lines, targets: ["h1"], exitCode: 0)
        let host = result.hosts[0]
        #expect(host.tasks.count == 40, "every task is listed")
        #expect(host.tasks[0].stdout?.hasSuffix("(cut at \(PlaybookResult.outputLimitPerField) bytes)") == true)
        let kept = host.tasks.compactMap(\.stdout).reduce(0) { $0 + $1.utf8.count }
        #expect(kept <= PlaybookResult.outputLimitPerHost)
        #expect(host.truncatedBytes > 0)
    }

    @Test func exitCodesAreNamed() {
        #expect(PlaybookResult.meaning(of: 0) == "ok")
        #expect(PlaybookResult.meaning(of: 2) == "hosts failed")
        #expect(PlaybookResult.meaning(of: 6) == "hosts failed, hosts unreachable (or a parse error)")
        #expect(PlaybookResult.meaning(of: 8) == "a play stopped early")
        #expect(PlaybookResult.meaning(of: 99) == "interrupted")
        #expect(PlaybookResult.meaning(of: 250) == "unexpected error")
        #expect(PlaybookResult.meaning(of: nil) == "killed")
    }
}
