import ConvergeCore
import ConvergeStore
import ConvergeTestSupport
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `rollout`: blue-green rollouts of a 2-replica service (busybox httpd) through Converge's
/// HAProxy entry point, under a steady client load of 200 requests/s (one new connection each):
/// - the switch: from the switch step's start (journal) to the first request answered by the
///   new version after which every one was; and the runtime-API command itself;
/// - failed requests over each whole rollout (deploy to the old version's removal);
/// - the same switch done by DNAT instead: an nftables `dnat` rule in a router container (the
///   lab's router image) replaced atomically with `nft -f` through `docker exec`, as a Router
///   manifest would do it, under the same load: the alternative the README compares.
///
/// Everything it makes carries a unique `cvb-ro-<random>` prefix and is removed at the end.
enum RolloutBenchmark {
    static let name = "rollout"
    static let requestsPerSecond = 200

    static func run(rounds: Int, converge: String?, packagePath: String) throws -> [Row] {
        let converge = try converge ?? DockerBenchmark.buildConverge(packagePath: packagePath)
        let lab = try Lab()
        defer { lab.cleanUp() }
        return try lab.rollouts(converge, rounds: max(rounds, 3)) + lab.dnat(rounds: max(rounds, 3))
    }

    struct Lab {
        let prefix = "cvb-ro-\(randomSuffix())"
        let directory: String
        let subnet = "10.\(150 + Int.random(in: 0..<50)).\(Int.random(in: 0..<250)).0/24"

        init() throws {
            directory = try makeTemporaryDirectory(prefix: "cvb-ro-")
        }

        var network: String { "\(prefix)-app" }
        var service: String { "\(prefix)-web" }

        func manifests(version: String) -> String {
            localDockerNetwork(network, subnet: subnet) + """

                ---
                apiVersion: converge.dev/v1alpha1
                kind: Rollout
                metadata: {name: \(service)}
                spec:
                  image: converge-lab/busybox:1
                  command: [sh, -c, 'echo "$VERSION" > /www/index.html && exec httpd -f -p 8080 -h /www']
                  env: {VERSION: \(version)}
                  replicas: 2
                  port: 8080
                  networks: [\(network)]
                  entryPoint: {port: 80}
                  readiness: {path: /, timeout: 30s}
                  drainDelay: 1s
                """
        }

        func reconcile(_ converge: String, version: String) throws {
            try manifests(version: version).write(toFile: directory + "/repo/set.yaml", atomically: true, encoding: .utf8)
            let result = try Subprocess.run(
                [converge, "reconcile", "repo", "--instance", prefix, "--color", "never"], directory: directory)
            guard result.exitCode == 0 else {
                throw Subprocess.Failure(description: "converge reconcile failed: \(result.stderr)")
            }
        }

