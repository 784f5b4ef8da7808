import ConvergeCore
import ConvergeStore
import ConvergeTestSupport
import ConvergeWorkflow
import Foundation

/// `journal`: what the durable workflow costs per step. The same 1,000-step plan of no-op
/// steps runs through `WorkflowEngine.start` (journaled in the store) and through
/// `PlanExecutor.run` calling the provider directly (no journal); the difference divided by
/// 1,000 is the journal's overhead per step. SQLite (a temporary file) and PostgreSQL (a fresh
/// database on `CONVERGE_TEST_POSTGRES_URL`), at parallelism 1 (the target) and 8.
enum JournalBenchmark {
    static let name = "journal"
    static let parallelisms = [1, 8]

    static func run(runs: Int, stores: [StoreBackend], postgresURL: String?) throws -> [Row] {
        let files = NoopWorkload.files()
        let steps = NoopWorkload.stepCount
        var rows: [Row] = []
        for backend in stores {
            let target = backend == .sqlite ? (text: "< 2 ms", bound: 0.002) : (text: "< 5 ms", bound: 0.005)
            let database: ThrowawayDatabase
            do {
                database = try ThrowawayDatabase.forBenchmark(backend, postgresURL: postgresURL)
            } catch {
                log("journal: \(backend.title) skipped: \(error)")
                rows.append(Row(name, "\(backend.title) p=1: journal overhead per step", samples: [], note: "not measured: \(error)"))
                continue
            }
            defer { database.destroy() }
            log("journal: \(backend.title) at \(database.location)")
            let store = try blocking { try await database.openMigrated() }

            for parallelism in parallelisms {
                var baseline: [Double] = [], workflow: [Double] = [], overhead: [Double] = [], firstStep: [Double] = []
                // One untimed round first: connections, statement caches and the allocator warm up.
                for run in 0...runs {
                    let instance = "bench-\(randomSuffix())"
                    let provider = NoopProvider()
                    let planned = try blocking { try await NoopWorkload.plan(files, instance: instance, provider: provider) }
                    let reconciler = Reconciler(providers: [NoopWorkload.host: provider], instance: instance)

                    let base = try blocking {
                        let started = Clock.now()
                        try await PlanExecutor(parallelism: parallelism).run(planned.plan) { step in
                            try await reconciler.execute(step, in: planned)
                        }
                        return Clock.now() - started
                    }

                    let journaled = NoopProvider()
                    let engine = WorkflowEngine(
                        store: store, registry: benchKinds, instance: instance, version: "bench", parallelism: parallelism,
                        makeProviders: { _ in [NoopWorkload.host: journaled] })
                    let (record, started, total) = try blocking {
                        let started = Clock.now()
                        let record = try await engine.start(planned, manifests: files, options: WorkflowOptions())
                        return (record, started, Clock.now() - started)
                    }
                    guard record.status == .succeeded, journaled.probe.executions == steps, provider.probe.executions == steps else {
                        throw Subprocess.Failure(
                            description:
                                "run \(record.id) ended \(record.status.rawValue) after \(journaled.probe.executions) steps: \(record.error ?? "")"
                        )
                    }
                    let journalRows = try blocking { try await store.steps(run: record.id) }
                    guard journalRows.count == steps, journalRows.allSatisfy({ $0.status == .succeeded && $0.attempts == 1 }) else {
                        throw Subprocess.Failure(
                            description: "run \(record.id): the journal holds \(journalRows.count) rows, not \(steps) succeeded steps")
                    }
                    let label = run == 0 ? "warm-up" : "run \(run)/\(runs)"
                    log(
                        "journal: \(backend.title) p=\(parallelism) \(label): no journal \(Table.format(base, .seconds)), workflow \(Table.format(total, .seconds)), overhead \(Table.format((total - base) / Double(steps), .seconds))/step"
                    )
                    guard run > 0 else { continue }
                    baseline.append(base)
                    workflow.append(total)
                    overhead.append((total - base) / Double(steps))
                    firstStep.append((journaled.probe.firstExecution ?? .nan) - started)
                }
                let serial = parallelism == 1
                rows.append(Row(name, "\(backend.title) p=\(parallelism): PlanExecutor, no journal (baseline)", samples: baseline))
                rows.append(
                    Row(
                        name, "\(backend.title) p=\(parallelism): WorkflowEngine.start, journaled", samples: workflow,
                        note: serial ? "includes the run's fixed costs (see 'start → first step'), spread over the 1,000 steps" : nil))
                if serial {
                    rows.append(
                        Row(
                            name, "\(backend.title) p=1: start → first step executes", samples: firstStep,
                            note: "runs lookup, createRun with plan + 1,001 manifests, 1,001 leases, journal read, updateRun"))
                }
                rows.append(
                    Row(
                        name, "\(backend.title) p=\(parallelism): journal overhead per step", samples: overhead,
                        target: serial ? target.text : nil, bound: serial ? target.bound : nil,
                        note: "(workflow − baseline) / \(steps), per run pair" + (serial ? "" : "; the target is for serial steps (p=1)")))
            }
            try blocking { await database.close(store) }
        }
        rows.append(
            Row(
                name, "peak RSS (getrusage ru_maxrss)", samples: [peakRSSMiB()], unit: .mebibytes,
                note:
                    "whole child: \(steps) no-op steps (\(steps) Networks + 1 DockerHost, YAML in memory), \(runs) timed round\(runs == 1 ? "" : "s") + 1 warm-up per store and parallelism"
            ))
        return rows
    }
}
