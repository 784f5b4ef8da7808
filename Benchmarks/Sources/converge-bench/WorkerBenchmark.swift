import ConvergeStore
import ConvergeStorePostgres
import ConvergeTestSupport
import Foundation

/// `workers`: the PostgreSQL work queue the workers claim from, on a database of its own on the
/// benchmark server, each simulated worker with its own connection pool as a process would:
/// - claim throughput: 4 workers claiming (8 at a time) and completing 4,000 no-op jobs;
/// - pickup latency: 4 idle workers woken by `NOTIFY`, jobs queued one at a time, from the
///   queueing transaction's end to the claim's;
/// - takeover: a worker that claimed a job and died (no heartbeat) against one polling every
///   second with a 3 s lease: from the claim to the second worker's claim.
enum WorkerBenchmark {
    static let name = "workers"
    static let workers = 4
    static let jobs = 4_000
    static let lease = Duration.seconds(3)

    static func run(runs: Int, postgresURL: String?) throws -> [Row] {
        guard let server = benchPostgresURL(postgresURL) else {
            throw Subprocess.Failure(description: "workers needs PostgreSQL: --postgres-url, or eval \"$(scripts/postgres.sh)\"")
        }
        return try blocking {
            try await ThrowawayDatabase.with(.postgres, postgresURL: server, prefix: "converge_bench_") { database in
                let configuration = database.postgres!
                return try await PostgresWorkflowStore.withStore(configuration: configuration) { store in
                    try await store.migrate()
                    let run = try await store.createRun(
                        NewRun(
                            instance: "bench", repository: "bench", commit: nil, planDigest: "sha256:bench", planJSON: "{}",
                            status: .running,
                            executor: "bench", convergeVersion: "bench"))
                    var rows: [Row] = []
                    rows += try await throughput(store, configuration: configuration, run: run.id, runs: runs)
                    rows += try await pickupLatency(store, configuration: configuration, run: run.id)
                    rows += try await takeover(store, configuration: configuration, run: run.id, runs: runs)
                    return rows
                }
            }
        }
    }

