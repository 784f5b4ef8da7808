import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `ansible`: playbooks on containers of the lab's sshd image (real ssh, Debian's
/// ansible-playbook):
/// - `converge playbooks run` on a group of 20 hosts against one host (wall time ratio), with a
///   play of small tasks (CPU-bound on a small machine: the targets share its CPUs) and with a
///   play whose time is the hosts' own work;
/// - Converge's overhead over a bare `ansible-playbook` of the same play and inventory, on one
///   host and on 20 (each run opens its own ssh connections, as Converge's runs do);
/// - the controller's schedule firing latency: one-time schedules a few seconds apart, each
///   from its due time to the start of its run, as the store records it.
///
/// Everything it makes carries a unique `cvb-ans-<random>` prefix and is removed at the end.
enum AnsibleBenchmark {
    static let name = "ansible"
    static let image = "converge-lab/sshd:1"
    static let groupSize = 20
    static let schedules = 20

    static func run(rounds: Int, converge: String?, packagePath: String) throws -> [Row] {
        let converge = try converge ?? DockerBenchmark.buildConverge(packagePath: packagePath)
        let lab = try Lab(hosts: groupSize)
        defer { lab.cleanUp() }
        var rows = try overhead(lab, converge: converge, rounds: rounds)
        rows += try firingLatency(lab, converge: converge, packagePath: packagePath)
        return rows
    }

    // MARK: Figures

    private static func overhead(_ lab: Lab, converge: String, rounds: Int) throws -> [Row] {
        try lab.writeManifests()
        var convergeOne: [Double] = [], bareOne: [Double] = [], convergeGroup: [Double] = [], bareGroup: [Double] = []
        var groupBusy: [Double] = []
        var remoteOne: [Double] = [], remoteGroup: [Double] = []
        for round in 0..<max(rounds, 3) {
            // Alternate which goes first, so neither always meets warm sshd processes.
            let order = round % 2 == 0 ? [true, false] : [false, true]
            for convergeFirst in order {
                if convergeFirst {
                    convergeOne.append(try lab.convergeRun(converge, "one"))
                    let before = CPUSample.now()
                    convergeGroup.append(try lab.convergeRun(converge, "group"))
                    groupBusy.append(CPUSample.now().busy(since: before))
                } else {
                    bareOne.append(try lab.bareRun(limit: "h1"))
                    bareGroup.append(try lab.bareRun(limit: "web"))
                }
            }
            remoteOne.append(try lab.convergeRun(converge, "one-remote"))
            remoteGroup.append(try lab.convergeRun(converge, "group-remote"))
            log(
                "ansible: round \(round + 1): converge 1 host \(Table.format(convergeOne.last ?? 0, .seconds)), \(groupSize) hosts \(Table.format(convergeGroup.last ?? 0, .seconds)); bare 1 host \(Table.format(bareOne.last ?? 0, .seconds)), \(groupSize) hosts \(Table.format(bareGroup.last ?? 0, .seconds))"
            )
        }
        let one = Stats.median(convergeOne), group = Stats.median(convergeGroup)
        let bareOneMedian = Stats.median(bareOne), bareGroupMedian = Stats.median(bareGroup)
        let play = "ping, copy, command (gather_facts off), forks = hosts"
        return [
            Row(name, "converge playbooks run, 1 host", samples: convergeOne, note: play),
            Row(
                name, "converge playbooks run, \(groupSize) hosts", samples: convergeGroup,
                note: String(
                    format: "the machine's %d CPUs were %.0f%% busy during it: ansible's workers and the %d targets share them",
                    ProcessInfo.processInfo.activeProcessorCount, Stats.median(groupBusy) * 100, groupSize)),
            Row(
                name, "ratio \(groupSize) hosts / 1 host (converge, medians)", samples: [group / one], unit: .ratio, target: "<= 1.5",
                bound: 1.5,
                note: "CPU-bound here: see the 20-host row"),
            Row(name, "converge playbooks run, hosts' own work 3 s, 1 host", samples: remoteOne, note: "ping, command: sleep 3"),
            Row(name, "converge playbooks run, hosts' own work 3 s, \(groupSize) hosts", samples: remoteGroup),
            Row(
                name, "ratio \(groupSize) hosts / 1 host, hosts' own work (converge, medians)",
                samples: [Stats.median(remoteGroup) / Stats.median(remoteOne)], unit: .ratio, target: "<= 1.5", bound: 1.5),
            Row(
                name, "bare ansible-playbook, 1 host", samples: bareOne,
                note: "same play, inventory, callback and pipelining; fresh ssh connections"),
            Row(name, "bare ansible-playbook, \(groupSize) hosts", samples: bareGroup),
            Row(
                name, "converge overhead, 1 host (medians)", samples: [one - bareOneMedian], target: "<= 10% + 0.3 s",
                bound: bareOneMedian * 0.1 + 0.3, note: "bound \(Table.format(bareOneMedian * 0.1 + 0.3, .seconds))"),
            Row(
                name, "converge overhead, \(groupSize) hosts (medians)", samples: [group - bareGroupMedian], target: "<= 10% + 0.3 s",
                bound: bareGroupMedian * 0.1 + 0.3, note: "bound \(Table.format(bareGroupMedian * 0.1 + 0.3, .seconds))"),
        ]
    }

