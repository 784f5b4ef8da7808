import ConvergeCore
import ConvergeDocker
import ConvergeStore
import ConvergeStorePostgres
import ConvergeTestSupport
import ConvergeWorkflow
import Dispatch
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

// Shared by `journal` and `resume`: a 1,000-step plan of no-op steps, a provider that does
// nothing, and throwaway stores (ConvergeTestSupport's, made and removed from synchronous code).

/// 1,000 `Network`s (no subnet) on one `DockerHost`: a plan of 1,000 independent create steps.
enum NoopWorkload {
    static let stepCount = 1_000
    static let host = ResourceID(kind: DockerHostSpec.kind, name: "local")
    static let source = SourceRevision(repository: "memory", commit: String(repeating: "0", count: 40))

    static func files(count: Int = stepCount) -> [SourceFile] {
        var files = [SourceFile(path: "manifests/host.yaml", bytes: Array(ManifestGenerator.host.utf8))]
        for index in 0..<count {
            let name = "jnet-" + String(repeating: "0", count: max(0, 4 - String(index).count)) + String(index)
            let yaml = """
                apiVersion: converge.dev/v1alpha1
                kind: Network
                metadata:
                  name: \(name)
                spec:
                  internal: true

                """
            files.append(SourceFile(path: "manifests/networks/\(name).yaml", bytes: Array(yaml.utf8)))
        }
        return files
    }

    /// Plans `files` against a no-op provider (nothing observed: every Network is a create)
    /// and checks the plan is what the benchmarks assume.
    static func plan(_ files: [SourceFile], instance: String, provider: NoopProvider) async throws -> Reconciler.PlannedChange {
        let set = try ManifestSet.load(files, registry: benchKinds)
        let planned = try await Reconciler(providers: [host: provider], instance: instance).plan(set, source: source)
        let steps = planned.plan.steps
        guard steps.count == files.count - 1, steps.allSatisfy({ $0.action == .create && $0.dependsOn.isEmpty }) else {
            throw Subprocess.Failure(
                description: "expected \(files.count - 1) independent create steps, the plan has \(steps.count): \(planned.plan.summary)")
        }
        return planned
    }
}

/// Counts `execute` calls and notes when the first one came (monotonic clock).
final class ExecutionProbe: @unchecked Sendable {
    // @unchecked: every field is guarded by `lock`.
    private let lock = NSLock()
    private var count = 0
    private var first: Double?

    func executed() {
        let now = Clock.now()
        lock.withLock {
            count += 1
            if first == nil { first = now }
        }
    }

    var executions: Int { lock.withLock { count } }
    var firstExecution: Double? { lock.withLock { first } }
}

/// A provider that observes nothing and does nothing: what is left of a step is the engine's
/// own work (and, in a workflow, the journal's).
struct NoopProvider: Provider {
    var probe = ExecutionProbe()

    var managedKinds: Set<String> { [NetworkSpec.kind] }

    func observe(desired: [Resource], in set: ManifestSet, instance: String) async throws -> [ObservedResource] { [] }

    func execute(
        _ step: PlanStep, change: ResourceChange, desired: Resource?, observed: ObservedResource?, in set: ManifestSet, instance: String
    ) async throws {
        probe.executed()
    }

    func snapshot(_ step: PlanStep, observed: ObservedResource?, in set: ManifestSet, instance: String) async throws -> String? { nil }

    func compensate(_ step: PlanStep, snapshot: String?, instance: String) async throws {}
}

/// Runs async work from the benchmarks' synchronous code: the calling thread waits (it is
/// never one of the cooperative pool's) while a task does the work.
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try box.result!.get()
}

/// `blocking`'s hand-over: written by the task, read by the waiting thread after the semaphore.
private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}

/// The URL of the PostgreSQL server the journal benchmarks create their databases on:
/// `--postgres-url`, else `CONVERGE_TEST_POSTGRES_URL` (what `scripts/postgres.sh` exports).
func benchPostgresURL(_ option: String?) -> String? {
    if let option, !option.isEmpty { return option }
    return ThrowawayDatabase.environmentPostgresURL
}

/// The benchmarks' throwaway journals: a SQLite file in a new temporary folder, or a new
/// database `converge_bench_<random>` on the PostgreSQL server, removed by `destroy()` (also
/// run on SIGINT/SIGTERM).
extension ThrowawayDatabase {
    static func forBenchmark(_ backend: StoreBackend, postgresURL: String?) throws -> ThrowawayDatabase {
        let database = try blocking { try await make(backend, postgresURL: postgresURL, prefix: "converge_bench_") }
        Interruption.onInterrupt { database.destroy() }
        return database
    }

    /// Closes every store and deletes the file or database, waiting for it. Safe to call twice.
    func destroy() {
        do {
            try blocking { try await self.destroy() }
        } catch {
            log("WARNING: could not remove the benchmark database at \(location): \(error)")
        }
    }

    /// The same database in another process (the `resume` benchmark's crashing run).
    var environment: [String: String] {
        switch backend {
        case .sqlite: return ["CONVERGE_BENCH_STORE": "sqlite", "CONVERGE_BENCH_SQLITE_PATH": sqlitePath ?? ""]
        case .postgres: return ["CONVERGE_BENCH_STORE": "postgres", "CONVERGE_BENCH_POSTGRES_DATABASE": postgres?.database ?? ""]
        }
    }

    /// The database `environment` names, in the process it was given to.
    static func fromEnvironment(postgresURL: String?) throws -> ThrowawayDatabase {
        let environment = ProcessInfo.processInfo.environment
        switch environment["CONVERGE_BENCH_STORE"] {
        case "sqlite":
            return existing(sqlitePath: environment["CONVERGE_BENCH_SQLITE_PATH"] ?? "")
        case "postgres":
            guard let postgresURL, let name = environment["CONVERGE_BENCH_POSTGRES_DATABASE"] else {
                throw Subprocess.Failure(description: "no PostgreSQL URL or database in the environment")
            }
            var configuration = try PostgresStoreConfiguration(url: postgresURL)
            configuration.database = name
            return existing(postgres: configuration)
        default:
            throw Subprocess.Failure(description: "CONVERGE_BENCH_STORE is not set")
        }
    }
}

/// Clean-ups to run when SIGINT or SIGTERM arrives, before exiting as the signal would.
enum Interruption {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var actions: [@Sendable () -> Void] = []
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []
    nonisolated(unsafe) private static var interrupted = false

    /// For the main flow before it exits: once a signal arrived, the handler is cleaning up and
    /// will exit itself; returning now would cut its clean-up short.
    static func waitForCleanUpIfInterrupted() {
        guard lock.withLock({ interrupted }) else { return }
        while true { pause() }
    }

    static func onInterrupt(_ action: @escaping @Sendable () -> Void) {
        lock.withLock {
            actions.append(action)
            guard sources.isEmpty else { return }
            sources = [SIGINT, SIGTERM].map { number in
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler {
                    lock.withLock { interrupted = true }
                    log("interrupted, cleaning up")
                    Subprocess.interrupt()
                    for action in lock.withLock({ actions }).reversed() { action() }
                    exit(128 + number)
                }
                source.resume()
                return source
            }
        }
    }
}
