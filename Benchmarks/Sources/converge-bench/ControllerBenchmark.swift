import ConvergeTestSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `converge controller` as a process, against a Git repository served over smart HTTP on
/// loopback (scripts/git-http-server.py), the Docker engine, PostgreSQL and the test
/// kube-apiserver:
/// - webhook to applied: a one-field change to a container's environment, pushed, a signed
///   webhook sent, until the engine shows the new value;
/// - idle with 1,000 containers: RSS, and CPU over 20 s between intervals;
/// - an in-sync interval of 10,000 ConfigMaps (fetch, observe, plan, no change);
/// - leader takeover after `kill -9`, with the default lease timings (15 s / 10 s / 2 s).
enum ControllerBenchmark {
    static let name = "controller"
    static let secret = "bench-webhook-secret-0123456789"
    static let token = "bench-token"

    static func run(rounds: Int, converge: String?, packagePath: String, postgresURL: String?) throws -> [Row] {
        let converge = try converge ?? DockerBenchmark.buildConverge(packagePath: packagePath)
        let fixture = try Fixture(packagePath: packagePath, converge: converge)
        defer { fixture.cleanUp() }
        var rows = try webhookToApplied(fixture, rounds: max(rounds, 5))
        rows += try idle(fixture, containers: 1000)
        rows += try inSync(fixture, configMaps: 10_000, rounds: rounds, packagePath: packagePath)
        rows += try takeover(fixture, rounds: rounds, postgresURL: postgresURL)
        return rows
    }

    // MARK: Figures

    private static func webhookToApplied(_ fixture: Fixture, rounds: Int) throws -> [Row] {
        let source = try fixture.source("web")
        try source.push(["web.yaml": source.container("web", color: "c0")])
        let controller = try fixture.start(source: source, arguments: ["--interval", "10m"])
        defer { controller.stop() }
        try waitUntil("the first commit is applied", timeout: 120) { color(of: "\(source.prefix)-web") == "c0" }
        var latencies: [Double] = []
        for round in 1...rounds {
            try source.push(["web.yaml": source.container("web", color: "c\(round)")])
            let started = Clock.now()
            try controller.webhook(ref: "refs/heads/main")
            try waitUntil("round \(round) is applied", timeout: 60, every: 0.02) { color(of: "\(source.prefix)-web") == "c\(round)" }
            latencies.append(Clock.now() - started)
        }
        return [
            Row(
                name, "webhook to applied, one env field of a container", samples: latencies, target: "< 2 s", bound: 2,
                note: "push, signed generic webhook, fetch over HTTP, plan, recreate")
        ]
    }

