import ConvergeHTTP
import ConvergeTestSupport
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// What a controller test needs around a `Lab`: the lab's Git repository served over smart
/// HTTP on loopback (`scripts/git-http-server.py`, git's own http-backend), API tokens, a
/// webhook secret, and `converge controller` processes started against it.
struct ControllerLab {
    static let webhookSecret = "controller-tests-webhook-secret-1"
    /// Users and their API tokens (test values, nothing like a real credential).
    static let tokens = ["alice": "test-token-alice", "bob": "test-token-bob"]

    let lab: Lab
    let work: GitRepository
    let served: URL
    let gitServer: BackgroundServer
    let repositoryURL: String
    private let started = Started()

    /// The controllers a test started, stopped before the lab is cleaned up (one left running
    /// would recreate what the cleanup removes).
    private final class Started: @unchecked Sendable {
        // @unchecked: guarded by `lock`.
        private let lock = NSLock()
        private var processes: [ControllerProcess] = []
        func add(_ process: ControllerProcess) { lock.withLock { processes.append(process) } }
        var all: [ControllerProcess] { lock.withLock { processes } }
    }

    /// Runs `body` with a lab and its repository served over HTTP; afterwards stops every
    /// controller it started, then the server.
    static func with(_ body: (ControllerLab) async throws -> Void) async throws {
        try await Lab.with { lab in
            let work = try await lab.gitRepository("work")
            let root = lab.directory.appendingPathComponent("served")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("scripts/git-http-server.py").path
            guard let server = try await BackgroundServer.start("/usr/bin/python3", [script, root.path], readyLine: "READY"),
                let port = server.values["PORT"]
            else { throw MissingComponent(name: "the Git HTTP server (scripts/git-http-server.py)") }
            defer { server.stop() }
            try "\(tokens.map { "\($0.value),\($0.key)" }.joined(separator: "\n"))\n".write(
                to: lab.directory.appendingPathComponent("tokens.csv"), atomically: true, encoding: .utf8)
            try webhookSecret.write(to: lab.directory.appendingPathComponent("webhook-secret"), atomically: true, encoding: .utf8)
            let served = root.appendingPathComponent("infra.git")
            try await run("/usr/bin/git", ["init", "-q", "--bare", "-b", "main", served.path])
            let controllerLab = ControllerLab(
                lab: lab, work: work, served: served, gitServer: server, repositoryURL: "http://127.0.0.1:\(port)/infra.git")
            var failure: (any Error)?
            do { try await body(controllerLab) } catch { failure = error }
            for controller in controllerLab.started.all { await controller.stop() }
            if let failure { throw failure }
        }
    }

    /// Commits `files` as the whole tree and pushes it to the served repository.
    @discardableResult
    func push(_ files: [String: String], message: String = "change") async throws -> String {
        let commit = try await work.commit(files, message: message)
        try await work.git("push", "-q", served.path, "HEAD:refs/heads/main")
        return commit
    }

    /// A DockerHost and one container `<prefix>-web` whose environment holds `color`.
    func webManifests(color: String, extra: String = "") -> [String: String] {
        Self.webManifests(prefix: lab.prefix, color: color, extra: extra)
    }

    static func webManifests(prefix: String, color: String, extra: String = "") -> [String: String] {
        [
            "host.yaml": """
            apiVersion: converge.dev/v1alpha1
            kind: DockerHost
            metadata: {name: local}
            spec: {endpoint: "unix:///var/run/docker.sock"}
            """,
            "web.yaml": """
            apiVersion: converge.dev/v1alpha1
            kind: Container
            metadata: {name: \(prefix)-web}
            spec:
              image: converge-lab/busybox:1
              command: [sleep, "2147483647"]
              env: {COLOR: \(color)}
            \(extra)
            """,
        ]
    }

    /// `count` containers `<prefix>-c<i>`, for runs with several steps.
    func containerManifests(count: Int) -> [String: String] {
        var files = webManifests(color: "blue")
        for index in 0..<count {
            files["c\(index).yaml"] = """
                apiVersion: converge.dev/v1alpha1
                kind: Container
                metadata: {name: \(lab.prefix)-c\(index)}
                spec: {image: "converge-lab/busybox:1", command: [sleep, "2147483647"]}
                """
        }
        return files
    }

    /// Starts `converge controller` on this lab's repository, as the lab's instance, and waits
    /// until it serves `/healthz`.
    func startController(
        _ arguments: [String] = [], store: [String]? = nil, environment: [String: String] = [:], name: String = "controller",
        withoutRepository: Bool = false, advertise: Bool = false
    ) async throws -> ControllerProcess {
        let port = try freeLoopbackPort()
        let log = lab.directory.appendingPathComponent("\(name).log")
        let process = try lab.spawn(
            [
                "controller"
            ] + (withoutRepository ? [] : ["--repo", repositoryURL, "--ref", "main", "--instance", lab.instance]) + [
                "--listen", "127.0.0.1:\(port)", "--api-tokens-file", lab.directory.appendingPathComponent("tokens.csv").path,
                "--webhook-secret-file", lab.directory.appendingPathComponent("webhook-secret").path,
                "--git-cache", lab.directory.appendingPathComponent("\(name)-git-cache").path,
            ] + (store ?? ["--state", lab.directory.appendingPathComponent("state.db").path])
                + (advertise ? ["--advertise-url", "http://127.0.0.1:\(port)"] : []) + arguments,
            log: log, environment: environment)
        let controller = try ControllerProcess(process: process, port: port, log: log)
        started.add(controller)
        do {
            try await eventually("\(name) serves /healthz", timeout: .seconds(30)) { try await controller.get("/healthz").status == 200 }
        } catch {
            controller.kill()
            throw error
        }
        return controller
    }
}

