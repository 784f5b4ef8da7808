import ConvergeCore
import Foundation

/// What one `ansible-playbook` run did, per host, read from the `ansible.posix.jsonl` stdout
/// callback: the recap counts AWX shows (ok, changed, failures, unreachable as "dark",
/// skipped) and each task's outcome with its output, bounded so a noisy task cannot fill the
/// journal. Encoded as the step's report.
public struct PlaybookResult: Sendable, Codable, Equatable {
    /// Per host, the most task output kept (the rest is cut, and says so).
    public static let outputLimitPerHost = 64 * 1024
    /// Per task and field (msg, stdout, stderr), the most text kept.
    public static let outputLimitPerField = 4 * 1024

    public enum Summary: String, Sendable, Codable {
        case allOK = "all_ok"
        case partial
        case allFailed = "all_failed"
    }

    public struct TaskOutcome: Sendable, Codable, Equatable {
        public var task: String
        /// ok, changed, failed, unreachable or skipped.
        public var status: String
        public var message: String?
        public var stdout: String?
        public var stderr: String?
    }

    public struct HostResult: Sendable, Codable, Equatable {
        public var host: String
        public var ok = 0
        public var changed = 0
        public var failures = 0
        public var unreachable = 0
        public var skipped = 0
        public var rescued = 0
        public var ignored = 0
        public var tasks: [TaskOutcome] = []
        /// Task output left out past `outputLimitPerHost`, in bytes.
        public var truncatedBytes = 0

        /// The host ran the play to its end without a failure.
        public var succeeded: Bool { failures == 0 && unreachable == 0 && ran }
        /// The recap saw it; a targeted host the plays never reached did not run.
        public var ran = false

        init(host: String) { self.host = host }
    }

    public var playbook: String
    public var summary: Summary
    public var hosts: [HostResult]
    /// ansible-playbook's exit code and what it means; nil when it was killed.
    public var exitCode: Int32?
    public var exitMeaning: String
    public var checkMode: Bool
    public var durationSeconds: Double
    /// Snapshots taken before the run (`Before executing …`), and hosts run without one.
    public var snapshots: [GuestSnapshot]
    public var warnings: [String]
    /// The end of stderr when ansible-playbook failed before or outside the hosts (a syntax
    /// error, a missing module), bounded.
    public var errorOutput: String?
    /// `rendered`, set in the journaled report.
    public var text: String?

    /// Reads the jsonl events. Lines that are not events (warnings some plugins print on
    /// stdout) are skipped; `targets` are the hosts the run was limited to, in order.
    static func read(
        jsonl: [UInt8], targets: [String], playbook: String, exitCode: Int32?, checkMode: Bool, duration: Double
    ) -> PlaybookResult {
        var results = Dictionary(uniqueKeysWithValues: targets.map { ($0, HostResult(host: $0)) })
        var order = targets
        for line in jsonl.split(separator: UInt8(ascii: "\n")) where line.first == UInt8(ascii: "{") {
            guard let event = try? JSONValue.parse(line), let name = event["_event"]?.string else { continue }
            if name == "v2_playbook_on_stats", let stats = event["stats"]?.objectFields {
                for (host, counts) in stats {
                    if results[host] == nil { results[host] = HostResult(host: host); order.append(host) }
                    results[host]?.ran = true
                    results[host]?.ok = counts["ok"]?.int ?? 0
                    results[host]?.changed = counts["changed"]?.int ?? 0
                    results[host]?.failures = counts["failures"]?.int ?? 0
                    results[host]?.unreachable = counts["unreachable"]?.int ?? 0
                    results[host]?.skipped = counts["skipped"]?.int ?? 0
                    results[host]?.rescued = counts["rescued"]?.int ?? 0
                    results[host]?.ignored = counts["ignored"]?.int ?? 0
                }
                continue
            }
            guard name.hasPrefix("v2_runner_on_"), let hosts = event["hosts"]?.objectFields else { continue }
            let task = event["task"]?["name"]?.string ?? ""
            for (host, result) in hosts {
                if results[host] == nil { results[host] = HostResult(host: host); order.append(host) }
                let status: String
                switch name {
                case "v2_runner_on_failed": status = "failed"
                case "v2_runner_on_unreachable": status = "unreachable"
                case "v2_runner_on_skipped": status = "skipped"
                default: status = result["changed"] == .bool(true) ? "changed" : "ok"
                }
                results[host]?.record(
                    TaskOutcome(
                        task: task, status: status, message: Self.bounded(result["msg"]), stdout: Self.bounded(result["stdout"]),
                        stderr: Self.bounded(result["stderr"])))
            }
        }
        let hosts = order.compactMap { results[$0] }
        let succeeded = hosts.filter(\.succeeded).count
        let summary: Summary = succeeded == hosts.count && exitCode == 0 ? .allOK : succeeded == 0 ? .allFailed : .partial
        return PlaybookResult(
            playbook: playbook, summary: summary, hosts: hosts, exitCode: exitCode, exitMeaning: Self.meaning(of: exitCode),
            checkMode: checkMode, durationSeconds: duration, snapshots: [], warnings: [], errorOutput: nil, text: nil)
    }