    static func job(_ run: Int64, step: Int, pool: String) -> NewStepJob {
        NewStepJob(runID: run, stepIndex: step, kind: .execute, pool: pool, planFormat: 1, envelope: "{}", snapshot: nil)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func throughput(_ store: PostgresWorkflowStore, configuration: PostgresStoreConfiguration, run: Int64, runs: Int) async throws
        -> [Row]
    {
        var enqueueRates: [Double] = [], claimRates: [Double] = []
        for round in 0..<max(1, min(runs, 3)) {
            let pool = "throughput-\(round)"
            let clock = ContinuousClock()
            let queued = clock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<workers {
                    group.addTask {
                        for step in stride(from: worker, to: jobs, by: workers) {
                            _ = try await store.enqueue(job(run, step: step + round * jobs, pool: pool))
                        }
                    }
                }
                try await group.waitForAll()
            }
            enqueueRates.append(Double(jobs) / seconds(clock.now - queued))
            let started = clock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<workers {
                    group.addTask {
                        try await PostgresWorkflowStore.withStore(configuration: configuration) { own in
                            while true {
                                let claimed = try await own.claim(
                                    pool: pool, worker: "w\(worker)", version: "bench", planFormat: 1, limit: 8, lease: .seconds(15))
                                if claimed.isEmpty { return }
                                try await withThrowingTaskGroup(of: Void.self) { completions in
                                    for job in claimed {
                                        completions.addTask {
                                            try await own.complete(
                                                job: job.id, attempt: job.attempt, outcome: StepJobOutcome(succeeded: true))
                                        }
                                    }
                                    try await completions.waitForAll()
                                }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            claimRates.append(Double(jobs) / seconds(clock.now - started))
        }
        return [
            Row(
                name, "queue \(jobs) jobs, \(workers) writers", samples: enqueueRates, unit: .count,
                note: "jobs/s; one INSERT and NOTIFY each"),
            Row(
                name, "claim and complete a no-op job, \(workers) workers", samples: claimRates.map { 1 / $0 },
                target: "<= 0.5 ms (2,000 jobs/s)",
                bound: 0.0005,
                note:
                    "time per job; \(claimRates.map { String(Int($0)) }.joined(separator: ", ")) jobs/s; claims of 8 (SKIP LOCKED), one fenced completion each"
            ),
        ]
    }

    static func pickupLatency(_ store: PostgresWorkflowStore, configuration: PostgresStoreConfiguration, run: Int64) async throws -> [Row] {
        let pool = "latency"
        let samples = 200
        let recorder = LatencyRecorder()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<workers {
                group.addTask {
                    try await PostgresWorkflowStore.withStore(configuration: configuration) { own in
                        try await own.withQueueNotifications { notifications in
                            for await payload in notifications where payload == StepQueueChannel.queued(pool: pool) {
                                let claimed = try await own.claim(
                                    pool: pool, worker: "l\(worker)", version: "bench", planFormat: 1, limit: 1, lease: .seconds(15))
                                for job in claimed {
                                    await recorder.claimed(job.id)
                                    try await own.complete(job: job.id, attempt: job.attempt, outcome: StepJobOutcome(succeeded: true))
                                }
                            }
                        }
                    }
                }
            }
            // The queueing side; once every job was claimed, the listeners are stopped.
            group.addTask {
                try await Task.sleep(for: .milliseconds(500))  // the listeners are in place
                for step in 0..<samples {
                    let job = try await store.enqueue(job(run, step: 100_000 + step, pool: pool))
                    await recorder.queued(job.id)
                    try await Task.sleep(for: .milliseconds(20))
                }
                let deadline = ContinuousClock.now + .seconds(30)
                while await recorder.count < samples, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            }
            try await group.next()
            group.cancelAll()
        }
        let latencies = await recorder.latencies.sorted()
        func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        return [
            Row(
                name, "pickup latency p50, idle workers", samples: [percentile(0.5)], target: "< 20 ms", bound: 0.020,
                note: "\(latencies.count) jobs queued 20 ms apart; queue commit to claim, woken by NOTIFY"),
            Row(name, "pickup latency p99, idle workers", samples: [percentile(0.99)], target: "< 100 ms", bound: 0.100),
        ]
    }

    static func takeover(_ store: PostgresWorkflowStore, configuration: PostgresStoreConfiguration, run: Int64, runs: Int) async throws
        -> [Row]
    {
        var samples: [Double] = []
        for round in 0..<max(1, min(runs, 3)) {
            let pool = "takeover-\(round)"
            _ = try await store.enqueue(job(run, step: 200_000 + round, pool: pool))
            let clock = ContinuousClock()
            // The worker that dies: it claims with a 3 s lease and never beats again.
            let dead = try await store.claim(pool: pool, worker: "dead", version: "bench", planFormat: 1, limit: 1, lease: lease)
            guard !dead.isEmpty else { throw Subprocess.Failure(description: "the first worker claimed nothing") }
            let died = clock.now
            // Its heir polls every second, as `converge worker` does when no notification comes.
            while true {
                let claimed = try await store.claim(
                    pool: pool, worker: "heir", version: "bench", planFormat: 1, limit: 1, lease: .seconds(15))
                if let job = claimed.first {
                    samples.append(seconds(clock.now - died))
                    try await store.complete(job: job.id, attempt: job.attempt, outcome: StepJobOutcome(succeeded: true))
                    break
                }
                try await Task.sleep(for: .seconds(1))
            }
        }
        return [
            Row(
                name, "takeover after kill -9, lease 3 s", samples: samples, target: "< lease + 2 s", bound: seconds(lease) + 2,
                note: "from the dead worker's claim to the heir's; the heir polls every second")
        ]
    }
}

/// When each job was queued and claimed, for the pickup latency. A claim may land before the
/// queueing call has returned: its latency is then counted as none.
actor LatencyRecorder {
    private var queuedAt: [Int64: ContinuousClock.Instant] = [:]
    private var claimedEarly: Set<Int64> = []
    private(set) var latencies: [Double] = []

    var count: Int { latencies.count }

    func queued(_ id: Int64) {
        if claimedEarly.remove(id) != nil {
            latencies.append(0)
        } else {
            queuedAt[id] = .now
        }
    }

    func claimed(_ id: Int64) {
        guard let queued = queuedAt.removeValue(forKey: id) else {
            claimedEarly.insert(id)
            return
        }
        latencies.append(WorkerBenchmark.seconds(.now - queued))
    }
}
