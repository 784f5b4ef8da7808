import ConvergeStore
import ConvergeStorePostgres
import ConvergeTestSupport
import Foundation
import Testing

/// A lab whose runs are journaled in a PostgreSQL database of its own, with a signing key and
/// `converge worker` processes to claim the steps: the workers' tests drive them as a user does.
struct WorkerLab {
    let lab: Lab
    let database: ThrowawayDatabase
    /// The database's URL (the test server trusts loopback: no password).
    let url: String
    let keys: URL
    private let started = Started()

    final class Started: @unchecked Sendable {
        private let lock = NSLock()
        private var processes: [WorkerProcess] = []
        func add(_ process: WorkerProcess) { lock.withLock { processes.append(process) } }
        var all: [WorkerProcess] { lock.withLock { processes } }
    }

    /// Runs `body` with a new lab and database; kills every worker it started and removes what
    /// the lab made, whether `body` failed or not.
    static func with(_ body: (WorkerLab) async throws -> Void) async throws {
        try await Lab.with { lab in try await with(in: lab, body) }
    }

    /// The same in an existing lab (a controller's).
    static func with(in lab: Lab, _ body: (WorkerLab) async throws -> Void) async throws {
        guard let server = ThrowawayDatabase.environmentPostgresURL else {
            Issue.record("CONVERGE_TEST_POSTGRES_URL is not set: run `eval \"$(scripts/postgres.sh)\"` first (scripts/test.sh does)")
            throw MissingComponent(name: "PostgreSQL")
        }
        try await ThrowawayDatabase.with(.postgres, postgresURL: server) { database in
            let keys = lab.directory.appendingPathComponent("keys")
            let generated = try await lab.converge(["keys", "generate", "--out", keys.path])
            try #require(generated.exitCode == 0, "\(generated.stderr)")
            let workers = WorkerLab(lab: lab, database: database, url: database.postgres!.redactedURL, keys: keys)
            defer { for worker in workers.started.all { worker.kill() } }
            try await body(workers)
        }
    }

    var signingKey: String { keys.appendingPathComponent("signing.key").path }
    var publicKey: String { keys.appendingPathComponent("signing.pub").path }

    /// `converge reconcile ARGS` on the lab's database, its steps queued for workers.
    func reconcile(_ arguments: [String], environment: [String: String] = [:]) async throws -> CommandResult {
        try await lab.reconcile(arguments + ["--store", url, "--workers", "--signing-key", signingKey], environment: environment)
    }

    /// Starts `converge worker` (its log in the lab's folder) and waits until the store lists it.
    @discardableResult
    func startWorker(
        _ id: String, pool: String = "default", concurrency: Int = 2, lease: String = "15s", environment: [String: String] = [:]
    ) async throws -> WorkerProcess {
        let log = lab.directory.appendingPathComponent("\(id).log")
        let process = try lab.spawn(
            [
                "worker", "--store", url, "--pool", pool, "--concurrency", String(concurrency), "--key-file", publicKey, "--id", id,
                "--lease", lease,
            ], log: log, environment: environment)
        let worker = WorkerProcess(process: process, id: id, log: log)
        started.add(worker)
        try await eventually("worker \(id) registers", timeout: .seconds(30)) {
            try await withQueue { try await $0.workers() }.contains { $0.registration.id == id && $0.stoppedAt == nil }
        }
        return worker
    }

    /// Runs `body` with a store on the lab's database, as the tests' own view of the queue.
    func withQueue<T: Sendable>(_ body: (PostgresWorkflowStore) async throws -> T) async throws -> T {
        try await PostgresWorkflowStore.withStore(url: url) { store in try await body(store) }
    }

    /// The jobs of run `id`, in the order they were queued.
    func jobs(run id: Int64) async throws -> [StepJobRecord] {
        try await withQueue { try await $0.jobs(run: id) }
    }
}

/// A running `converge worker`.
final class WorkerProcess: @unchecked Sendable {
    // @unchecked: `process` is only signalled and waited for.
    let process: Process
    let id: String
    let log: URL

    init(process: Process, id: String, log: URL) {
        self.process = process
        self.id = id
        self.log = log
    }

    var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// `kill -9`: no clean-up, its claims stay until their lease runs out.
    func kill() {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
