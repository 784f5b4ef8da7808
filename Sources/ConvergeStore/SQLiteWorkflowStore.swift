import Csqlite3
import Dispatch
import Foundation

/// The embedded journal: one SQLite file (e.g. `.converge/state.db`), shareable by several
/// processes on the same machine.
///
/// Every call runs on a private serial queue, never on Swift's cooperative thread pool: SQLite
/// calls block (on the disk, or up to the busy timeout while another process writes), and
/// blocking the pool would stall unrelated tasks. Writes are `BEGIN IMMEDIATE` transactions, so
/// leases and claims are atomic across processes.
public final class SQLiteWorkflowStore: WorkflowStore, @unchecked Sendable {
    // @unchecked: the only mutable state is `connection`, used exclusively from `queue`.

    /// The database file.
    public let path: String
    private let queue: DispatchQueue
    private let connection: SQLiteConnection

    /// Opens (creating it and its parent folders if needed) the database at `path`. Call
    /// `migrate()` before anything else.
    ///
    /// - Parameter busyTimeout: how long a write waits for another process's transaction
    ///   before failing.
    public init(path: String, busyTimeout: Duration = .seconds(10)) throws {
        guard !path.isEmpty else {
            throw StoreError.invalidConfiguration("the SQLite store path is empty: pass a file such as .converge/state.db")
        }
        self.path = path
        if path != ":memory:" {
            let parent = URL(fileURLWithPath: path).deletingLastPathComponent()
            do {
                try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
            } catch {
                throw StoreError.invalidConfiguration(
                    "cannot create the folder \(parent.path) for the store \(path): \(error.localizedDescription)")
            }
        }
        let timeout = Int32(clamping: busyTimeout.storeMilliseconds)
        do {
            connection = try SQLiteConnection(path: path, busyTimeoutMilliseconds: timeout)
        } catch {
            throw StoreError.database(operation: "open \(path)", message: "\(error)")
        }
        queue = DispatchQueue(label: "converge.store.sqlite")
    }

    /// Closes the database. Later calls fail. (Dropping the last reference closes it too.)
    public func shutdown() async {
        _ = try? await onQueue("shutdown") { $0.close() }
    }

    /// Opens the store at `path`, runs `body` with it, and closes it when `body` returns or
    /// throws: the same shape as `PostgresWorkflowStore.withStore`. Call `migrate()` first
    /// inside `body`.
    public static func withStore<Result: Sendable>(
        path: String, busyTimeout: Duration = .seconds(10), _ body: (SQLiteWorkflowStore) async throws -> Result
    ) async throws -> Result {
        let store = try SQLiteWorkflowStore(path: path, busyTimeout: busyTimeout)
        do {
            let result = try await body(store)
            await store.shutdown()
            return result
        } catch {
            await store.shutdown()
            throw error
        }
    }

