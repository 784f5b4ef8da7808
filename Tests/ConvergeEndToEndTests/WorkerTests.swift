import ConvergeCore
import ConvergeDocker
import ConvergeRuntime
import ConvergeStore
import ConvergeStorePostgres
import ConvergeTestSupport
import ConvergeWorkers
import Foundation
import Testing

/// Workers running steps where their targets are: `converge worker` processes claiming from the
/// PostgreSQL queue, on the real Docker engine; the run's process only journals.
@Suite struct WorkerTests {
    /// A DockerHost (in `pool`, if given), a network and `count` containers on it.
    static func manifests(_ lab: Lab, containers count: Int, pool: String? = nil, extra: String = "") -> [String: String] {
        var documents = [
            localDockerNetwork("\(lab.prefix)-net", subnet: "\(lab.subnetA)0/24")
                .replacingOccurrences(
                    of: "spec: {endpoint: \"unix:///var/run/docker.sock\"}", with: "spec: {\(pool.map { "pool: \($0)" } ?? "")}")
        ]
        for index in 0..<count {
            documents.append(
                """
                apiVersion: converge.dev/v1alpha1
                kind: Container
                metadata: {name: \(lab.prefix)-c\(index)}
                spec:
                  image: converge-lab/busybox:1
                  command: [sleep, "2147483647"]
                  networks: [{name: \(lab.prefix)-net}]
                \(extra)
                """)
        }
        return ["set.yaml": documents.joined(separator: "\n---\n")]
    }

    /// The id in "Run 12 …" of a command's output.
    static func runID(_ result: CommandResult) -> Int64? {
        guard let range = result.stderr.range(of: #"Run (\d+)"#, options: .regularExpression) else { return nil }
        return Int64(result.stderr[range].dropFirst(4))
    }

    @Test func threeWorkersShareASixtyStepRunAndRunEachStepOnce() async throws {
        try await WorkerLab.with { workers in
            let lab = workers.lab
            for id in ["w1", "w2", "w3"] { try await workers.startWorker("\(lab.prefix)-\(id)", concurrency: 2) }
            try lab.write(Self.manifests(lab, containers: 59), into: "repo")
            let applied = try await workers.reconcile(["repo"])
            #expect(applied.exitCode == 0, "\(applied.stderr)")
            let run = try #require(Self.runID(applied))

            // Every step ran once: one job each, claimed once, and one container per manifest.
            let jobs = try await workers.jobs(run: run)
            #expect(jobs.count == 60)
            #expect(jobs.allSatisfy { $0.status == .succeeded && $0.attempt == 1 }, "\(jobs.map { ($0.stepIndex, $0.attempt) })")
            #expect(try await lab.managedContainers().count == 59)
            let steps = try await workers.withQueue { try await $0.steps(run: run) }
            #expect(Set(steps.compactMap(\.worker)) == Set(["w1", "w2", "w3"].map { "\(lab.prefix)-\($0)" }), "the three shared the run")
            #expect(steps.allSatisfy { $0.worker != nil }, "no step ran in the reconciling process")

            let shown = try await lab.converge(["runs", "show", String(run), "--store", workers.url])
            #expect(shown.stdout.contains("on worker \(lab.prefix)-w"), "\(shown.stdout)")
            let listed = try await lab.converge(["workers", "--store", workers.url])
            #expect(listed.stdout.contains("\(lab.prefix)-w1") && listed.stdout.contains("live"), "\(listed.stdout)")
        }
    }

    @Test func aKilledWorkersStepsAreTakenOverAfterItsLeaseAndItsLateWriteIsRefused() async throws {
        try await WorkerLab.with { workers in
            let lab = workers.lab
            // The first container gets healthy only after 4 s; the second waits for it (held by
            // the worker meanwhile).
            var files = Self.manifests(lab, containers: 0)
            files["apps.yaml"] = """
                apiVersion: converge.dev/v1alpha1
                kind: Container
                metadata: {name: \(lab.prefix)-db}
                spec:
                  image: converge-lab/busybox:1
                  command: [sh, -c, "sleep 4; touch /tmp/ready; exec sleep 2147483647"]
                  healthcheck: {test: [CMD, test, -f, /tmp/ready], interval: 1s, retries: 30}
                  networks: [{name: \(lab.prefix)-net}]
                ---
                apiVersion: converge.dev/v1alpha1
                kind: Container
                metadata: {name: \(lab.prefix)-app}
                spec:
                  image: converge-lab/busybox:1
                  command: [sleep, "2147483647"]
                  networks: [{name: \(lab.prefix)-net}]
                  dependsOn: [{name: \(lab.prefix)-db, condition: healthy, timeout: 60s}]
                """
            try lab.write(files, into: "repo")
            let doomed = try await workers.startWorker("\(lab.prefix)-doomed", concurrency: 4, lease: "3s")
            async let applying = workers.reconcile(["repo"])

            // Kill it while it holds the dependent's step (queued once the others succeeded).
            try await eventually("the doomed worker holds the app's step", timeout: .seconds(60)) {
                let runs = try await workers.withQueue { try await $0.runs(RunFilter(instance: lab.instance)) }
                guard let run = runs.first else { return false }
                let jobs = try await workers.jobs(run: run.id)
                return jobs.count == 3 && jobs[2].status == .claimed
            }
            doomed.kill()
            let killedAt = ContinuousClock.now
            try await workers.startWorker("\(lab.prefix)-heir", concurrency: 4)
            let applied = try await applying
            #expect(applied.exitCode == 0, "\(applied.stderr)")
            let run = try #require(Self.runID(applied))

            let jobs = try await workers.jobs(run: run)
            let taken = try #require(jobs.last)
            #expect(taken.attempt == 2 && taken.worker == "\(lab.prefix)-heir", "claimed again by the heir")
            #expect(ContinuousClock.now - killedAt < .seconds(60))
            #expect(try await lab.engine.listContainers(all: true, nameFilters: ["\(lab.prefix)-app"]).count == 1, "no duplicate")

            // The dead worker's outcome, written late with its claim, is refused.
            let late = await #expect(throws: StoreError.self) {
                try await workers.withQueue {
                    try await $0.complete(job: taken.id, attempt: 1, outcome: StepJobOutcome(succeeded: false, error: "late"))
                }
            }
            #expect(late?.code == .staleClaim)
            #expect(try await workers.jobs(run: run).first { $0.id == taken.id }?.status == .succeeded)
        }
    }