/// A running `converge controller`, its log, and an HTTP client for its server.
final class ControllerProcess: @unchecked Sendable {
    // @unchecked: `process` is only signalled and waited for.
    let process: Process
    let port: Int
    let log: URL
    private let client: HTTPTransport

    init(process: Process, port: Int, log: URL) throws {
        self.process = process
        self.port = port
        self.log = log
        client = try HTTPTransport(url: "http://127.0.0.1:\(port)")
    }

    struct Answer {
        var status: Int
        var body: String
        var json: Any? { try? JSONSerialization.jsonObject(with: Data(body.utf8), options: [.fragmentsAllowed]) }
    }

    func get(_ path: String, user: String? = nil) async throws -> Answer {
        try await request(.GET, path, user: user)
    }

    func request(
        _ method: HTTPMethod, _ path: String, user: String? = nil, token: String? = nil, headers: [(String, String)] = [],
        body: [UInt8]? = nil
    ) async throws -> Answer {
        var fields = HTTPHeaders(headers)
        if let token = token ?? user.flatMap({ ControllerLab.tokens[$0] }) { fields.add(name: "Authorization", value: "Bearer \(token)") }
        if body != nil { fields.add(name: "Content-Type", value: "application/json") }
        let response = try await client.execute(
            method, path, headers: fields, body: body.map { ByteBuffer(bytes: $0) }, timeout: .seconds(60))
        return Answer(status: Int(response.status.code), body: response.bodyString)
    }

    /// Delivers a webhook signed (or not) the way `forge` signs.
    func webhook(
        _ forge: String, payload: String, event: String = "push", delivery: String = UUID().uuidString,
        secret: String? = ControllerLab.webhookSecret
    ) async throws -> Answer {
        let body = Array(payload.utf8)
        var headers: [(String, String)] = []
        let signature = secret.map { hex(HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array($0.utf8)))) } ?? "00"
        switch forge {
        case "github":
            headers = [("X-GitHub-Event", event), ("X-GitHub-Delivery", delivery), ("X-Hub-Signature-256", "sha256=\(signature)")]
        case "gitea":
            headers = [("X-Gitea-Event", event), ("X-Gitea-Delivery", delivery), ("X-Gitea-Signature", signature)]
        case "gitlab":
            headers = [("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Event-UUID", delivery), ("X-Gitlab-Token", secret ?? "wrong")]
        default:
            headers = [("X-Converge-Delivery", delivery), ("X-Converge-Signature", "sha256=\(signature)")]
        }
        return try await request(.POST, "/api/v1/webhooks/\(forge)", headers: headers, body: body)
    }

    /// The source's status as the API shows it.
    func sourceStatus(_ name: String) async throws -> [String: Any] {
        try await get("/api/v1/sources/\(name)", user: "alice").json as? [String: Any] ?? [:]
    }

    /// The runs of `source`, newest first.
    func runs(_ source: String) async throws -> [[String: Any]] {
        try await get("/api/v1/runs?source=\(source)", user: "alice").json as? [[String: Any]] ?? []
    }

    func run(_ id: Int) async throws -> [String: Any] {
        try await get("/api/v1/runs/\(id)", user: "alice").json as? [String: Any] ?? [:]
    }

    /// The value of one series in `/metrics`, e.g. `converge_leader`.
    func metric(_ series: String) async throws -> Double? {
        let text = try await get("/metrics").body
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    func kill(_ signal: Int32 = SIGKILL) {
        Glibc.kill(process.processIdentifier, signal)
    }

    /// Waits for the process to end; its exit code (or the signal that ended it).
    func waitForExit(timeout: Duration = .seconds(60)) async throws -> Int32 {
        try await eventually("the controller exits", timeout: timeout) { !self.process.isRunning }
        return process.terminationStatus
    }

    /// SIGTERM, and SIGKILL if it has not exited 30 s later.
    func stop() async {
        if process.isRunning {
            kill(SIGTERM)
            if (try? await waitForExit(timeout: .seconds(30))) == nil { kill(SIGKILL) }
        }
        await client.shutdown()
    }
}

/// The test kube-apiserver's kubeconfig (scripts/kube-apiserver.sh --start exports it); a
/// recorded failure, never a skip, when it is missing.
func testKubeconfig() throws -> String {
    guard let kubeconfig = ProcessInfo.processInfo.environment["CONVERGE_TEST_KUBECONFIG"], !kubeconfig.isEmpty else {
        Issue.record(
            "CONVERGE_TEST_KUBECONFIG is not set: run `eval \"$(scripts/kube-apiserver.sh --start)\"` first (scripts/test.sh does)")
        throw MissingComponent(name: "kube-apiserver")
    }
    return kubeconfig
}

/// Polls `condition` every 200 ms until it holds, or fails the test after `timeout`.
func eventually(_ what: String, timeout: Duration, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if (try? await condition()) == true { return }
        try await Task.sleep(for: .milliseconds(200))
    }
    if try await condition() { return }
    Issue.record("timed out after \(timeout) waiting until \(what)")
    throw TimedOut(what: what)
}

struct TimedOut: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting until \(what)" }
}

private func hex(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

/// A TCP port on 127.0.0.1 nobody listens on right now.
func freeLoopbackPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) } }
    guard bound == 0 else { throw MissingComponent(name: "a free loopback port") }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}