    private static func bounded(_ value: JSONValue?) -> String? {
        guard let value else { return nil }
        let text = value.string ?? value.serialized
        guard !text.isEmpty else { return nil }
        guard text.utf8.count > outputLimitPerField else { return text }
        return String(decoding: text.utf8.prefix(outputLimitPerField), as: UTF8.self) + "… (cut at \(outputLimitPerField) bytes)"
    }

    /// What ansible-playbook's exit code says (its `TaskQueueManager` results are bit flags
    /// that may combine: 2 failed hosts, 4 unreachable hosts, 8 a play stopped early).
    static func meaning(of code: Int32?) -> String {
        guard let code else { return "killed" }
        switch code {
        case 0: return "ok"
        case 1: return "error"
        case 5: return "bad or incomplete options"
        case 99: return "interrupted"
        case 250: return "unexpected error"
        case 255: return "unknown error"
        default:
            let flags = [(2, "hosts failed"), (4, "hosts unreachable (or a parse error)"), (8, "a play stopped early")]
                .filter { Int(code) & $0.0 != 0 }.map(\.1)
            return flags.isEmpty ? "exit code \(code)" : flags.joined(separator: ", ")
        }
    }

    /// One line for logs and errors: `partial: 4 of 5 hosts ok; web-3 failed (task "deploy": …)`.
    public var line: String {
        let failed = hosts.filter { !$0.succeeded }
        var text = "\(summary.rawValue): \(hosts.count - failed.count) of \(hosts.count) host\(hosts.count == 1 ? "" : "s") ok"
        if checkMode { text += " (check mode)" }
        for host in failed.prefix(5) {
            let reason: String
            if !host.ran {
                reason = "not reached by any play (check the plays' hosts: patterns)"
            } else if let task = host.tasks.last(where: { $0.status == "failed" || $0.status == "unreachable" }) {
                reason = "\(task.status) at task \"\(task.task)\"" + (task.message.map { ": \($0.prefix(200))" } ?? "")
            } else {
                reason = "failed"
            }
            text += "; \(host.host) \(reason)"
        }
        if failed.count > 5 { text += "; and \(failed.count - 5) more" }
        // No recap, or a failure the recap does not explain: ansible-playbook's own reason.
        if exitCode != 0, failed.isEmpty || !hosts.contains(where: \.ran) { text += "; ansible-playbook: \(exitMeaning)" }
        return text
    }

    /// For people (`converge runs show`, `converge playbooks run`): the summary, the recap
    /// per host, each failure with its task and message, the snapshots and warnings.
    public var rendered: String {
        var lines = ["playbook \(playbook): \(line)"]
        let width = max(4, hosts.map(\.host.count).max() ?? 4)
        lines.append("  " + "HOST".padding(toLength: width, withPad: " ", startingAt: 0) + "  OK CHANGED FAILED DARK SKIPPED")
        for host in hosts {
            let counts = [host.ok, host.changed, host.failures, host.unreachable, host.skipped].map(String.init)
            let columns = zip(counts, [4, 8, 7, 5, 8]).map { String(repeating: " ", count: max(0, $1 - $0.count)) + $0 }.joined()
            lines.append(
                "  " + host.host.padding(toLength: width, withPad: " ", startingAt: 0) + columns + (host.ran ? "" : "  (not reached)"))
        }
        for host in hosts {
            for task in host.tasks where task.status == "failed" || task.status == "unreachable" {
                lines.append("  \(host.host): \(task.status) at \"\(task.task)\"\(task.message.map { ": \($0)" } ?? "")")
            }
        }
        for snapshot in snapshots { lines.append("  snapshot of \(snapshot.object): \(snapshot.name)") }
        for warning in warnings { lines.append("  warning: \(warning)") }
        if let errorOutput {
            lines.append("  ansible-playbook: \(errorOutput.split(separator: "\n").suffix(5).joined(separator: "\n    "))")
        }
        return lines.joined(separator: "\n")
    }

    /// The step's report: the result, with `text` (its rendering) for readers that do not
    /// know its shape.
    var json: String {
        var copy = self
        copy.text = rendered
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(copy), as: UTF8.self)) ?? "{}"
    }
}

extension PlaybookResult.HostResult {
    /// Keeps a task's outcome while the host's output stays under its limit.
    mutating func record(_ outcome: PlaybookResult.TaskOutcome) {
        let size = [outcome.message, outcome.stdout, outcome.stderr].compactMap { $0?.utf8.count }.reduce(outcome.task.utf8.count, +)
        let used = tasks.reduce(0) { total, task in
            total + [task.message, task.stdout, task.stderr].compactMap { $0?.utf8.count }.reduce(task.task.utf8.count, +)
        }
        if used + size > PlaybookResult.outputLimitPerHost {
            truncatedBytes += size
            tasks.append(PlaybookResult.TaskOutcome(task: outcome.task, status: outcome.status, message: nil, stdout: nil, stderr: nil))
        } else {
            tasks.append(outcome)
        }
    }
}