    @Test func aTamperedJobIsRefusedWithItsReasonAndTheRunRollsBack() async throws {
        try await WorkerLab.with { workers in
            let lab = workers.lab
            // A pool's steps wait in the queue for its workers: there is time to tamper.
            try lab.write(Self.manifests(lab, containers: 1, pool: "dmz"), into: "repo")

            // Its envelope edited in the store: the signature no longer matches.
            async let first = workers.reconcile(["repo"])
            let job = try await Self.firstJob(workers)
            try await workers.database.executeRaw(
                "UPDATE step_jobs SET envelope = replace(envelope, 'Network', 'Netw0rk') WHERE id = \(job.id)")
            try await workers.startWorker("\(lab.prefix)-w", pool: "dmz", concurrency: 2)
            let refused = try await first
            #expect(refused.exitCode == 1)
            #expect(
                refused.stderr.contains("refused by the worker: the envelope's signature does not match its content"), "\(refused.stderr)")
            #expect(try await lab.managedNetworks().isEmpty, "nothing ran")
            #expect(try await lab.managedContainers().isEmpty, "nothing ran")
            let run = try #require(Self.runID(refused))
            let steps = try await workers.withQueue { try await $0.steps(run: run) }
            #expect(steps.first?.error?.contains("signature does not match") == true, "the reason is on the step")
            #expect(try await workers.withQueue { try await $0.run(run) }?.status == .rolledBack)
        }
    }

    /// The first job of the first run after run `previous`, once it is queued.
    static func firstJob(_ workers: WorkerLab, after previous: Int64 = 0) async throws -> StepJobRecord {
        var found: StepJobRecord?
        try await eventually("a job of a run after run \(previous) is queued", timeout: .seconds(60)) {
            found = try await workers.withQueue { queue -> StepJobRecord? in
                let runs = try await queue.runs(RunFilter(instance: workers.lab.instance)).filter { $0.id > previous }
                guard let run = runs.min(by: { $0.id < $1.id }) else { return nil }
                return try await queue.jobs(run: run.id).first
            }
            return found != nil
        }
        return try #require(found)
    }

    @Test func envelopesThatExpiredWereReplayedOrWhoseFilesChangedAreRefused() async throws {
        try await WorkerLab.with { workers in
            let lab = workers.lab
            let key = try JobSigningKey(file: workers.signingKey)
            let queue = workers
            try lab.write(
                Self.manifests(lab, containers: 1, pool: "dmz", extra: "  files: [{path: conf/app.conf, target: /etc/app.conf}]"),
                into: "repo")
            try lab.write(["conf/app.conf": "mode = one\n"], into: "repo")

            // Expired: re-signed with a validity that ended an hour ago.
            async let expiring = workers.reconcile(["repo"])
            let job = try await Self.firstJob(workers)
            try await Self.resign(job, with: key, in: queue) { envelope in
                envelope.notBefore = Date().addingTimeInterval(-7200)
                envelope.expiresAt = Date().addingTimeInterval(-3600)
            }
            let worker = try await workers.startWorker("\(lab.prefix)-w", pool: "dmz", concurrency: 1)
            let expired = try await expiring
            #expect(expired.stderr.contains("refused by the worker: the envelope expired at"), "\(expired.stderr)")
            worker.kill()

            // Replayed: a valid envelope for the next run's job carrying a nonce another job used.
            async let replaying = workers.reconcile(["repo"])
            // (The expired envelope's nonce was never used: its compensation's was.)
            let compensation = try #require(
                try await workers.jobs(run: job.runID).last { $0.kind == .compensate && $0.status == .succeeded })
            let usedNonce = try Self.envelope(of: compensation).nonce
            let next = try await Self.firstJob(workers, after: job.runID)
            try await Self.resign(next, with: key, in: queue) { $0.nonce = usedNonce }
            let replayWorker = try await workers.startWorker("\(lab.prefix)-w2", pool: "dmz", concurrency: 1)
            let replayed = try await replaying
            #expect(replayed.stderr.contains("nonce was already used by another job"), "\(replayed.stderr)")
            replayWorker.kill()

            // A file of the run changed after its jobs were signed: the container's step is
            // refused; its compensation, which runs no file, still undoes the network.
            async let changing = workers.reconcile(["repo"])
            let third = try #require(
                try await workers.withQueue { try await $0.run(try await Self.firstJob(workers, after: next.runID).runID) })
            try await workers.database.executeRaw(
                "UPDATE runs SET manifests_json = replace(manifests_json, '\(Data("mode = one\n".utf8).base64EncodedString())', '\(Data("mode = evil\n".utf8).base64EncodedString())') WHERE id = \(third.id)"
            )
            try await workers.startWorker("\(lab.prefix)-w3", pool: "dmz", concurrency: 1)
            let changed = try await changing
            #expect(changed.exitCode == 1)
            #expect(changed.stderr.contains("conf/app.conf changed after the job was signed"), "\(changed.stderr)")
            #expect(try await workers.withQueue { try await $0.run(third.id) }?.status == .rolledBack)
            #expect(try await lab.managedNetworks().isEmpty)
            #expect(try await lab.managedContainers().isEmpty)
        }
    }

    static func envelope(of job: StepJobRecord) throws -> JobEnvelope {
        let signed = try JSONDecoder().decode(SignedEnvelope.self, from: Data(job.envelope.utf8))
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return try decoder.decode(JobEnvelope.self, from: Data(signed.payload.utf8))
    }

    /// Replaces `job`'s envelope by a validly signed one, changed by `change`.
    static func resign(_ job: StepJobRecord, with key: JobSigningKey, in workers: WorkerLab, _ change: (inout JobEnvelope) -> Void)
        async throws
    {
        var envelope = try envelope(of: job)
        change(&envelope)
        let json = try key.sign(envelope).json.replacingOccurrences(of: "'", with: "''")
        try await workers.database.executeRaw("UPDATE step_jobs SET envelope = '\(json)' WHERE id = \(job.id)")
    }

    @Test func aDMZTargetsStepsAreClaimedOnlyByItsPoolsWorkers() async throws {
        try await WorkerLab.with { workers in
            let lab = workers.lab
            try await workers.startWorker("\(lab.prefix)-office", pool: "office", concurrency: 4)
            try lab.write(Self.manifests(lab, containers: 2, pool: "dmz"), into: "repo")
            async let applying = workers.reconcile(["repo"])
            _ = try await Self.firstJob(workers)
            try await Task.sleep(for: .seconds(2))
            #expect(try await workers.withQueue { try await $0.job(1) }?.status == .queued, "the office worker leaves it")
            try await workers.startWorker("\(lab.prefix)-dmz", pool: "dmz", concurrency: 4)
            let applied = try await applying
            #expect(applied.exitCode == 0, "\(applied.stderr)")
            let run = try #require(Self.runID(applied))
            #expect(try await workers.jobs(run: run).allSatisfy { $0.worker == "\(lab.prefix)-dmz" && $0.pool == "dmz" })
        }
    }

    @Test func twoVersionsRunSideBySideAndAPinnedRunIsLeftToWorkersThatKnowItsPlanFormat() async throws {
        try await WorkerLab.with { workers in
            let lab = workers.lab
            // This build's `converge worker`, and beside it, in this process, the same worker code
            // registered as two other builds: a newer one that knows this plan format, and an
            // older one that only knows format 0 and so must never claim these runs.
            try await workers.startWorker("\(lab.prefix)-current", concurrency: 1)
            try await workers.withQueue { queue in
                let runtime = Runtime(plugins: [.docker], instance: lab.instance, version: "9.9.9")
                try await runtime.run { runtime in
                    func worker(_ id: String, version: String, planFormat: Int) throws -> Worker {
                        var worker = Worker(
                            queue: queue, engine: runtime.engine(store: queue, parallelism: 1),
                            registration: WorkerRegistration(
                                id: "\(lab.prefix)-\(id)", pool: "default", version: version, planFormat: planFormat, host: "test",
                                concurrency: 1),
                            keys: try JobVerificationKeys(files: [workers.publicKey]))
                        worker.pollInterval = .milliseconds(200)
                        return worker
                    }
                    let newer = try worker("newer", version: "0.2.0", planFormat: Plan.formatVersion)
                    let older = try worker("older", version: "0.0.9", planFormat: Plan.formatVersion - 1)
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { try await newer.run() }
                        group.addTask { try await older.run() }
                        try await eventually("the in-process workers register", timeout: .seconds(30)) {
                            try await queue.workers().filter { $0.registration.host == "test" && $0.stoppedAt == nil }.count == 2
                        }
                        try lab.write(Self.manifests(lab, containers: 11), into: "repo")
                        let applied = try await workers.reconcile(["repo"])
                        #expect(applied.exitCode == 0, "\(applied.stderr)")
                        let run = try #require(Self.runID(applied))

                        let steps = try await queue.steps(run: run)
                        #expect(
                            Set(steps.map(\.convergeVersion)) == ["0.1.0", "0.2.0"], "\(steps.map { ($0.worker, $0.convergeVersion) })")
                        #expect(!steps.contains { $0.worker == "\(lab.prefix)-older" }, "the older worker claims nothing of a format-1 run")
                        let shown = try await lab.converge(["runs", "show", String(run), "--store", workers.url])
                        #expect(shown.stdout.contains("on worker \(lab.prefix)-newer (Converge 0.2.0)"), "\(shown.stdout)")
                        #expect(shown.stdout.contains("on worker \(lab.prefix)-current (Converge 0.1.0)"), "\(shown.stdout)")
                        group.cancelAll()
                    }
                }
            }
        }
    }

    @Test func theWorkerRoleReadsAndWritesOnlyItsPoolsRows() async throws {
        try await WorkerLab.with { workers in
            let role = workers.lab.prefix.replacingOccurrences(of: "-", with: "_") + "_dmz"
            let (dmzRun, officeRun) = try await workers.withQueue { queue -> (Int64, Int64) in
                try await queue.migrate()
                func run(_ pool: String) async throws -> Int64 {
                    let run = try await queue.createRun(
                        NewRun(
                            instance: workers.lab.instance, repository: "repo", commit: nil, planDigest: "sha256:\(pool)", planJSON: "{}",
                            status: .running, executor: "test", convergeVersion: "test"))
                    _ = try await queue.enqueue(
                        NewStepJob(runID: run.id, stepIndex: 0, kind: .execute, pool: pool, planFormat: 1, envelope: "{}", snapshot: nil))
                    return run.id
                }
                return (try await run("dmz"), try await run("office"))
            }
            try await workers.database.executeRaw("CREATE ROLE \(role) LOGIN")
            do {
                try await workers.database.executeRaw("GRANT converge_worker TO \(role)")
                try await workers.database.executeRaw("INSERT INTO worker_pools (role_name, pool) VALUES ('\(role)', 'dmz')")
                var login = try #require(workers.database.postgres)
                login.username = role

                // Direct SQL as the worker's role: its pool's rows only, and no write elsewhere.
                #expect(try await ThrowawayDatabase.rows("SELECT pool FROM step_jobs", as: login) == ["dmz"])
                #expect(try await ThrowawayDatabase.rows("SELECT id::text FROM runs", as: login) == [String(dmzRun)])
                #expect(
                    try await ThrowawayDatabase.rows(
                        "UPDATE step_jobs SET status = 'failed' WHERE pool = 'office' RETURNING id::text", as: login
                    )
                    .isEmpty)
                await #expect(throws: TestSupportError.self) {
                    try await ThrowawayDatabase.rows("UPDATE step_jobs SET pool = 'office' RETURNING id::text", as: login)
                }
                do {
                    _ = try await ThrowawayDatabase.rows(
                        "UPDATE runs SET status = 'failed' WHERE id = \(officeRun) RETURNING id::text", as: login)
                    Issue.record("the worker role updated a run")
                } catch {
                    #expect("\(error)".contains("permission denied"), "\(error)")
                }

                // And through the store, as `converge worker --store postgres://ROLE@…` would.
                let claims = try await PostgresWorkflowStore.withStore(configuration: login) { store in
                    try await store.migrate()
                    let office = try await store.claim(
                        pool: "office", worker: "w", version: "t", planFormat: 1, limit: 5, lease: .seconds(15))
                    let dmz = try await store.claim(pool: "dmz", worker: "w", version: "t", planFormat: 1, limit: 5, lease: .seconds(15))
                    return (office.count, dmz.map(\.runID))
                }
                #expect(claims.0 == 0)
                #expect(claims.1 == [dmzRun])
            } catch {
                try? await workers.database.executeRaw("DROP ROLE \(role)")
                throw error
            }
            try await workers.database.executeRaw("DROP ROLE \(role)")
        }
    }

    @Test func aLongReportIsWrittenInBoundedChunksAndReadBackWhole() async throws {
        try await WorkerLab.with { workers in
            let report = String(repeating: "ok: [host-é-🚀] => changed\n", count: 4_000)
            let job = try await workers.withQueue { queue -> StepJobRecord in
                try await queue.migrate()
                let run = try await queue.createRun(
                    NewRun(
                        instance: workers.lab.instance, repository: "repo", commit: nil, planDigest: "sha256:log", planJSON: "{}",
                        status: .running, executor: "test", convergeVersion: "test"))
                _ = try await queue.enqueue(
                    NewStepJob(runID: run.id, stepIndex: 0, kind: .execute, pool: "logs", planFormat: 1, envelope: "{}", snapshot: nil))
                let claimed = try #require(
                    try await queue.claim(pool: "logs", worker: "w", version: "t", planFormat: 1, limit: 1, lease: .seconds(15)).first)
                try await queue.complete(
                    job: claimed.id, attempt: claimed.attempt, outcome: StepJobOutcome(succeeded: true, report: report))
                return try #require(try await queue.job(claimed.id))
            }
            #expect(job.report == report, "read back whole, multi-byte characters intact")
            let chunks = try await ThrowawayDatabase.rows(
                "SELECT length(chunk)::text FROM job_outputs WHERE job_id = \(job.id) ORDER BY seq",
                as: try #require(workers.database.postgres))
            #expect(chunks.count > 1)
            #expect(chunks.allSatisfy { Int($0 ?? "") ?? .max <= 16_384 }, "\(chunks)")
        }
    }
}