        func rollouts(_ converge: String, rounds: Int) throws -> [Row] {
            try FileManager.default.createDirectory(atPath: directory + "/repo", withIntermediateDirectories: true)
            try reconcile(converge, version: "v0")
            let entry = try containerAddress("\(service)-entry")
            let store = try SQLiteWorkflowStore(path: directory + "/.converge/state.db")
            var switchTimes: [Double] = [], commandTimes: [Double] = [], failed: [Double] = [], sent: [Double] = []
            for round in 1...rounds {
                let load = HTTPLoad(address: entry, port: 80, perSecond: requestsPerSecond)
                load.start()
                Thread.sleep(forTimeInterval: 0.3)
                try reconcile(converge, version: "v\(round)")
                Thread.sleep(forTimeInterval: 0.3)
                let answers = load.stop()
                let runID = try blocking { try await store.runs(RunFilter(instance: prefix)).map(\.id).max() ?? 0 }
                let run = try blocking { try await store.run(runID) }
                let plan = try JSONDecoder().decode(Plan.self, from: Data((run?.planJSON ?? "").utf8))
                let switchIndex = plan.steps.firstIndex { $0.phase == "switch" } ?? -1
                let step = try blocking { try await store.steps(run: runID).first { $0.index == switchIndex } }
                guard let started = step?.startedAt?.timeIntervalSince1970 else {
                    throw Subprocess.Failure(description: "run \(runID) has no switch step")
                }
                let newVersion = "v\(round)"
                let lastOther = answers.lastIndex { $0.body != newVersion }
                let firstSteady = lastOther.map { $0 + 1 } ?? 0
                if firstSteady < answers.count { switchTimes.append(max(0, answers[firstSteady].at - started)) }
                if let text = step?.report, let range = text.range(of: "switched in ") {
                    commandTimes.append((Double(text[range.upperBound...].prefix { $0.isNumber || $0 == "." }) ?? 0) / 1000)
                }
                failed.append(Double(answers.filter { $0.body == nil }.count))
                sent.append(Double(answers.count))
                log(
                    "rollout: round \(round): \(answers.count) requests, \(Int(failed.last ?? 0)) failed; new version steady \(Table.format(switchTimes.last ?? 0, .seconds)) after the switch step began"
                )
            }
            return [
                Row(
                    name, "switch: step start → every new request on the new version", samples: switchTimes, target: "< 100 ms", bound: 0.1,
                    note: "client at \(requestsPerSecond) req/s, so ±5 ms"),
                Row(name, "switch: the runtime API command (set map)", samples: commandTimes),
                Row(
                    name, "failed requests over a whole rollout at \(requestsPerSecond) req/s", samples: failed, unit: .count, target: "0",
                    bound: 0, note: "requests per rollout: \(Int(Stats.median(sent)))"),
            ]
        }

        // MARK: DNAT

        /// The same switch done by DNAT in a router container: two backends (v1, v2), clients
        /// sent to the router, `nft -f` replacing the dnat rule in one transaction.
        func dnat(rounds: Int) throws -> [Row] {
            let router = "\(prefix)-router"
            try docker([
                "run", "-d", "--name", router, "--network", network, "--cap-add", "NET_ADMIN", "--sysctl", "net.ipv4.ip_forward=1",
                "converge-lab/router:1",
            ])
            for version in ["v1", "v2"] {
                try docker([
                    "run", "-d", "--name", "\(prefix)-dnat-\(version)", "--network", network, "converge-lab/busybox:1", "sh", "-c",
                    "echo \(version) > /www/index.html && exec httpd -f -p 8080 -h /www",
                ])
            }
            let routerAddress = try containerAddress(router)
            let backends = try ["v1", "v2"].map { try containerAddress("\(prefix)-dnat-\($0)") }
            func ruleset(_ backend: String) -> String {
                """
                flush ruleset
                table ip entry {
                    chain prerouting { type nat hook prerouting priority dstnat; tcp dport 80 dnat to \(backend):8080; }
                    chain postrouting { type nat hook postrouting priority srcnat; ip daddr \(backend) masquerade; }
                }
                """
            }
            try nft(router, ruleset(backends[0]))
            var switchTimes: [Double] = [], commandTimes: [Double] = [], failed: [Double] = []
            for round in 1...rounds {
                let (to, target) = round % 2 == 1 ? ("v2", backends[1]) : ("v1", backends[0])
                let load = HTTPLoad(address: routerAddress, port: 80, perSecond: requestsPerSecond)
                load.start()
                Thread.sleep(forTimeInterval: 0.3)
                let started = Date().timeIntervalSince1970
                let (_, took) = try Clock.time { try nft(router, ruleset(target)) }
                Thread.sleep(forTimeInterval: 0.5)
                let answers = load.stop()
                let lastOther = answers.lastIndex { $0.body != to }
                if let first = lastOther.map({ $0 + 1 }), first < answers.count { switchTimes.append(max(0, answers[first].at - started)) }
                commandTimes.append(took)
                failed.append(Double(answers.filter { $0.body == nil }.count))
            }
            return [
                Row(name, "DNAT switch: nft -f start → every new request on the new backend", samples: switchTimes),
                Row(name, "DNAT switch: docker exec nft -f", samples: commandTimes),
                Row(name, "DNAT: failed requests around a switch at \(requestsPerSecond) req/s", samples: failed, unit: .count),
            ]
        }

