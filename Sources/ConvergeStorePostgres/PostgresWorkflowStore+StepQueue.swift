import ConvergeStore
import Foundation
import PostgresNIO

/// The work queue on PostgreSQL: claims with `FOR UPDATE SKIP LOCKED` (no two workers get one
/// job, none waits for another's lock), leases judged by the server's clock, fencing by the
/// job's `attempt`, and `NOTIFY` on `converge_step_jobs` to wake idle workers and the waiting
/// run at once (polling stays the source of truth: a notification may be missed).
extension PostgresWorkflowStore: StepQueue {
    public func registerWorker(_ worker: WorkerRegistration) async throws {
        try await withConnection("register worker \(worker.id)") { connection in
            try await connection.query(
                """
                INSERT INTO workers (\(unescaped: WorkflowSchema.workerColumns))
                VALUES (\(worker.id), \(worker.pool), \(worker.version), \(Int64(worker.planFormat)), \(worker.host),
                        \(Int64(worker.concurrency)), \(unescaped: Self.nowMS), \(unescaped: Self.nowMS), NULL)
                ON CONFLICT (id) DO UPDATE SET
                    pool = EXCLUDED.pool, version = EXCLUDED.version, plan_format = EXCLUDED.plan_format, host = EXCLUDED.host,
                    concurrency = EXCLUDED.concurrency, started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at,
                    stopped_at = NULL
                """, logger: self.logger)
        }
    }

    public func heartbeat(worker: String, lease: Duration) async throws -> Int {
        try await transaction("heartbeat of worker \(worker)") { connection in
            try await connection.query(
                "UPDATE workers SET heartbeat_at = \(unescaped: Self.nowMS) WHERE id = \(worker)", logger: self.logger)
            let rows = try await connection.query(
                """
                UPDATE step_jobs SET leased_until = \(unescaped: Self.nowMS) + \(lease.storeMilliseconds)
                WHERE worker = \(worker) AND status = 'claimed' AND leased_until >= \(unescaped: Self.nowMS)
                RETURNING id
                """, logger: self.logger)
            var held = 0
            for try await _ in rows { held += 1 }
            return held
        }
    }

    public func deregisterWorker(_ id: String) async throws {
        try await transaction("deregister worker \(id)") { connection in
            try await connection.query(
                "UPDATE workers SET stopped_at = \(unescaped: Self.nowMS) WHERE id = \(id)", logger: self.logger)
            // What it still held goes back to the queue now rather than when its lease runs out.
            try await connection.query(
                """
                UPDATE step_jobs SET status = 'queued', leased_until = NULL WHERE worker = \(id) AND status = 'claimed'
                """, logger: self.logger)
        }
    }

    public func workers() async throws -> [WorkerRecord] {
        try await withConnection("list workers") { connection in
            try await connection.query(
                """
                SELECT \(unescaped: WorkflowSchema.workerColumns.split(separator: ",").map { "w." + $0.trimmingCharacters(in: .whitespaces) }
                    .joined(separator: ", ")),
                       (SELECT count(*) FROM step_jobs j
                        WHERE j.worker = w.id AND j.status = 'claimed' AND j.leased_until >= \(unescaped: Self.nowMS)) AS in_flight
                FROM workers w ORDER BY w.heartbeat_at DESC, w.id
                """, logger: self.logger
            ).records(as: WorkerRecord.self)
        }
    }

    public func enqueue(_ job: NewStepJob) async throws -> StepJobRecord {
        try await withConnection("queue step \(job.stepIndex) of run \(job.runID)") { connection in
            // One statement: the insert, and the pool's wake-up (sent at its commit) when it took.
            let rows = try await connection.query(
                """
                WITH queued AS (
                    INSERT INTO step_jobs (run_id, step_index, kind, pool, plan_format, envelope, status, snapshot, enqueued_at)
                    VALUES (\(job.runID), \(Int64(job.stepIndex)), \(job.kind.rawValue), \(job.pool), \(Int64(job.planFormat)),
                            \(job.envelope), 'queued', \(job.snapshot), \(unescaped: Self.nowMS))
                    ON CONFLICT (run_id, step_index, kind) DO NOTHING
                    RETURNING \(unescaped: WorkflowSchema.stepJobColumns))
                SELECT queued.*, pg_notify(\(StepQueueChannel.name), \(StepQueueChannel.queued(pool: job.pool))) FROM queued
                """, logger: self.logger)
            if let created = try await rows.records(as: StepJobRecord.self).first { return created }
            // Queued before (the queueing run was resumed): that job is this one.
            let existing = try await connection.query(
                """
                SELECT \(unescaped: WorkflowSchema.stepJobColumns) FROM step_jobs
                WHERE run_id = \(job.runID) AND step_index = \(Int64(job.stepIndex)) AND kind = \(job.kind.rawValue)
                """, logger: self.logger)
            guard let record = try await existing.records(as: StepJobRecord.self).first else {
                throw StoreError.database(operation: "queue step \(job.stepIndex) of run \(job.runID)", message: "the job vanished")
            }
            return record
        }
    }

    public func claim(
        pool: String, worker: String, version: String, planFormat: Int, limit: Int, lease: Duration
    ) async throws -> [StepJobRecord] {
        try await withConnection("claim jobs of pool \(pool)") { connection in
            try await connection.query(
                """
                UPDATE step_jobs SET status = 'claimed', attempt = attempt + 1, worker = \(worker), worker_version = \(version),
                       claimed_at = \(unescaped: Self.nowMS), leased_until = \(unescaped: Self.nowMS) + \(lease.storeMilliseconds)
                WHERE id IN (
                    SELECT id FROM step_jobs
                    WHERE pool = \(pool) AND plan_format <= \(Int64(planFormat))
                      AND (status = 'queued' OR (status = 'claimed' AND leased_until < \(unescaped: Self.nowMS)))
                    ORDER BY id LIMIT \(Int64(limit)) FOR UPDATE SKIP LOCKED)
                RETURNING \(unescaped: WorkflowSchema.stepJobColumns)
                """, logger: self.logger
            ).records(as: StepJobRecord.self).sorted { $0.id < $1.id }
        }
    }

