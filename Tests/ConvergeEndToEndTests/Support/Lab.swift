import ConvergeDocker
import ConvergeTestSupport
import Foundation
import Testing

/// The result of running the `converge` binary (or git, or any program).
typealias CommandResult = ProcessResult

/// Runs a program and collects its output; tests drive Converge the way a user does.
@discardableResult
func run(_ executable: String, _ arguments: [String], in directory: URL? = nil, environment: [String: String] = [:]) async throws
    -> CommandResult
{
    try await ProcessRunner.run([executable] + arguments, environment: environment, directory: directory?.path)
}

/// The `converge` binary built beside the test bundle.
let convergeBinary: String = {
    if let override = ProcessInfo.processInfo.environment["CONVERGE_BINARY"] { return override }
    let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [bundleDirectory, bundleDirectory.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("converge").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/debug/converge").path
}()

/// One test's private corner of the Docker engine: a unique name prefix, its own Converge
/// instance (so its objects are invisible to other tests), private subnets, a scratch
/// folder, and cleanup of everything labelled with its instance.
struct Lab {
    let prefix: String
    let engine = DockerEngine()
    let directory: URL
    /// Two /24 subnets no other test uses, as `10.A.B.` prefixes.
    let subnetA: String
    let subnetB: String

    var instance: String { prefix }

    init() throws {
        let random = UInt32.random(in: 0..<0xFFFFFF)
        prefix = "cvt-" + String(random, radix: 16)
        let second = 100 + Int(random % 150)
        let third = Int((random >> 8) % 127) * 2
        subnetA = "10.\(second).\(third)."
        subnetB = "10.\(second).\(third + 1)."
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(prefix)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// Runs `body`, then removes every container and network of this lab's instance and
    /// its scratch folder, whether `body` failed or not.
    static func with(_ body: (Lab) async throws -> Void) async throws {
        let lab = try Lab()
        var failure: (any Error)?
        do { try await body(lab) } catch { failure = error }
        try await lab.cleanUp()
        if let failure { throw failure }
    }

    func cleanUp() async throws {
        let filter = ["converge.dev/managed-by=\(instance)"]
        for container in try await engine.listContainers(all: true, labelFilters: filter) {
            try? await engine.removeContainer(container.id, force: true)
        }
        for container in try await engine.listContainers(all: true, nameFilters: [prefix]) {
            try? await engine.removeContainer(container.id, force: true)
        }
        for network in try await engine.listNetworks(labelFilters: filter) {
            try? await engine.removeNetwork(network.id)
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// `converge reconcile ARGS` as this lab's instance, in the lab's folder, without colour.
    @discardableResult
    func reconcile(_ arguments: String...) async throws -> CommandResult {
        try await reconcile(arguments)
    }

    @discardableResult
    func reconcile(_ arguments: [String], environment: [String: String] = [:]) async throws -> CommandResult {
        try await run(
            convergeBinary, ["reconcile"] + arguments + ["--instance", instance, "--color", "never"], in: directory,
            environment: environment)
    }

    /// Any other `converge` subcommand, in the lab's folder.
    @discardableResult
    func converge(_ arguments: [String]) async throws -> CommandResult {
        try await run(convergeBinary, arguments, in: directory)
    }

    /// Starts `converge ARGS` in the lab's folder as a long-running process (a controller, a
    /// worker), its output going to `log`; the caller stops it.
    func spawn(_ arguments: [String], log: URL, environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: convergeBinary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.currentDirectoryURL = directory
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Writes files (relative path → content) into a folder of the lab, creating it.
    func write(_ files: [String: String], into folder: String) throws {
        for (path, content) in files {
            let url = directory.appendingPathComponent(folder).appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(to: url, atomically: true, encoding: .utf8)
        }
    }

    /// A Git repository in the lab's folder, driven with the git CLI.
    func gitRepository(_ name: String = "repo") async throws -> GitRepository {
        let repo = GitRepository(directory: directory.appendingPathComponent(name))
        try FileManager.default.createDirectory(at: repo.directory, withIntermediateDirectories: true)
        try await repo.git("init", "-q", "-b", "main")
        return repo
    }

    /// Objects on the engine carrying this lab's ownership label.
    func managedContainers() async throws -> [ContainerSummary] {
        try await engine.listContainers(all: true, labelFilters: ["converge.dev/managed-by=\(instance)"])
    }

    func managedNetworks() async throws -> [NetworkSummary] {
        try await engine.listNetworks(labelFilters: ["converge.dev/managed-by=\(instance)"])
    }

    /// A manifest set like the S1 example, with this lab's names and subnets: a DockerHost,
    /// two networks, a client and an HTTP server.
    func labManifests(serverRestart: String = "unless-stopped", extra: String = "") -> [String: String] {
        [
            "host.yaml": """
            apiVersion: converge.dev/v1alpha1
            kind: DockerHost
            metadata: {name: local}
            spec: {endpoint: "unix:///var/run/docker.sock"}
            """,
            "networks.yaml": """
            apiVersion: converge.dev/v1alpha1
            kind: Network
            metadata: {name: \(prefix)-client-net}
            spec: {subnet: \(subnetA)0/24, internal: true}
            ---
            apiVersion: converge.dev/v1alpha1
            kind: Network
            metadata: {name: \(prefix)-server-net}
            spec: {subnet: \(subnetB)0/24, internal: true}
            """,
            "containers.yaml": """
            apiVersion: converge.dev/v1alpha1
            kind: Container
            metadata: {name: \(prefix)-client}
            spec:
              image: converge-lab/busybox:1
              command: [sleep, "2147483647"]
              networks: [{name: \(prefix)-client-net, ipv4: \(subnetA)10}]
            ---
            apiVersion: converge.dev/v1alpha1
            kind: Container
            metadata: {name: \(prefix)-server}
            spec:
              image: converge-lab/busybox:1
              command: [httpd, -f, -p, "80", -h, /www]
              networks: [{name: \(prefix)-server-net, ipv4: \(subnetB)10}]
              restartPolicy: \(serverRestart)
            \(extra)
            """,
        ]
    }
}

/// A Git repository made by a test.
struct GitRepository {
    let directory: URL

    @discardableResult
    func git(_ arguments: String...) async throws -> String {
        try await git(arguments)
    }

    @discardableResult
    func git(_ arguments: [String]) async throws -> String {
        let result = try await run(
            "/usr/bin/git", ["-c", "user.name=Converge Tests", "-c", "user.email=tests@converge.invalid"] + arguments, in: directory)
        guard result.exitCode == 0 else {
            throw GitCommandFailed(arguments: arguments, output: result.stderr)
        }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Replaces the whole tree with `files` and commits; returns the commit id.
    @discardableResult
    func commit(_ files: [String: String], message: String) async throws -> String {
        for item in try FileManager.default.contentsOfDirectory(atPath: directory.path) where item != ".git" {
            try FileManager.default.removeItem(at: directory.appendingPathComponent(item))
        }
        for (path, content) in files {
            let url = directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(to: url, atomically: true, encoding: .utf8)
        }
        try await git("add", "-A")
        try await git("commit", "-q", "--allow-empty", "-m", message)
        return try await git("rev-parse", "HEAD")
    }
}

struct GitCommandFailed: Error, CustomStringConvertible {
    var arguments: [String]
    var output: String
    var description: String { "git \(arguments.joined(separator: " ")) failed: \(output)" }
}