        func nft(_ container: String, _ ruleset: String) throws {
            let result = try Subprocess.run(["docker", "exec", container, "sh", "-c", "printf '%s' \"$0\" | nft -f -", ruleset])
            guard result.exitCode == 0 else { throw Subprocess.Failure(description: "nft -f in \(container): \(result.stderr)") }
        }

        func docker(_ arguments: [String]) throws {
            let result = try Subprocess.run(["docker"] + arguments)
            guard result.exitCode == 0 else { throw Subprocess.Failure(description: "docker \(arguments.first ?? ""): \(result.stderr)") }
        }

        func containerAddress(_ container: String) throws -> String {
            let result = try Subprocess.run([
                "docker", "inspect", "--format", "{{(index .NetworkSettings.Networks \"\(network)\").IPAddress}}", container,
            ])
            let address = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            guard result.exitCode == 0, !address.isEmpty else { throw Subprocess.Failure(description: "no address for \(container)") }
            return address
        }

        func cleanUp() {
            let listed = (try? Subprocess.run(["docker", "ps", "-aq", "--filter", "name=\(prefix)"]))?.stdout ?? ""
            let labelled =
                (try? Subprocess.run(["docker", "ps", "-aq", "--filter", "label=converge.dev/managed-by=\(prefix)"]))?.stdout ?? ""
            let ids = (listed + "\n" + labelled).split(separator: "\n").map(String.init)
            if !ids.isEmpty { _ = try? Subprocess.run(["docker", "rm", "-f"] + ids) }
            _ = try? Subprocess.run(["docker", "network", "rm", network])
            try? FileManager.default.removeItem(atPath: directory)
            try? FileManager.default.removeItem(atPath: "/run/converge/entrypoints/\(prefix)")
        }
    }
}

/// A client on a thread of its own sending `GET /` (HTTP/1.0, a new connection each) at a
/// steady rate and recording every answer's body, or nil for a failed request.
final class HTTPLoad: Sendable {
    struct Answer: Sendable {
        /// When the request started, in seconds since 1970.
        var at: Double
        var body: String?
    }

    let address: String
    let port: Int
    let perSecond: Int
    private let state = Mutex<(answers: [Answer], stopped: Bool)>(([], false))
    private let finished = DispatchSemaphore(value: 0)

    init(address: String, port: Int, perSecond: Int) {
        self.address = address
        self.port = port
        self.perSecond = perSecond
    }

    func start() {
        Thread.detachNewThread { [self] in
            let interval = 1.0 / Double(perSecond)
            var next = Clock.now()
            while !state.withLock({ $0.stopped }) {
                let at = Date().timeIntervalSince1970
                let body = request()
                state.withLock { $0.answers.append(Answer(at: at, body: body)) }
                next += interval
                let wait = next - Clock.now()
                if wait > 0 { usleep(useconds_t(wait * 1e6)) }
            }
            finished.signal()
        }
    }

    func stop() -> [Answer] {
        state.withLock { $0.stopped = true }
        finished.wait()
        return state.withLock { $0.answers }
    }

    /// One request; the body without its trailing newline, or nil when it failed.
    private func request() -> String? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var limit = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, address, &target.sin_addr)
        let connected = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let request = Array("GET / HTTP/1.0\r\nHost: bench\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(descriptor, $0.baseAddress, $0.count, 0) }) == request.count else { return nil }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 { break }
            guard count > 0 else { return nil }
            response += chunk[..<count]
        }
        let text = String(decoding: response, as: UTF8.self)
        guard text.hasPrefix("HTTP/1.") && text.dropFirst(9).hasPrefix("200"), let range = text.range(of: "\r\n\r\n") else { return nil }
        return text[range.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