    /// Runs `body` on the store's queue and hands its result back to the calling task. SQLite
    /// errors become `StoreError.database` naming `operation`.
    private func onQueue<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        let connection = self.connection
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                do {
                    continuation.resume(returning: try body(connection))
                } catch let error as SQLiteError {
                    continuation.resume(throwing: StoreError.database(operation: operation, message: error.description))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    private static func nowMilliseconds() -> Int64 { Date().storeMilliseconds }

    // MARK: Schema

    public func migrate() async throws {
        let path = self.path
        try await onQueue("migrate \(path)") { db in
            try db.writeTransaction {
                try db.execute(WorkflowSchema.migrationsTable(.sqlite))
                let applied = Set(try db.query(WorkflowSchema.selectAppliedVersions) { try $0.int("version") })
                let statements = try WorkflowSchema.statementsToMigrate(
                    applied: applied, dialect: .sqlite, appliedAt: "\(Self.nowMilliseconds())", location: path)
                for statement in statements { try db.execute(statement) }
            }
        }
    }

    // MARK: Runs

    private static let selectRuns = "SELECT \(WorkflowSchema.runColumns) FROM runs"

    public func createRun(_ run: NewRun) async throws -> RunRecord {
        try await onQueue("create run") { db in
            let now = Self.nowMilliseconds()
            let id = try db.writeTransaction {
                try db.run(
                    """
                    INSERT INTO runs (instance, repository, commit_id, plan_digest, plan_json, status, executor, converge_version,
                                      options_json, manifests_json, error, created_at, updated_at, finished_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, NULL)
                    """,
                    [
                        .text(run.instance), .text(run.repository), .text(run.commit), .text(run.planDigest), .text(run.planJSON),
                        .text(run.status.rawValue), .text(run.executor), .text(run.convergeVersion), .text(run.optionsJSON),
                        .text(run.manifestsJSON), .int(now), .int(now),
                    ])
                return db.lastInsertRowID
            }
            let at = Date(storeMilliseconds: now)
            return RunRecord(
                id: id, instance: run.instance, repository: run.repository, commit: run.commit, planDigest: run.planDigest,
                planJSON: run.planJSON, status: run.status, executor: run.executor, convergeVersion: run.convergeVersion,
                optionsJSON: run.optionsJSON, manifestsJSON: run.manifestsJSON, error: nil, createdAt: at, updatedAt: at,
                finishedAt: nil)
        }
    }

    public func run(_ id: Int64) async throws -> RunRecord? {
        try await onQueue("read run \(id)") { db in
            try db.query("\(Self.selectRuns) WHERE id = ?", [.int(id)], as: RunRecord.self).first
        }
    }

    public func runs(_ filter: RunFilter) async throws -> [RunRecord] {
        if let statuses = filter.statuses, statuses.isEmpty { return [] }
        if filter.limit <= 0 { return [] }
        return try await onQueue("list runs") { db in
            var conditions: [String] = []
            var values: [SQLiteValue] = []
            if let instance = filter.instance {
                conditions.append("instance = ?")
                values.append(.text(instance))
            }
            if let statuses = filter.statuses {
                let sorted = statuses.map(\.rawValue).sorted()
                conditions.append("status IN (\(Array(repeating: "?", count: sorted.count).joined(separator: ", ")))")
                values += sorted.map(SQLiteValue.text)
            }
            let whereClause = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
            values.append(.int(Int64(filter.limit)))
            return try db.query("\(Self.selectRuns)\(whereClause) ORDER BY id DESC LIMIT ?", values, as: RunRecord.self)
        }
    }

    /// Sets status and error (nil clears it); `finished` stamps `finished_at`, otherwise it is
    /// cleared (a resumed run is not finished any more).
    public func updateRun(_ id: Int64, status: RunStatus, error: String?, finished: Bool) async throws {
        try await onQueue("update run \(id)") { db in
            let now = Self.nowMilliseconds()
            let changed = try db.writeTransaction {
                try db.run(
                    "UPDATE runs SET status = ?, error = ?, updated_at = ?, finished_at = ? WHERE id = ?",
                    [.text(status.rawValue), .text(error), .int(now), finished ? .int(now) : .null, .int(id)])
            }
            if changed == 0 { throw StoreError.runNotFound(id) }
        }
    }

    // MARK: Steps

    public func recordStep(_ step: StepRecord) async throws {
        try await onQueue("record step \(step.index) of run \(step.runID)") { db in
            do {
                _ = try db.writeTransaction {
                    try db.run(
                        """
                        INSERT INTO steps (\(WorkflowSchema.stepColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT (run_id, step_index) DO UPDATE SET
                            resource = excluded.resource, action = excluded.action, status = excluded.status,
                            attempts = excluded.attempts, started_at = excluded.started_at, finished_at = excluded.finished_at,
                            output = excluded.output, error = excluded.error, converge_version = excluded.converge_version,
                            report = excluded.report, worker = excluded.worker
                        """,
                        [
                            .int(step.runID), .int(Int64(step.index)), .text(step.resource), .text(step.action),
                            .text(step.status.rawValue), .int(Int64(step.attempts)), .date(step.startedAt), .date(step.finishedAt),
                            .text(step.output), .text(step.error), .text(step.convergeVersion), .text(step.report), .text(step.worker),
                        ])
                }
            } catch let error as SQLiteError where error.isForeignKeyViolation {
                throw StoreError.runNotFound(step.runID)
            }
        }
    }

    public func steps(run: Int64) async throws -> [StepRecord] {
        try await onQueue("read steps of run \(run)") { db in
            try db.query(
                "SELECT \(WorkflowSchema.stepColumns) FROM steps WHERE run_id = ? ORDER BY step_index", [.int(run)],
                as: StepRecord.self)
        }
    }

    // MARK: Approvals

    public func recordApproval(_ approval: ApprovalRecord) async throws {
        try await onQueue("record approval of run \(approval.runID)") { db in
            do {
                _ = try db.writeTransaction {
                    try db.run(
                        "INSERT INTO approvals (run_id, plan_digest, decision, approver, comment, at, via, step) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            .int(approval.runID), .text(approval.planDigest), .text(approval.decision.rawValue),
                            .text(approval.approver), .text(approval.comment), .date(approval.at), .text(approval.via),
                            approval.step.map { .int(Int64($0)) } ?? .null,
                        ])
                }
            } catch let error as SQLiteError where error.isForeignKeyViolation {
                throw StoreError.runNotFound(approval.runID)
            }
        }
    }

