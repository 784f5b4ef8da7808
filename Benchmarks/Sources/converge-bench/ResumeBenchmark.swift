import ConvergeCore
import ConvergeStore
import ConvergeTestSupport
import ConvergeWorkflow
import Foundation

/// `resume`: a 1,000-step run whose process died after its 999th step, resumed.
///
/// Each round makes the journal the honest way: a separate process (`converge-bench
/// resume-prepare`) starts the 1,000 no-op steps with the real `WorkflowEngine` at parallelism 1
/// and is killed with SIGKILL by the fault hook it gives the engine, right after step 998 (the
/// 999th) is journaled as finished (what `CONVERGE_FAULT=kill-after-step:998` does in the CLI,
/// as the crash tests use it). The run
/// is left `running`, with 999 succeeded steps and its leases held by a dead process. Then a
/// store opened afresh (and migrated, as `converge runs resume` does) times
/// `WorkflowEngine.resume(id)` from the call until the provider's `execute` is first invoked.
enum ResumeBenchmark {
    static let name = "resume"
    static let prepareCommand = "resume-prepare"
    static var killAfter: Int { NoopWorkload.stepCount - 2 }

    static func run(runs: Int, stores: [StoreBackend], postgresURL: String?) throws -> [Row] {
        let files = NoopWorkload.files()
        var rows: [Row] = []
        for backend in stores {
            let database: ThrowawayDatabase
            do {
                database = try ThrowawayDatabase.forBenchmark(backend, postgresURL: postgresURL)
            } catch {
                log("resume: \(backend.title) skipped: \(error)")
                rows.append(Row(name, "\(backend.title): resume → first new step", samples: [], note: "not measured: \(error)"))
                continue
            }
            defer { database.destroy() }
            log("resume: \(backend.title) at \(database.location)")

            var toFirst: [Double] = [], whole: [Double] = [], prepare: [Double] = []
            for run in 0...runs {
                let instance = "bench-\(randomSuffix())"
                var environment = database.environment
                environment["CONVERGE_BENCH_INSTANCE"] = instance
                if let postgresURL { environment["CONVERGE_TEST_POSTGRES_URL"] = postgresURL }
                let crashed = try Subprocess.run(
                    [Subprocess.selfPath, prepareCommand, "--child"], environment: environment, inheritStderr: true)
                guard crashed.signal == SIGKILL else {
                    throw Subprocess.Failure(
                        description: "the crashing run should die of SIGKILL after step \(killAfter): \(crashed.summary)")
                }

                let measured = try blocking { () async throws -> (first: Double, whole: Double, id: Int64) in
                    let store = try await database.openMigrated()
                    let found = try await store.runs(RunFilter(instance: instance))
                    guard found.count == 1, let crashedRun = found.first, crashedRun.status == .running else {
                        throw Subprocess.Failure(
                            description: "expected one running run of \(instance), found \(found.map { "\($0.id) \($0.status.rawValue)" })")
                    }
                    let journal = try await store.steps(run: crashedRun.id)
                    guard journal.count == NoopWorkload.stepCount - 1, journal.allSatisfy({ $0.status == .succeeded }) else {
                        throw Subprocess.Failure(
                            description:
                                "run \(crashedRun.id): expected \(NoopWorkload.stepCount - 1) succeeded steps, the journal has \(journal.count)"
                        )
                    }
                    let provider = NoopProvider()
                    let engine = WorkflowEngine(
                        store: store, registry: benchKinds, instance: instance, version: "bench",
                        makeProviders: { _ in [NoopWorkload.host: provider] })
                    let started = Clock.now()
                    let record = try await engine.resume(crashedRun.id)
                    let ended = Clock.now()
                    guard record.status == .succeeded, provider.probe.executions == 1, let first = provider.probe.firstExecution else {
                        throw Subprocess.Failure(
                            description:
                                "resumed run \(record.id) ended \(record.status.rawValue) after \(provider.probe.executions) steps (expected 1): \(record.error ?? "")"
                        )
                    }
                    await database.close(store)
                    return (first - started, ended - started, crashedRun.id)
                }
                let label = run == 0 ? "warm-up" : "run \(run)/\(runs)"
                log(
                    "resume: \(backend.title) \(label): run \(measured.id) crashed after \(Table.format(crashed.seconds, .seconds)); resume → first new step \(Table.format(measured.first, .seconds)), whole resume \(Table.format(measured.whole, .seconds))"
                )
                guard run > 0 else { continue }
                toFirst.append(measured.first)
                whole.append(measured.whole)
                prepare.append(crashed.seconds)
            }
            rows.append(
                Row(
                    name, "\(backend.title): resume → first new step", samples: toFirst, target: "< 0.5 s", bound: 0.5,
                    note:
                        "1,000-step run, 999 steps finished, killed (SIGKILL) in another process; fresh store, migrated before the clock starts"
                ))
            rows.append(Row(name, "\(backend.title): whole resume call (1 step + finish)", samples: whole))
            rows.append(
                Row(
                    name, "\(backend.title): the crashing run (not timed above)", samples: prepare,
                    note: "separate process: load + plan + 999 journaled steps at p=1, then SIGKILL"))
        }
        rows.append(
            Row(
                name, "peak RSS (getrusage ru_maxrss)", samples: [peakRSSMiB()], unit: .mebibytes,
                note: "the resuming child only (the crashing runs are other processes)"))
        return rows
    }

    /// In the `resume-prepare` process: start the 1,000-step run and be killed by the fault
    /// hook after step `killAfter`. Returning at all is a failure.
    static func prepare(postgresURL: String?) throws -> Never {
        guard let instance = ProcessInfo.processInfo.environment["CONVERGE_BENCH_INSTANCE"] else {
            throw Subprocess.Failure(description: "resume-prepare is started by the resume benchmark (CONVERGE_BENCH_INSTANCE unset)")
        }
        let database = try ThrowawayDatabase.fromEnvironment(postgresURL: postgresURL)
        let record = try blocking {
            let store = try await database.openMigrated()
            let provider = NoopProvider()
            let files = NoopWorkload.files()
            let planned = try await NoopWorkload.plan(files, instance: instance, provider: provider)
            var engine = WorkflowEngine(
                store: store, registry: benchKinds, instance: instance, version: "bench", parallelism: 1,
                makeProviders: { _ in [NoopWorkload.host: provider] })
            engine.faults = { point, step in
                if point == .afterStep, step.index == killAfter { kill(getpid(), SIGKILL) }
            }
            return try await engine.start(planned, manifests: files, options: WorkflowOptions())
        }
        throw Subprocess.Failure(description: "run \(record.id) ended \(record.status.rawValue): the fault hook did not stop it")
    }
}