    public func recordJobSnapshot(job: Int64, attempt: Int, snapshot: String?) async throws {
        try await withConnection("record the snapshot of job \(job)") { connection in
            let rows = try await connection.query(
                """
                UPDATE step_jobs SET snapshot = \(snapshot)
                WHERE id = \(job) AND attempt = \(Int64(attempt)) AND status = 'claimed' RETURNING id
                """, logger: self.logger)
            var updated = false
            for try await _ in rows { updated = true }
            if !updated { throw StoreError.staleClaim(job: job, attempt: attempt) }
        }
    }

    /// Reports past this many characters are written in chunks of this size (`job_outputs`).
    static let reportChunkCharacters = 16_384

    public func complete(job: Int64, attempt: Int, outcome: StepJobOutcome) async throws {
        let chunks = outcome.report.map(Self.chunks) ?? []
        try await transaction("record the outcome of job \(job)") { connection in
            let status: StepJobStatus = outcome.succeeded ? .succeeded : .failed
            // The fenced update, and the notification of the waiting run (sent at commit) only
            // when it took. A long report goes to `job_outputs` in bounded chunks instead.
            let inline = chunks.count > 1 ? nil : outcome.report
            let rows = try await connection.query(
                """
                WITH done AS (
                    UPDATE step_jobs SET status = \(status.rawValue), report = \(inline), error = \(outcome.error),
                           finished_at = \(unescaped: Self.nowMS), leased_until = NULL
                    WHERE id = \(job) AND attempt = \(Int64(attempt)) AND status = 'claimed' RETURNING id)
                SELECT pg_notify(\(StepQueueChannel.name), \(StepQueueChannel.donePrefix) || id) FROM done
                """, logger: self.logger)
            var updated = false
            for try await _ in rows { updated = true }
            if !updated { throw StoreError.staleClaim(job: job, attempt: attempt) }
            guard chunks.count > 1 else { return }
            for (seq, chunk) in chunks.enumerated() {
                try await connection.query(
                    "INSERT INTO job_outputs (job_id, attempt, seq, chunk) VALUES (\(job), \(Int64(attempt)), \(Int64(seq)), \(chunk))",
                    logger: self.logger)
            }
        }
    }

    static func chunks(_ text: String) -> [String] {
        var chunks: [String] = []
        var start = text.startIndex
        while start < text.endIndex {
            let end = text.index(start, offsetBy: reportChunkCharacters, limitedBy: text.endIndex) ?? text.endIndex
            chunks.append(String(text[start..<end]))
            start = end
        }
        return chunks
    }

    /// `records` with the reports written in chunks put back together.
    private func withChunkedReports(_ records: [StepJobRecord], on connection: PostgresConnection) async throws -> [StepJobRecord] {
        var records = records
        for index in records.indices where records[index].report == nil && records[index].finishedAt != nil {
            let rows = try await connection.query(
                """
                SELECT chunk FROM job_outputs WHERE job_id = \(records[index].id) AND attempt = \(Int64(records[index].attempt))
                ORDER BY seq
                """, logger: self.logger)
            var chunks: [String] = []
            for try await row in rows { chunks.append(try row.decode(String.self)) }
            if !chunks.isEmpty { records[index].report = chunks.joined() }
        }
        return records
    }

    public func job(_ id: Int64) async throws -> StepJobRecord? {
        try await withConnection("read job \(id)") { connection in
            let records = try await connection.query(
                "SELECT \(unescaped: WorkflowSchema.stepJobColumns) FROM step_jobs WHERE id = \(id)", logger: self.logger
            ).records(as: StepJobRecord.self)
            return try await self.withChunkedReports(records, on: connection).first
        }
    }

    public func jobs(run id: Int64) async throws -> [StepJobRecord] {
        try await withConnection("read the jobs of run \(id)") { connection in
            let records = try await connection.query(
                "SELECT \(unescaped: WorkflowSchema.stepJobColumns) FROM step_jobs WHERE run_id = \(id) ORDER BY id", logger: self.logger
            ).records(as: StepJobRecord.self)
            return try await self.withChunkedReports(records, on: connection)
        }
    }

    public func useNonce(_ nonce: String, job: Int64) async throws -> Bool {
        try await withConnection("record the nonce of job \(job)") { connection in
            let rows = try await connection.query(
                """
                WITH inserted AS (
                    INSERT INTO job_nonces (nonce, job_id, used_at) VALUES (\(nonce), \(job), \(unescaped: Self.nowMS))
                    ON CONFLICT (nonce) DO NOTHING RETURNING job_id)
                SELECT job_id FROM inserted UNION ALL SELECT job_id FROM job_nonces WHERE nonce = \(nonce) LIMIT 1
                """, logger: self.logger)
            var user: Int64?
            for try await row in rows { user = try row.decode(Int64.self) }
            return user == job
        }
    }

    public func withQueueNotifications<T: Sendable>(_ body: (AsyncStream<String>) async throws -> T) async throws -> T {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1024))
        return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
            group.addTask {
                defer { continuation.finish() }
                try await self.client.withConnection { connection in
                    try await connection.listen(on: StepQueueChannel.name) { notifications in
                        for try await notification in notifications { continuation.yield(notification.payload) }
                    }
                }
            }
            defer { group.cancelAll() }
            return try await body(stream)
        }
    }
}
