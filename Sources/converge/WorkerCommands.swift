import ArgumentParser
import ConvergeCore
import ConvergeRuntime
import ConvergeStore
import ConvergeWorkers
import ConvergeWorkflow
import Foundation
import UnixSignals

/// `converge worker`: runs the steps of its pool's targets, claimed from the PostgreSQL queue.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run the steps of a pool's targets on this host, claimed from the PostgreSQL store's queue.",
        discussion: """
            A target manifest names its pool (`pool: dmz`); targets that name none are in the pool
            `default`. Every job is a signed envelope: the worker runs it only when it is signed by
            one of the --key-file keys, valid now, never replayed, and over the plan and files the
            run holds. SIGTERM or SIGINT stops claiming, puts back the jobs in flight and exits 0.
            """)

    @OptionGroup var storage: StoreOptions

    @Option(help: "The pool whose jobs this worker claims.")
    var pool: String = WorkerDispatcher.defaultPool

    @Option(help: "How many jobs it runs at once.")
    var concurrency: Int = 8

    @Option(help: "Public keys of the signers it trusts (converge keys generate writes them); repeat for several.")
    var keyFile: [String] = []

    @Option(help: "Its name in the store and on the steps it runs (default: host:pid).")
    var id: String?

    @Option(help: "How long its claims last without a heartbeat: 15s.")
    var lease: DurationArgument = DurationArgument(.seconds(15))

    func run() async throws {
        guard !keyFile.isEmpty else { throw ValidationError("give --key-file: the public key(s) of the signers to trust") }
        guard concurrency > 0 else { throw ValidationError("--concurrency must be at least 1") }
        let keys = try JobVerificationKeys(files: keyFile)
        try await Terminal.run { runtime in
            try await storage.with { store in
                guard let queue = store as? any StepQueue else {
                    throw ValidationError("workers claim from a PostgreSQL store: give --store postgres://… (or CONVERGE_STORE)")
                }
                let registration = WorkerRegistration(
                    id: id ?? WorkflowEngine.processOwner, pool: pool, version: ConvergeCommand.version, planFormat: Plan.formatVersion,
                    host: ProcessInfo.processInfo.hostName, concurrency: concurrency)
                var worker = Worker(
                    queue: queue, engine: runtime.engine(store: queue, parallelism: 1), registration: registration, keys: keys,
                    log: { Terminal.log("worker \(registration.id): \($0)") })
                worker.lease = lease.duration
                let configured = worker
                Terminal.log("worker \(registration.id) claims the jobs of pool \(pool), \(concurrency) at a time")
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await configured.run() }
                    group.addTask {
                        for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) { return }
                    }
                    try await group.next()
                    group.cancelAll()
                }
                Terminal.log("worker \(registration.id) stopped")
            }
        }
    }
}

/// `converge workers`: the workers the store knows.
struct WorkersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workers", abstract: "List the workers: pool, version, last heartbeat, steps in flight.")

    @OptionGroup var storage: StoreOptions

    func run() async throws {
        try await Terminal.run { _ in
            try await storage.with { store in
                guard let queue = store as? any StepQueue else {
                    throw ValidationError("workers use a PostgreSQL store: give --store postgres://… (or CONVERGE_STORE)")
                }
                let now = Date()
                let workers = try await queue.workers()
                guard !workers.isEmpty else { return Terminal.write("No workers.\n") }
                let rows = workers.map { worker -> [String] in
                    let age = Int(now.timeIntervalSince(worker.heartbeatAt))
                    let state = worker.stoppedAt != nil ? "stopped" : age < Int(WorkerDispatcher.liveWindow) ? "live" : "silent"
                    return [
                        worker.registration.id, worker.registration.pool, worker.registration.version, "\(age)s ago",
                        String(worker.inFlight),
                        state,
                    ]
                }
                Terminal.write(Terminal.table(["WORKER", "POOL", "VERSION", "HEARTBEAT", "IN FLIGHT", "STATE"], rows))
            }
        }
    }
}

/// `converge keys generate`: the key pair that signs jobs.
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Make the key pair that signs workers' jobs.", subcommands: [Generate.self])

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write signing.key (for the controller, mode 0600) and signing.pub (for workers) into a folder.")

        @Option(help: "The folder to write them to (created).")
        var out: String

        func run() async throws {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let key = JobSigningKey(key: .init())
            let privatePath = "\(out)/signing.key"
            guard
                FileManager.default.createFile(
                    atPath: privatePath, contents: Data((key.privateLine + "\n").utf8), attributes: [.posixPermissions: 0o600])
            else { throw ValidationError("cannot write \(privatePath)") }
            try (key.publicLine + "\n").write(toFile: "\(out)/signing.pub", atomically: true, encoding: .utf8)
            Terminal.write("wrote \(privatePath) and \(out)/signing.pub (key id \(key.keyID))\n")
        }
    }
}

/// `--workers` and `--signing-key`, for the commands that run plans (reconcile, controller).
struct WorkerDispatchOptions: ParsableArguments {
    @Flag(help: "Queue the steps of targets served by workers (converge worker) for them; needs a PostgreSQL store and --signing-key.")
    var workers = false

    @Option(help: "With --workers: the key that signs the jobs (converge keys generate writes it).")
    var signingKey: String?

    /// Runs `body` with the workers' dispatcher when `--workers` asks for one, with none otherwise.
    func withDispatcher<T: Sendable>(_ store: any WorkflowStore, _ body: ((any StepDispatcher)?) async throws -> T) async throws -> T {
        guard workers else { return try await body(nil) }
        guard let queue = store as? any StepQueue else {
            throw ValidationError("--workers queues steps in a PostgreSQL store: give --store postgres://… (or CONVERGE_STORE)")
        }
        guard let signingKey else { throw ValidationError("--workers needs --signing-key: the key that signs the jobs") }
        let key = try JobSigningKey(file: signingKey)
        return try await WorkerDispatcher.withDispatcher(queue: queue, signingKey: key) { try await body($0) }
    }
}