    private static func idle(_ fixture: Fixture, containers count: Int) throws -> [Row] {
        let source = try fixture.source("idle")
        var files: [String: String] = [:]
        for index in 0..<count { files["c\(index).yaml"] = source.container("c\(index)", color: "idle") }
        try source.push(files)
        // A long interval, so the window falls between ticks.
        let controller = try fixture.start(source: source, arguments: ["--interval", "10m", "--parallelism", "16"])
        defer { controller.stop() }
        let started = Clock.now()
        try waitUntil("\(count) containers are applied", timeout: 1800, every: 2) {
            (try? controller.metricValue(#"converge_reconcile_total{source="\#(source.prefix)",result="applied"}"#)) == 1
        }
        log("controller: \(count) containers applied in \(Table.format(Clock.now() - started, .seconds))")
        // A window between ticks: taken again when a tick (the start's second, queued one)
        // ended inside it.
        let window = 30.0
        var cpu = 0.0
        for _ in 1...4 {
            Thread.sleep(forTimeInterval: 5)
            let ticks = try controller.reconcileCount()
            let cpuBefore = controller.cpuSeconds()
            Thread.sleep(forTimeInterval: window)
            cpu = (controller.cpuSeconds() - cpuBefore) / window * 100
            if try controller.reconcileCount() == ticks { break }
        }
        return [
            Row(
                name, "idle RSS, \(count) containers managed", samples: [controller.rssMiB()], unit: .mebibytes, target: "< 150 MiB",
                bound: 150),
            Row(
                name, "idle CPU between intervals, \(count) containers", samples: [cpu], unit: .percent, target: "< 1 %", bound: 1,
                note: "CPU time over \(Int(window)) s in which no tick ran (interval 10m)"),
        ]
    }

    private static func inSync(_ fixture: Fixture, configMaps count: Int, rounds: Int, packagePath: String) throws -> [Row] {
        let cluster = try KubernetesBenchmark.cluster(packagePath: packagePath)
        let source = try fixture.source("kube")
        defer { KubernetesBenchmark.cleanUp([source.prefix], cluster: cluster) }
        let files = KubernetesBenchmark.manifests(prefix: source.prefix, count: count, cluster: cluster).converge
        try source.push(Dictionary(uniqueKeysWithValues: files.map { ($0.path, String(decoding: $0.bytes, as: UTF8.self)) }))
        let controller = try fixture.start(source: source, arguments: ["--interval", "10m"])
        defer { controller.stop() }
        let inSyncSeries = #"converge_reconcile_total{source="\#(source.prefix)",result="in_sync"}"#
        try waitUntil("\(count) ConfigMaps are applied", timeout: 1800, every: 2) {
            (try? controller.metricValue(#"converge_reconcile_total{source="\#(source.prefix)",result="applied"}"#)) == 1
        }
        var times: [Double] = []
        for round in 1...max(rounds, 3) {
            let before = (try? controller.metricValue(inSyncSeries)) ?? 0
            let started = Clock.now()
            try controller.api(.post, "/api/v1/sources/\(source.prefix)/reconcile")
            try waitUntil("in-sync round \(round)", timeout: 120, every: 0.02) {
                ((try? controller.metricValue(inSyncSeries)) ?? 0) > before
            }
            times.append(Clock.now() - started)
        }
        return [
            Row(
                name, "in-sync interval, \(count) ConfigMaps (fetch, observe, plan)", samples: times, target: "< 3 s", bound: 3,
                note: "from POST …/reconcile to the in_sync count moving")
        ]
    }

    private static func takeover(_ fixture: Fixture, rounds: Int, postgresURL: String?) throws -> [Row] {
        guard let postgresURL else {
            log("controller: no PostgreSQL URL (CONVERGE_TEST_POSTGRES_URL); takeover not measured")
            return []
        }
        let database = try ThrowawayDatabase.forBenchmark(.postgres, postgresURL: postgresURL)
        defer { database.destroy() }
        guard var components = URLComponents(string: postgresURL), let databaseName = database.postgres?.database else { return [] }
        components.path = "/" + databaseName
        let store = ["--store", components.string ?? postgresURL]
        let source = try fixture.source("ha")
        try source.push(["web.yaml": source.container("web", color: "ha")])
        var times: [Double] = []
        for round in 1...rounds {
            let leader = try fixture.start(source: source, arguments: ["--interval", "10m"] + store, name: "ha-\(round)-a")
            try waitUntil("a leads", timeout: 60) { (try? leader.metricValue("converge_leader")) == 1 }
            let follower = try fixture.start(source: source, arguments: ["--interval", "10m"] + store, name: "ha-\(round)-b")
            defer { follower.stop() }
            leader.kill(SIGKILL)
            let killed = Clock.now()
            try waitUntil("b leads (round \(round))", timeout: 60, every: 0.05) { (try? follower.metricValue("converge_leader")) == 1 }
            times.append(Clock.now() - killed)
        }
        return [
            Row(
                name, "leader takeover after kill -9 (lease 15 s, renew 10 s, retry 2 s)", samples: times, target: "< 20 s", bound: 20,
                note: "until the follower's converge_leader is 1")
        ]
    }

    private static func color(of container: String) -> String? {
        guard let result = try? Subprocess.run(["docker", "inspect", "-f", "{{range .Config.Env}}{{println .}}{{end}}", container]),
            result.succeeded
        else { return nil }
        return result.stdout.split(separator: "\n").first { $0.hasPrefix("COLOR=") }.map { String($0.dropFirst(6)) }
    }

    static func waitUntil(_ what: String, timeout: Double, every: Double = 0.2, _ condition: () -> Bool) throws {
        let deadline = Clock.now() + timeout
        while Clock.now() < deadline {
            if condition() { return }
            Thread.sleep(forTimeInterval: every)
        }
        throw Subprocess.Failure(description: "timed out after \(Int(timeout)) s waiting until \(what)")
    }

    // MARK: Fixture

    /// A scratch folder, the Git HTTP server over it, and the sources and controllers made
    /// in it, all removed at the end (containers by their instance label).
    final class Fixture {
        let directory: String
        let converge: String
        let server: BackgroundServer
        let port: String
        private(set) var prefixes: [String] = []
        private(set) var controllers: [Controller] = []

        init(packagePath: String, converge: String) throws {
            directory = try makeTemporaryDirectory(prefix: "cvb-controller-")
            self.converge = converge
            try FileManager.default.createDirectory(atPath: directory + "/served", withIntermediateDirectories: true)
            server = try BackgroundServer.start(
                ["/usr/bin/python3", packagePath + "/scripts/git-http-server.py", directory + "/served"], readyLine: "READY")
            port = server.values["PORT"] ?? "0"
            try "\(token),bench\n".write(toFile: directory + "/tokens.csv", atomically: true, encoding: .utf8)
            try secret.write(toFile: directory + "/secret", atomically: true, encoding: .utf8)
        }

        func source(_ name: String) throws -> Source {
            let source = try Source(fixture: self, prefix: "cvb-\(name)-\(randomSuffix())")
            prefixes.append(source.prefix)
            return source
        }

        func start(source: Source, arguments: [String], name: String? = nil) throws -> Controller {
            let controller = try Controller(fixture: self, source: source, arguments: arguments, name: name ?? source.prefix)
            controllers.append(controller)
            return controller
        }

        func cleanUp() {
            for controller in controllers { controller.stop() }
            server.stop()
            for prefix in prefixes {
                let ids =
                    (try? Subprocess.run(["docker", "ps", "-aq", "--filter", "label=converge.dev/managed-by=\(prefix)"]))?.stdout
                    .split(separator: "\n").map(String.init) ?? []
                for batch in stride(from: 0, to: ids.count, by: 25) {
                    _ = try? Subprocess.run(["docker", "rm", "-f"] + ids[batch..<min(batch + 25, ids.count)])
                }
            }
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// A repository the controller watches, as `prefix` (also its instance).
    struct Source {
        let fixture: Fixture
        let prefix: String
        var work: String { fixture.directory + "/" + prefix }
        var url: String { "http://127.0.0.1:\(fixture.port)/\(prefix).git" }

        init(fixture: Fixture, prefix: String) throws {
            self.fixture = fixture
            self.prefix = prefix
            try Subprocess.check(["git", "init", "-q", "--bare", "-b", "main", fixture.directory + "/served/\(prefix).git"])
            try Subprocess.check(["git", "init", "-q", "-b", "main", fixture.directory + "/" + prefix])
        }

        func container(_ name: String, color: String) -> String {
            """
            apiVersion: converge.dev/v1alpha1
            kind: Container
            metadata: {name: \(prefix)-\(name)}
            spec: {image: "converge-lab/busybox:1", command: [sleep, "2147483647"], env: {COLOR: \(color)}}
            """
        }

        /// Replaces the tree with `files` (plus the DockerHost), commits and pushes.
        func push(_ files: [String: String]) throws {
            var files = files
            files["host.yaml"] =
                "apiVersion: converge.dev/v1alpha1\nkind: DockerHost\nmetadata: {name: local}\nspec: {endpoint: \"unix:///var/run/docker.sock\"}\n"
            try Subprocess.check(["git", "-C", work, "rm", "-rq", "--ignore-unmatch", "."])
            for (path, content) in files {
                let url = URL(fileURLWithPath: work + "/" + path)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try content.write(to: url, atomically: true, encoding: .utf8)
            }
            try Subprocess.check(["git", "-C", work, "add", "-A"])
            try Subprocess.check([
                "git", "-C", work, "-c", "user.name=bench", "-c", "user.email=bench@converge.invalid", "commit", "-qm", "change",
            ])
            try Subprocess.check(["git", "-C", work, "push", "-q", fixture.directory + "/served/\(prefix).git", "HEAD:refs/heads/main"])
        }
    }

    /// A `converge controller` process.
    final class Controller {
        enum Method: String { case get = "GET", post = "POST" }

        let process = Process()
        let port: Int
        let prefix: String

        init(fixture: Fixture, source: Source, arguments: [String], name: String) throws {
            port = Int.random(in: 20_000..<60_000)
            prefix = source.prefix
            process.executableURL = URL(fileURLWithPath: fixture.converge)
            var storeArguments = ["--state", fixture.directory + "/\(source.prefix).db"]
            if arguments.contains("--store") { storeArguments = [] }
            process.arguments =
                [
                    "controller", "--repo", source.url, "--instance", source.prefix, "--listen", "127.0.0.1:\(port)",
                    "--api-tokens-file", fixture.directory + "/tokens.csv", "--webhook-secret-file", fixture.directory + "/secret",
                    "--git-cache", fixture.directory + "/cache-\(name)",
                ] + storeArguments + arguments
            FileManager.default.createFile(atPath: fixture.directory + "/\(name).log", contents: nil)
            let log = FileHandle(forWritingAtPath: fixture.directory + "/\(name).log")
            process.standardOutput = log
            process.standardError = log
            try process.run()
            try ControllerBenchmark.waitUntil("the controller serves /healthz", timeout: 60) {
                (try? Subprocess.run(["curl", "-sf", "http://127.0.0.1:\(port)/healthz"]))?.succeeded == true
            }
        }

        @discardableResult
        func api(_ method: Method, _ path: String) throws -> String {
            try Subprocess.check([
                "curl", "-sf", "-X", method.rawValue, "-H", "Authorization: Bearer \(token)", "http://127.0.0.1:\(port)\(path)",
            ]).stdout
        }

        func webhook(ref: String) throws {
            let body = #"{"ref":"\#(ref)"}"#
            let digest = try Subprocess.check([
                "/bin/sh", "-c", "printf '%s' '\(body)' | openssl dgst -sha256 -hmac '\(secret)' | awk '{print $2}'",
            ])
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            try Subprocess.check([
                "curl", "-sf", "-X", "POST", "-H", "X-Converge-Signature: sha256=\(digest)", "-H",
                "X-Converge-Delivery: \(UUID().uuidString)",
                "--data-binary", body, "http://127.0.0.1:\(port)/api/v1/webhooks/generic",
            ])
        }

        func metricValue(_ series: String) throws -> Double? {
            let text = try Subprocess.check(["curl", "-sf", "http://127.0.0.1:\(port)/metrics"]).stdout
            return text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
        }

        /// Reconciles so far, whatever their result.
        func reconcileCount() throws -> Double {
            let text = try Subprocess.check(["curl", "-sf", "http://127.0.0.1:\(port)/metrics"]).stdout
            return text.split(separator: "\n").filter { $0.hasPrefix("converge_reconcile_total{") }
                .compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
        }

        /// User plus system CPU seconds of the process so far (/proc/PID/stat).
        func cpuSeconds() -> Double {
            guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
                let close = text.lastIndex(of: ")")
            else { return 0 }
            let fields = text[text.index(after: close)...].split(separator: " ")
            let ticks = (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
            return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
        }

        func rssMiB() -> Double {
            guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
                let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
            else { return 0 }
            return (Double(line.split(separator: " ").dropFirst().first ?? "") ?? 0) / 1024
        }

        func kill(_ signal: Int32) {
            Glibc.kill(process.processIdentifier, signal)
            process.waitUntilExit()
        }

        func stop() {
            guard process.isRunning else { return }
            kill(SIGTERM)
        }
    }
}