    private static func firingLatency(_ lab: Lab, converge: String, packagePath: String) throws -> [Row] {
        let fixture = try ControllerBenchmark.Fixture(packagePath: packagePath, converge: converge)
        defer { fixture.cleanUp() }
        let source = try fixture.source("schedules")
        let first = Date().addingTimeInterval(25)
        var files = lab.manifestFiles(folder: "")
        for index in 0..<schedules {
            let due = first.addingTimeInterval(Double(index) * 3)
            files["s\(index).yaml"] = """
                apiVersion: converge.dev/v1alpha1
                kind: ScheduledPlaybook
                metadata: {name: s\(index)}
                spec: {playbook: site, target: h1, at: "\(due.formatted(.iso8601))", snapshot: false}
                """
        }
        try source.push(files)
        let controller = try fixture.start(source: source, arguments: ["--interval", "1h"])
        defer { controller.stop() }
        let last = first.addingTimeInterval(Double(schedules - 1) * 3)
        log("ansible: \(schedules) one-time schedules due from \(first.formatted(.iso8601)) to \(last.formatted(.iso8601))")
        var delays: [Double] = []
        try ControllerBenchmark.waitUntil("every schedule ran", timeout: last.timeIntervalSinceNow + 120, every: 1) {
            delays = (0..<schedules).compactMap { index in
                let history = try? Subprocess.run([
                    converge, "schedules", "history", "s\(index)", "--output", "json", "--instance", source.prefix,
                    "--state", fixture.directory + "/\(source.prefix).db",
                ])
                guard let data = history?.stdout.data(using: .utf8),
                    let firings = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]],
                    let firing = firings.first, firing["status"] as? String == "completed"
                else { return nil }
                return firing["startDelaySeconds"] as? Double
            }
            return delays.count == schedules
        }
        let sorted = delays.sorted()
        let p95 = sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.95).rounded(.up)) - 1)]
        return [
            Row(
                name, "schedule firing latency in the controller (due time to run start)", samples: delays,
                note: "\(schedules) one-time schedules 3 s apart"),
            Row(name, "schedule firing latency, p95", samples: [p95], target: "< 1 s", bound: 1),
        ]
    }

    // MARK: Lab

    /// The targets, their key, and the manifests and plain inventory of the same play.
    final class Lab {
        let prefix = "cvb-ans-\(randomSuffix())"
        let directory: String
        var addresses: [String: String] = [:]
        var keyPath: String { directory + "/id_ed25519" }

        init(hosts: Int) throws {
            directory = try makeTemporaryDirectory(prefix: "cvb-ansible-")
            try Subprocess.check(["docker", "image", "inspect", image])
            try Subprocess.check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "converge-bench", "-f", keyPath])
            let publicKey = try String(contentsOfFile: keyPath + ".pub", encoding: .utf8)
            try Subprocess.check(["docker", "network", "create", "--label", "converge.dev/bench=\(prefix)", prefix])
            for index in 1...hosts {
                let name = "\(prefix)-h\(index)"
                try Subprocess.check([
                    "docker", "run", "-d", "--name", name, "--network", prefix, "-e", "AUTHORIZED_KEYS=\(publicKey)", image,
                ])
                addresses["h\(index)"] = try Subprocess.check([
                    "docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name,
                ])
                .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            for index in 1...hosts {
                try ControllerBenchmark.waitUntil("sshd of h\(index) listens", timeout: 30) {
                    (try? Subprocess.run(["docker", "exec", "\(prefix)-h\(index)", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/22"]))?
                        .succeeded == true
                }
            }
        }

        var hostNames: [String] { addresses.keys.sorted { Int($0.dropFirst()) ?? 0 < Int($1.dropFirst()) ?? 0 } }

        /// The manifests (under `folder`, "" for the root) and the playbook.
        func manifestFiles(folder: String) -> [String: String] {
            let base = folder.isEmpty ? "" : folder + "/"
            let hosts = hostNames.map { "            \($0): {address: \(addresses[$0] ?? "")}" }.joined(separator: "\n")
            return [
                base + "inventory.yaml": """
                apiVersion: converge.dev/v1alpha1
                kind: Inventory
                metadata: {name: bench}
                spec:
                  ssh: {user: converge, privateKey: {file: \(keyPath)}}
                  environments:
                    bench:
                      groups:
                        web:
                          hosts:
                \(hosts)
                """,
                base + "playbooks.yaml": """
                apiVersion: converge.dev/v1alpha1
                kind: Playbook
                metadata: {name: site}
                spec: {path: ansible/site.yml}
                ---
                apiVersion: converge.dev/v1alpha1
                kind: PlaybookRun
                metadata: {name: one}
                spec: {playbook: site, target: h1, snapshot: false}
                ---
                apiVersion: converge.dev/v1alpha1
                kind: PlaybookRun
                metadata: {name: group}
                spec: {playbook: site, target: web, snapshot: false}
                """,
                base + "ansible/site.yml": Self.play,
                base + "remote.yaml": """
                apiVersion: converge.dev/v1alpha1
                kind: Playbook
                metadata: {name: remote}
                spec: {path: ansible/remote.yml}
                ---
                apiVersion: converge.dev/v1alpha1
                kind: PlaybookRun
                metadata: {name: one-remote}
                spec: {playbook: remote, target: h1, snapshot: false}
                ---
                apiVersion: converge.dev/v1alpha1
                kind: PlaybookRun
                metadata: {name: group-remote}
                spec: {playbook: remote, target: web, snapshot: false}
                """,
                base + "ansible/remote.yml": Self.remotePlay,
            ]
        }

        static let play = """
            - hosts: all
              gather_facts: false
              tasks:
                - ping:
                - copy: {dest: /tmp/converge-bench, content: "{{ inventory_hostname }}"}
                - command: "true"
            """

        /// A play whose time is the hosts' own work (3 s that take no CPU here), as on real
        /// hosts with CPUs of their own; the lab's containers share this machine's.
        static let remotePlay = """
            - hosts: all
              gather_facts: false
              tasks:
                - ping:
                - command: sleep 3
            """

        func writeManifests() throws {
            for (path, content) in manifestFiles(folder: "repo") {
                let url = URL(fileURLWithPath: directory + "/" + path)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try content.write(to: url, atomically: true, encoding: .utf8)
            }
            // The bare run's inventory: the same hosts, user, key and ssh options.
            var lines = ["[web]"]
            for host in hostNames {
                lines.append(
                    "\(host) ansible_host=\(addresses[host] ?? "") ansible_user=converge ansible_ssh_private_key_file=\(keyPath) ansible_ssh_common_args='-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no'"
                )
            }
            try (lines.joined(separator: "\n") + "\n").write(toFile: directory + "/inventory.ini", atomically: true, encoding: .utf8)
        }

        /// `converge playbooks run NAME`; its wall time.
        func convergeRun(_ converge: String, _ name: String) throws -> Double {
            let result = try Subprocess.check(
                [converge, "playbooks", "run", name, directory + "/repo", "--state", directory + "/state.db", "--instance", prefix],
                environment: ["NO_COLOR": "1"])
            return result.seconds
        }

        /// `ansible-playbook` of the same play; its wall time.
        func bareRun(limit: String) throws -> Double {
            let controlPath = try makeTemporaryDirectory(prefix: "cvb-ansible-cp-")
            defer { try? FileManager.default.removeItem(atPath: controlPath) }
            let forks = limit == "h1" ? 1 : addresses.count
            let result = try Subprocess.check(
                [
                    "ansible-playbook", "-i", directory + "/inventory.ini", "--limit", limit, "--forks", String(forks),
                    directory + "/repo/ansible/site.yml",
                ],
                environment: [
                    "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.jsonl", "ANSIBLE_HOST_KEY_CHECKING": "False",
                    "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
                    "ANSIBLE_SSH_CONTROL_PATH_DIR": controlPath, "ANSIBLE_PIPELINING": "True",
                ])
            return result.seconds
        }

        func cleanUp() {
            let ids =
                (try? Subprocess.run(["docker", "ps", "-aq", "--filter", "name=\(prefix)-"]))?.stdout.split(separator: "\n").map(
                    String.init) ?? []
            if !ids.isEmpty { _ = try? Subprocess.run(["docker", "rm", "-f"] + ids) }
            _ = try? Subprocess.run(["docker", "network", "rm", prefix])
            try? FileManager.default.removeItem(atPath: directory)
        }
    }
}

/// The machine's CPU counters (/proc/stat), to tell how busy it was over an interval.
struct CPUSample {
    var busy: Double
    var total: Double

    static func now() -> CPUSample {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
        else { return CPUSample(busy: 0, total: 0) }
        let fields = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        let idle = fields.count > 4 ? fields[3] + fields[4] : 0
        let total = fields.reduce(0, +)
        return CPUSample(busy: total - idle, total: total)
    }

    /// The fraction of the time since `earlier` the CPUs were busy.
    func busy(since earlier: CPUSample) -> Double {
        let total = self.total - earlier.total
        return total > 0 ? (busy - earlier.busy) / total : 0
    }
}