    public func recordProbeResults(run: Int64, _ results: [ProbeRecord]) async throws {
        try await onQueue("record probe results of run \(run)") { db in
            do {
                _ = try db.writeTransaction {
                    try db.run("DELETE FROM probe_results WHERE run_id = ?", [.int(run)])
                    for (position, result) in results.enumerated() {
                        try db.run(
                            "INSERT INTO probe_results (run_id, position, probe, summary, reachable, expected, detail, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            [
                                .int(run), .int(Int64(position)), .text(result.probe), .text(result.summary),
                                .int(result.reachable ? 1 : 0), .int(result.expected ? 1 : 0), .text(result.detail), .date(result.at),
                            ])
                    }
                }
            } catch let error as SQLiteError where error.isForeignKeyViolation {
                throw StoreError.runNotFound(run)
            }
        }
    }

    public func probeResults(run: Int64) async throws -> [ProbeRecord] {
        try await onQueue("read probe results of run \(run)") { db in
            try db.query(
                "SELECT \(WorkflowSchema.probeResultColumns) FROM probe_results WHERE run_id = ? ORDER BY position", [.int(run)],
                as: ProbeRecord.self)
        }
    }

    public func approvals(run: Int64) async throws -> [ApprovalRecord] {
        try await onQueue("read approvals of run \(run)") { db in
            try db.query(
                "SELECT \(WorkflowSchema.approvalColumns) FROM approvals WHERE run_id = ? ORDER BY id", [.int(run)],
                as: ApprovalRecord.self)
        }
    }

    // MARK: Schedule firings

    public func claimFiring(_ firing: FiringRecord) async throws -> Bool {
        try await onQueue("claim \(firing.schedule) at \(firing.dueAt)") { db in
            try db.writeTransaction {
                try db.run(
                    "INSERT INTO schedule_firings (\(WorkflowSchema.firingColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    Self.values(of: firing)) > 0
            }
        }
    }

    public func updateFiring(_ firing: FiringRecord) async throws {
        try await onQueue("update \(firing.schedule) at \(firing.dueAt)") { db in
            _ = try db.writeTransaction {
                try db.run(
                    "UPDATE schedule_firings SET status = ?, started_at = ?, finished_at = ?, run_id = ?, detail = ? "
                        + "WHERE instance = ? AND schedule = ? AND due_at = ?",
                    [
                        .text(firing.status.rawValue), .date(firing.startedAt), .date(firing.finishedAt), .int(firing.runID), .text(firing.detail),
                        .text(firing.instance), .text(firing.schedule), .date(firing.dueAt),
                    ])
            }
        }
    }

    public func firings(instance: String, schedule: String?, statuses: Set<FiringStatus>?, limit: Int) async throws -> [FiringRecord] {
        try await onQueue("read the firings of \(schedule ?? "every schedule")") { db in
            var sql = "SELECT \(WorkflowSchema.firingColumns) FROM schedule_firings WHERE instance = ?"
            var values: [SQLiteValue] = [.text(instance)]
            if let schedule {
                sql += " AND schedule = ?"
                values.append(.text(schedule))
            }
            if let statuses {
                sql += " AND status IN (\(statuses.map { _ in "?" }.joined(separator: ", ")))"
                values += statuses.map { .text($0.rawValue) }
            }
            sql += " ORDER BY due_at DESC, schedule LIMIT ?"
            values.append(.int(Int64(limit)))
            return try db.query(sql, values, as: FiringRecord.self)
        }
    }

    private static func values(of firing: FiringRecord) -> [SQLiteValue] {
        [
            .text(firing.instance), .text(firing.schedule), .date(firing.dueAt), .text(firing.status.rawValue), .text(firing.owner),
            .date(firing.claimedAt), .date(firing.startedAt), .date(firing.finishedAt), .int(firing.runID), .text(firing.detail),
        ]
    }

    // MARK: Provider records

    public func putRecord(instance: String, key: String, value: String) async throws {
        try await onQueue("record \(key) of instance \(instance)") { db in
            _ = try db.writeTransaction {
                try db.run(
                    "INSERT INTO provider_records (instance, key, value, updated_at) VALUES (?, ?, ?, ?) "
                        + "ON CONFLICT (instance, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    [.text(instance), .text(key), .text(value), .int(Self.nowMilliseconds())])
            }
        }
    }

    public func records(instance: String, prefix: String) async throws -> [ProviderRecord] {
        try await onQueue("read the records \(prefix)* of instance \(instance)") { db in
            // substr, not LIKE: keys may hold `%` and `_`.
            try db.query(
                "SELECT \(WorkflowSchema.providerRecordColumns) FROM provider_records WHERE instance = ? AND substr(key, 1, ?) = ? ORDER BY key",
                [.text(instance), .int(Int64(prefix.utf8.count)), .text(prefix)], as: ProviderRecord.self)
        }
    }

    public func removeRecord(instance: String, key: String) async throws {
        try await onQueue("remove record \(key) of instance \(instance)") { db in
            _ = try db.writeTransaction {
                try db.run("DELETE FROM provider_records WHERE instance = ? AND key = ?", [.text(instance), .text(key)])
            }
        }
    }

    // MARK: Leases

    private static let selectLease = "SELECT \(WorkflowSchema.leaseColumns) FROM leases WHERE key = ?"

    /// Takes `key` for `run` inside the caller's write transaction, or returns its live holder.
    private static func takeLease(
        _ db: SQLiteConnection, key: String, run: Int64, owner: String, now: Int64, expires: Int64
    ) throws -> LeaseRecord? {
        if let current = try db.query(selectLease, [.text(key)], as: LeaseRecord.self).first,
            current.runID != run, current.expiresAt.storeMilliseconds > now
        {
            return current
        }
        try db.run(
            """
            INSERT INTO leases (key, run_id, owner, expires_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (key) DO UPDATE SET run_id = excluded.run_id, owner = excluded.owner, expires_at = excluded.expires_at
            """,
            [.text(key), .int(run), .text(owner), .int(expires)])
        return nil
    }

    public func acquireLeases(_ keys: [String], run: Int64, owner: String, ttl: Duration) async throws -> LeaseOutcome {
        let keys = uniqued(keys)
        if keys.isEmpty { return .acquired }
        return try await onQueue("acquire leases for run \(run)") { db in
            let now = Self.nowMilliseconds()
            let expires = now + ttl.storeMilliseconds
            // Rolling back on the first held key keeps it all-or-nothing.
            struct Held: Error { var lease: LeaseRecord }
            do {
                try db.writeTransaction {
                    for key in keys {
                        if let holder = try Self.takeLease(db, key: key, run: run, owner: owner, now: now, expires: expires) {
                            throw Held(lease: holder)
                        }
                    }
                }
                return .acquired
            } catch let held as Held {
                return .held(held.lease)
            }
        }
    }

    /// False, renewing nothing, when the run has no lease for `owner`, or one of its leases
    /// expired (another run may have taken it meanwhile, or may yet) or passed to another owner.
    public func renewLeases(run: Int64, owner: String, ttl: Duration) async throws -> Bool {
        try await onQueue("renew leases of run \(run)") { db in
            let now = Self.nowMilliseconds()
            return try db.writeTransaction {
                let mine = try db.query(
                    "SELECT owner, expires_at > ? AS live FROM leases WHERE run_id = ?", [.int(now), .int(run)],
                    as: LeaseStanding.self)
                guard LeaseStanding.mayRenew(mine, owner: owner) else { return false }
                try db.run(
                    "UPDATE leases SET expires_at = ? WHERE run_id = ? AND owner = ?",
                    [.int(now + ttl.storeMilliseconds), .int(run), .text(owner)])
                return true
            }
        }
    }

    public func releaseLeases(run: Int64) async throws {
        try await onQueue("release leases of run \(run)") { db in
            _ = try db.writeTransaction { try db.run("DELETE FROM leases WHERE run_id = ?", [.int(run)]) }
        }
    }

    public func leases() async throws -> [LeaseRecord] {
        try await onQueue("list leases") { db in
            try db.query(
                "SELECT \(WorkflowSchema.leaseColumns) FROM leases WHERE expires_at > ? ORDER BY key",
                [.int(Self.nowMilliseconds())], as: LeaseRecord.self)
        }
    }

    public func claimResumableRun(instance: String, owner: String, ttl: Duration) async throws -> RunRecord? {
        try await onQueue("claim a run of \(instance)") { db in
            let now = Self.nowMilliseconds()
            return try db.writeTransaction { () throws -> RunRecord? in
                // The write lock is held from BEGIN IMMEDIATE: no other process can claim between
                // this read and the lease below.
                guard
                    let run = try db.query(
                        """
                        \(Self.selectRuns) WHERE instance = ? AND status IN (?, ?)
                        AND NOT EXISTS (SELECT 1 FROM leases WHERE leases.run_id = runs.id AND leases.expires_at > ?)
                        ORDER BY id LIMIT 1
                        """,
                        [.text(instance), .text(RunStatus.running.rawValue), .text(RunStatus.rollingBack.rawValue), .int(now)],
                        as: RunRecord.self
                    ).first
                else { return nil }
                let holder = try Self.takeLease(
                    db, key: runLeaseKey(run.id), run: run.id, owner: owner, now: now, expires: now + ttl.storeMilliseconds)
                // Another run holding `run/<id>` would be a misuse of the key; don't claim over it.
                return holder == nil ? run : nil
            }
        }
    }

    public func campaign(for name: String, holder: String, ttl: Duration) async throws -> LeaderLease {
        try await onQueue("campaign for the leader lease \(name)") { db in
            let now = Self.nowMilliseconds()
            return try db.writeTransaction {
                _ = try db.run(
                    WorkflowSchema.campaignStatement { "?\($0)" },
                    [.text(name), .text(holder), .int(now), .int(now + ttl.storeMilliseconds)])
                guard
                    let lease = try db.query(
                        "SELECT \(WorkflowSchema.leaderLeaseColumns) FROM leader_leases WHERE name = ?", [.text(name)], as: LeaderLease.self
                    ).first
                else { throw StoreError.database(operation: "campaign for the leader lease \(name)", message: "the lease row vanished") }
                return lease
            }
        }
    }

    public func resign(_ name: String, holder: String) async throws {
        try await onQueue("resign the leader lease \(name)") { db in
            _ = try db.writeTransaction {
                try db.run(
                    "UPDATE leader_leases SET expires_at = ? WHERE name = ? AND holder = ?",
                    [.int(Self.nowMilliseconds()), .text(name), .text(holder)])
            }
        }
    }
}

/// `keys` without repetitions, in their first order.
package func uniqued(_ keys: [String]) -> [String] {
    var seen = Set<String>()
    return keys.filter { seen.insert($0).inserted }
}
