import ConvergeStore
import Foundation
import PostgresNIO

/// The journal on PostgreSQL, for a controller with replicas or several processes sharing work.
///
/// Same schema and behaviour as `SQLiteWorkflowStore`. Concurrency comes from PostgreSQL itself:
/// lease rows are taken with `INSERT … ON CONFLICT DO UPDATE … WHERE expired` (which locks the
/// row it compares), claims use `FOR UPDATE SKIP LOCKED`, and migrations run under an advisory
/// lock. Lease expiry is judged by the server's clock, so replicas with skewed clocks agree.
///
/// The pool's connections live as long as the work they serve: `withStore` runs the client as
/// a child task beside that work, and closes it when the work is done.
public final class PostgresWorkflowStore: WorkflowStore {
    public let configuration: PostgresStoreConfiguration
    let client: PostgresClient
    /// Set when the pool first hands out a connection (see `withConnection`).
    private let connectedOnce = Flag()
    let logger: Logger

    /// Query logging off unless a logger is given (PostgresNIO logs queries at debug level).
    private static let silentLogger: Logger = {
        var logger = Logger(label: "converge.store.postgres")
        logger.logLevel = .critical
        return logger
    }()

    /// A store on `url`, e.g. `postgres://converge:secret@db.example:5432/converge`, for the
    /// duration of `body`: see `withStore(configuration:logger:_:)`.
    public static func withStore<Result: Sendable>(
        url: String, logger: Logger? = nil, _ body: (PostgresWorkflowStore) async throws -> Result
    ) async throws -> Result {
        try await withStore(configuration: PostgresStoreConfiguration(url: url), logger: logger, body)
    }

    /// Runs `body` with a store on `configuration`, its connection pool running beside it as a
    /// child task; when `body` returns or throws, the pool is cancelled, and this returns once
    /// its connections are closed. Connections open lazily (the first call opens one). Call
    /// `migrate()` first inside `body`; don't keep the store past `body`: its calls then fail.
    public static func withStore<Result: Sendable>(
        configuration: PostgresStoreConfiguration, logger: Logger? = nil, _ body: (PostgresWorkflowStore) async throws -> Result
    ) async throws -> Result {
        let store = PostgresWorkflowStore(configuration: configuration, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self, returning: Result.self) { group in
            group.addTask { await store.client.run() }
            defer { group.cancelAll() }
            return try await body(store)
        }
    }

    private init(configuration: PostgresStoreConfiguration, logger: Logger?) {
        self.configuration = configuration
        self.logger = logger ?? Self.silentLogger
        // The pool's own background logging stays off: it reports every failed reconnection,
        // and the store's errors already say what failed.
        client = PostgresClient(configuration: configuration.clientConfiguration)
    }

    // MARK: Plumbing

    /// The server's clock in milliseconds since 1970, as SQL. `now()` is the transaction's start,
    /// so every use inside one statement or transaction sees the same instant.
    static let nowMS = "(EXTRACT(EPOCH FROM now()) * 1000)::BIGINT"

    /// Runs `body` with a pooled connection; errors become `StoreError`s naming `operation`.
    ///
    /// The pool retries a server it cannot reach for a long time before giving up, which would
    /// leave a caller given a wrong URL hanging. So when no connection has come
    /// within half a second, one direct connection attempt tells a slow pool (all connections
    /// busy: keep waiting) from a server that is down, refuses the login or lacks the database
    /// (fail now, with the server's reason).
    func withConnection<T: Sendable>(
        _ operation: @autoclosure () -> String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let client = self.client
        // Once the pool has produced a connection the server is known to be there: later
        // calls skip the probe race (its timer cost as much CPU as the query itself).
        if connectedOnce.isSet {
            do {
                return try await client.withConnection { connection in try await body(connection) }
            } catch {
                throw storeError(error, operation: operation())
            }
        }
        let connectedOnce = self.connectedOnce
        let started = Flag()
        do {
            return try await withThrowingTaskGroup(of: Outcome<T>.self) { group in
                group.addTask {
                    .value(
                        try await client.withConnection { connection in
                            started.set()
                            connectedOnce.set()
                            return try await body(connection)
                        })
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(500))
                    if !started.isSet { try await self.probe() }
                    return .probed
                }
                while let outcome = try await group.next() {
                    if case .value(let value) = outcome {
                        group.cancelAll()
                        return value
                    }
                }
                throw CancellationError()
            }
        } catch {
            throw storeError(error, operation: operation())
        }
    }

    private enum Outcome<T: Sendable>: Sendable {
        case value(T)
        case probed
    }

    /// Set once, read from any task.
    private final class Flag: @unchecked Sendable {
        // @unchecked: `value` is guarded by `lock`.
        private let lock = NSLock()
        private var value = false
        func set() { lock.withLock { value = true } }
        var isSet: Bool { lock.withLock { value } }
    }

    /// Opens and closes one connection outside the pool; throws why it cannot.
    private func probe() async throws {
        var tls = PostgresConnection.Configuration.TLS.disable
        if configuration.tls != .disable {
            // Same settings as the pool; only the connection attempt matters here.
            let context = try NIOSSLContext(configuration: configuration.clientTLSConfiguration)
            tls = configuration.tls == .prefer ? .prefer(context) : .require(context)
        }
        var probe = PostgresConnection.Configuration(
            host: configuration.host, port: configuration.port, username: configuration.username,
            password: configuration.password, database: configuration.database, tls: tls)
        probe.options.connectTimeout = .milliseconds(configuration.connectTimeout.storeMilliseconds)
        let connection = try await PostgresConnection.connect(configuration: probe, id: 0, logger: self.logger)
        try await connection.close().get()
    }

    /// Runs `body` in a transaction on one connection: committed when it returns, rolled back
    /// when it throws (its error is what the caller sees).
    func transaction<T: Sendable>(
        _ operation: @autoclosure () -> String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await withConnection(operation()) { connection in
            try await connection.query("BEGIN", logger: self.logger)
            do {
                let result = try await body(connection)
                try await connection.query("COMMIT", logger: self.logger)
                return result
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: self.logger)
                throw error
            }
        }
    }

    private func storeError(_ error: any Error, operation: String) -> any Error {
        if error is StoreError || error is Held { return error }
        if let error = error as? PSQLError {
            if let info = error.serverInfo, let message = info[.message] {
                let state = info[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
                return StoreError.database(operation: operation, message: message + state)
            }
            if error.code == .poolClosed || error.code == .clientClosedConnection {
                return StoreError.database(operation: operation, message: "the store was shut down")
            }
            let cause = error.underlying.map { ": \($0)" } ?? ""
            return StoreError.database(
                operation: operation,
                message: "cannot talk to PostgreSQL at \(configuration.redactedURL) (\(error.code))\(cause)")
        }
        if let error = error as? PostgresDecodingError {
            return StoreError.database(
                operation: operation, message: "unexpected column type in '\(error.columnName)' (\(error.code))")
        }
        return StoreError.database(operation: operation, message: "\(error)")
    }

    private static func isForeignKeyViolation(_ error: any Error) -> Bool {
        (error as? PSQLError)?.serverInfo?[.sqlState] == "23503"
    }

    // MARK: Schema

    /// An arbitrary constant naming "Converge's schema" among advisory locks ('converge' in ASCII).
    private static let migrationLock: Int64 = 0x636f_6e76_6572_6765

    public func migrate() async throws {
        let location = configuration.redactedURL
        try await transaction("migrate \(location)") { connection in
            // Serializes concurrent starts: the second waits, then finds everything applied.
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: self.logger)
            // Created only when missing: a worker's role may read the schema but not create in it.
            var present = false
            for try await row in try await connection.query("SELECT to_regclass('schema_migrations')::text", logger: self.logger) {
                present = try row.decode(String?.self) != nil
            }
            if !present {
                try await connection.query(PostgresQuery(unsafeSQL: WorkflowSchema.migrationsTable(.postgres)), logger: self.logger)
            }
            var applied = Set<Int>()
            let versions = try await connection.query(PostgresQuery(unsafeSQL: WorkflowSchema.selectAppliedVersions), logger: self.logger)
            for try await row in versions { applied.insert(try row.makeRandomAccess().int("version")) }
            let statements = try WorkflowSchema.statementsToMigrate(
                applied: applied, dialect: .postgres, appliedAt: Self.nowMS, location: location)
            for statement in statements {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
            }
        }
    }

    // MARK: Runs

    public func createRun(_ run: NewRun) async throws -> RunRecord {
        try await withConnection("create run") { connection in
            let rows = try await connection.query(
                """
                INSERT INTO runs (instance, repository, commit_id, plan_digest, plan_json, status, executor, converge_version,
                                  options_json, manifests_json, error, created_at, updated_at, finished_at)
                VALUES (\(run.instance), \(run.repository), \(run.commit), \(run.planDigest), \(run.planJSON),
                        \(run.status.rawValue), \(run.executor), \(run.convergeVersion), \(run.optionsJSON), \(run.manifestsJSON),
                        NULL, \(unescaped: Self.nowMS), \(unescaped: Self.nowMS), NULL)
                RETURNING \(unescaped: WorkflowSchema.runColumns)
                """, logger: self.logger)
            guard let record = try await rows.records(as: RunRecord.self).first else {
                throw StoreError.database(operation: "create run", message: "the server returned no row")
            }
            return record
        }
    }

    public func run(_ id: Int64) async throws -> RunRecord? {
        try await withConnection("read run \(id)") { connection in
            try await connection.query(
                "SELECT \(unescaped: WorkflowSchema.runColumns) FROM runs WHERE id = \(id)", logger: self.logger
            ).records(as: RunRecord.self).first
        }
    }

    public func runs(_ filter: RunFilter) async throws -> [RunRecord] {
        if let statuses = filter.statuses, statuses.isEmpty { return [] }
        if filter.limit <= 0 { return [] }
        var binds = PostgresBindings()
        var conditions: [String] = []
        if let instance = filter.instance {
            binds.append(instance)
            conditions.append("instance = $\(binds.count)")
        }
        if let statuses = filter.statuses {
            binds.append(statuses.map(\.rawValue).sorted())
            conditions.append("status = ANY($\(binds.count))")
        }
        binds.append(Int64(filter.limit))
        let whereClause = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let query = PostgresQuery(
            unsafeSQL: "SELECT \(WorkflowSchema.runColumns) FROM runs\(whereClause) ORDER BY id DESC LIMIT $\(binds.count)",
            binds: binds)
        return try await withConnection("list runs") { connection in
            try await connection.query(query, logger: self.logger).records(as: RunRecord.self)
        }
    }

    /// Sets status and error (nil clears it); `finished` stamps `finished_at`, otherwise it is
    /// cleared (a resumed run is not finished any more).
    public func updateRun(_ id: Int64, status: RunStatus, error: String?, finished: Bool) async throws {
        let found = try await withConnection("update run \(id)") { connection in
            let rows = try await connection.query(
                """
                UPDATE runs SET status = \(status.rawValue), error = \(error), updated_at = \(unescaped: Self.nowMS),
                    finished_at = \(unescaped: finished ? Self.nowMS : "NULL")
                WHERE id = \(id) RETURNING id
                """, logger: self.logger)
            return try await rows.collect().count == 1
        }
        if !found { throw StoreError.runNotFound(id) }
    }

    // MARK: Steps

    private static let stepUpsert = """
        ON CONFLICT (run_id, step_index) DO UPDATE SET
            resource = EXCLUDED.resource, action = EXCLUDED.action, status = EXCLUDED.status,
            attempts = EXCLUDED.attempts, started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
            output = EXCLUDED.output, error = EXCLUDED.error, converge_version = EXCLUDED.converge_version,
            report = EXCLUDED.report, worker = EXCLUDED.worker
        """

    /// Upserts the step's row in one round trip.
    ///
    /// A `running` row is committed without waiting for the server's disk flush
    /// (`synchronous_commit` off for that transaction only): it only says a step started, and
    /// if a crash of the *server* lost it the step would simply run again, which steps allow
    /// (they are idempotent, and one not marked finished is re-run anyway). Every other row
    /// (a step's outcome, a compensation) is flushed before this returns. This halves the
    /// fsyncs per step, which dominate the journal's cost on PostgreSQL. A crash of the
    /// *client* loses nothing either way: the server has the row once this returns.
    public func recordStep(_ step: StepRecord) async throws {
        try await withConnection("record step \(step.index) of run \(step.runID)") { connection in
            do {
                if step.status == .running {
                    try await connection.query(
                        """
                        INSERT INTO steps (\(unescaped: WorkflowSchema.stepColumns))
                        SELECT \(step.runID)::BIGINT, \(Int64(step.index))::BIGINT, \(step.resource)::TEXT, \(step.action)::TEXT,
                               \(step.status.rawValue)::TEXT, \(Int64(step.attempts))::BIGINT, \(step.startedAt?.storeMilliseconds)::BIGINT,
                               \(step.finishedAt?.storeMilliseconds)::BIGINT, \(step.output)::TEXT, \(step.error)::TEXT,
                               \(step.convergeVersion)::TEXT, \(step.report)::TEXT, \(step.worker)::TEXT
                        FROM (SELECT set_config('synchronous_commit', 'off', true)) AS unflushed
                        \(unescaped: Self.stepUpsert)
                        """, logger: self.logger)
                } else {
                    try await connection.query(
                        """
                        INSERT INTO steps (\(unescaped: WorkflowSchema.stepColumns))
                        VALUES (\(step.runID), \(Int64(step.index)), \(step.resource), \(step.action), \(step.status.rawValue),
                                \(Int64(step.attempts)), \(step.startedAt?.storeMilliseconds), \(step.finishedAt?.storeMilliseconds),
                                \(step.output), \(step.error), \(step.convergeVersion), \(step.report), \(step.worker))
                        \(unescaped: Self.stepUpsert)
                        """, logger: self.logger)
                }
            } catch  where Self.isForeignKeyViolation(error) {
                throw StoreError.runNotFound(step.runID)
            }
        }
    }

    public func steps(run: Int64) async throws -> [StepRecord] {
        try await withConnection("read steps of run \(run)") { connection in
            let rows = try await connection.query(
                "SELECT \(unescaped: WorkflowSchema.stepColumns) FROM steps WHERE run_id = \(run) ORDER BY step_index",
                logger: self.logger)
            return try await rows.records(as: StepRecord.self)
        }
    }

    // MARK: Approvals

    public func recordApproval(_ approval: ApprovalRecord) async throws {
        try await withConnection("record approval of run \(approval.runID)") { connection in
            do {
                try await connection.query(
                    """
                    INSERT INTO approvals (run_id, plan_digest, decision, approver, comment, at, via, step)
                    VALUES (\(approval.runID), \(approval.planDigest), \(approval.decision.rawValue), \(approval.approver),
                            \(approval.comment), \(approval.at.storeMilliseconds), \(approval.via), \(approval.step))
                    """, logger: self.logger)
            } catch  where Self.isForeignKeyViolation(error) {
                throw StoreError.runNotFound(approval.runID)
            }
        }
    }

    public func recordProbeResults(run: Int64, _ results: [ProbeRecord]) async throws {
        try await withConnection("record probe results of run \(run)") { connection in
            do {
                try await connection.query("BEGIN", logger: self.logger)
                do {
                    try await connection.query("DELETE FROM probe_results WHERE run_id = \(run)", logger: self.logger)
                    for (position, result) in results.enumerated() {
                        try await connection.query(
                            """
                            INSERT INTO probe_results (run_id, position, probe, summary, reachable, expected, detail, at)
                            VALUES (\(run), \(position), \(result.probe), \(result.summary), \(result.reachable), \(result.expected),
                                    \(result.detail), \(result.at.storeMilliseconds))
                            """, logger: self.logger)
                    }
                    try await connection.query("COMMIT", logger: self.logger)
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: self.logger)
                    throw error
                }
            } catch  where Self.isForeignKeyViolation(error) {
                throw StoreError.runNotFound(run)
            }
        }
    }

    public func probeResults(run: Int64) async throws -> [ProbeRecord] {
        try await withConnection("read probe results of run \(run)") { connection in
            try await connection.query(
                """
                SELECT \(unescaped: WorkflowSchema.probeResultColumns) FROM probe_results WHERE run_id = \(run) ORDER BY position
                """, logger: self.logger
            ).records(as: ProbeRecord.self)
        }
    }

    public func approvals(run: Int64) async throws -> [ApprovalRecord] {
        try await withConnection("read approvals of run \(run)") { connection in
            try await connection.query(
                "SELECT \(unescaped: WorkflowSchema.approvalColumns) FROM approvals WHERE run_id = \(run) ORDER BY id",
                logger: self.logger
            ).records(as: ApprovalRecord.self)
        }
    }

    // MARK: Schedule firings

    public func claimFiring(_ firing: FiringRecord) async throws -> Bool {
        try await withConnection("claim \(firing.schedule) at \(firing.dueAt)") { connection in
            let rows = try await connection.query(
                """
                INSERT INTO schedule_firings (\(unescaped: WorkflowSchema.firingColumns))
                VALUES (\(firing.instance), \(firing.schedule), \(firing.dueAt.storeMilliseconds), \(firing.status.rawValue), \(firing.owner),
                        \(firing.claimedAt.storeMilliseconds), \(firing.startedAt?.storeMilliseconds), \(firing.finishedAt?.storeMilliseconds),
                        \(firing.runID), \(firing.detail))
                ON CONFLICT DO NOTHING RETURNING due_at
                """, logger: self.logger)
            for try await _ in rows { return true }
            return false
        }
    }

    public func updateFiring(_ firing: FiringRecord) async throws {
        try await withConnection("update \(firing.schedule) at \(firing.dueAt)") { connection in
            _ = try await connection.query(
                """
                UPDATE schedule_firings SET status = \(firing.status.rawValue), started_at = \(firing.startedAt?.storeMilliseconds),
                    finished_at = \(firing.finishedAt?.storeMilliseconds), run_id = \(firing.runID), detail = \(firing.detail)
                WHERE instance = \(firing.instance) AND schedule = \(firing.schedule) AND due_at = \(firing.dueAt.storeMilliseconds)
                """, logger: self.logger)
        }
    }

    public func firings(instance: String, schedule: String?, statuses: Set<FiringStatus>?, limit: Int) async throws -> [FiringRecord] {
        try await withConnection("read the firings of \(schedule ?? "every schedule")") { connection in
            let names = statuses.map { $0.map(\.rawValue).sorted() }
            return try await connection.query(
                """
                SELECT \(unescaped: WorkflowSchema.firingColumns) FROM schedule_firings
                WHERE instance = \(instance) AND (\(schedule)::TEXT IS NULL OR schedule = \(schedule))
                  AND (\(names == nil) OR status = ANY(\(names ?? [])))
                ORDER BY due_at DESC, schedule COLLATE "C" LIMIT \(limit)
                """, logger: self.logger
            ).records(as: FiringRecord.self)
        }
    }

    // MARK: Provider records

    public func putRecord(instance: String, key: String, value: String) async throws {
        try await withConnection("record \(key) of instance \(instance)") { connection in
            _ = try await connection.query(
                """
                INSERT INTO provider_records (instance, key, value, updated_at) VALUES (\(instance), \(key), \(value), \(unescaped: Self.nowMS))
                ON CONFLICT (instance, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                """, logger: self.logger)
        }
    }

    public func records(instance: String, prefix: String) async throws -> [ProviderRecord] {
        try await withConnection("read the records \(prefix)* of instance \(instance)") { connection in
            // left(), not LIKE: keys may hold `%` and `_`. Ordered byte-wise, as SQLite does.
            try await connection.query(
                """
                SELECT \(unescaped: WorkflowSchema.providerRecordColumns) FROM provider_records
                WHERE instance = \(instance) AND left(key, \(prefix.unicodeScalars.count)::INTEGER) = \(prefix) ORDER BY key COLLATE "C"
                """, logger: self.logger
            ).records(as: ProviderRecord.self)
        }
    }

    public func removeRecord(instance: String, key: String) async throws {
        try await withConnection("remove record \(key) of instance \(instance)") { connection in
            _ = try await connection.query(
                "DELETE FROM provider_records WHERE instance = \(instance) AND key = \(key)", logger: self.logger)
        }
    }

    // MARK: Leases

    /// Thrown inside a lease transaction to roll it back and report the holder.
    private struct Held: Error { var lease: LeaseRecord }

    public func acquireLeases(_ keys: [String], run: Int64, owner: String, ttl: Duration) async throws -> LeaseOutcome {
        let keys = uniqued(keys)
        if keys.isEmpty { return .acquired }
        let ttl = ttl.storeMilliseconds
        do {
            try await transaction("acquire leases for run \(run)") { connection in
                // One statement takes every free key. Rows are inserted in key order so that two
                // transactions wanting overlapping sets lock them in the same order (no deadlock).
                // A held key's row is locked too, so the holder read below is current.
                let rows = try await connection.query(
                    """
                    INSERT INTO leases (key, run_id, owner, expires_at)
                    SELECT k, \(run), \(owner), \(unescaped: Self.nowMS) + \(ttl) FROM unnest(\(keys)::TEXT[]) AS t(k) ORDER BY k
                    ON CONFLICT (key) DO UPDATE SET run_id = EXCLUDED.run_id, owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
                    WHERE leases.expires_at <= \(unescaped: Self.nowMS) OR leases.run_id = EXCLUDED.run_id
                    RETURNING key
                    """, logger: self.logger)
                var taken = Set<String>()
                for try await key in rows.decode(String.self) { taken.insert(key) }
                guard let first = keys.first(where: { !taken.contains($0) }) else { return }
                let holder = try await connection.query(
                    "SELECT \(unescaped: WorkflowSchema.leaseColumns) FROM leases WHERE key = \(first)", logger: self.logger
                ).records(as: LeaseRecord.self)
                guard let lease = holder.first else {
                    throw StoreError.database(operation: "acquire leases for run \(run)", message: "lease '\(first)' vanished")
                }
                throw Held(lease: lease)
            }
            return .acquired
        } catch let held as Held {
            return .held(held.lease)
        }
    }

    /// False, renewing nothing, when the run has no lease for `owner`, or one of its leases
    /// expired (another run may have taken it meanwhile, or may yet) or passed to another owner.
    public func renewLeases(run: Int64, owner: String, ttl: Duration) async throws -> Bool {
        let ttl = ttl.storeMilliseconds
        return try await transaction("renew leases of run \(run)") { connection in
            let mine = try await connection.query(
                """
                SELECT owner, expires_at > \(unescaped: Self.nowMS) AS live FROM leases WHERE run_id = \(run) FOR UPDATE
                """, logger: self.logger
            ).records(as: LeaseStanding.self)
            guard LeaseStanding.mayRenew(mine, owner: owner) else { return false }
            try await connection.query(
                """
                UPDATE leases SET expires_at = \(unescaped: Self.nowMS) + \(ttl) WHERE run_id = \(run) AND owner = \(owner)
                """, logger: self.logger)
            return true
        }
    }

    public func releaseLeases(run: Int64) async throws {
        try await withConnection("release leases of run \(run)") { connection in
            _ = try await connection.query("DELETE FROM leases WHERE run_id = \(run)", logger: self.logger)
        }
    }

    public func campaign(for name: String, holder: String, ttl: Duration) async throws -> LeaderLease {
        let statement = WorkflowSchema.campaignStatement { n in
            switch n {
            case 3: return Self.nowMS
            case 4: return "(\(Self.nowMS) + $3)"
            default: return "$\(n)"
            }
        }
        var binds = PostgresBindings()
        binds.append(name)
        binds.append(holder)
        binds.append(ttl.storeMilliseconds)
        let campaign = PostgresQuery(unsafeSQL: statement, binds: binds)
        return try await transaction("campaign for the leader lease \(name)") { connection in
            try await connection.query(campaign, logger: self.logger)
            guard
                let lease = try await connection.query(
                    "SELECT \(unescaped: WorkflowSchema.leaderLeaseColumns) FROM leader_leases WHERE name = \(name)", logger: self.logger
                ).records(as: LeaderLease.self).first
            else { throw StoreError.database(operation: "campaign for the leader lease \(name)", message: "the lease row vanished") }
            return lease
        }
    }

    public func resign(_ name: String, holder: String) async throws {
        try await withConnection("resign the leader lease \(name)") { connection in
            _ = try await connection.query(
                "UPDATE leader_leases SET expires_at = \(unescaped: Self.nowMS) WHERE name = \(name) AND holder = \(holder)",
                logger: self.logger)
        }
    }

    public func leases() async throws -> [LeaseRecord] {
        try await withConnection("list leases") { connection in
            try await connection.query(
                "SELECT \(unescaped: WorkflowSchema.leaseColumns) FROM leases WHERE expires_at > \(unescaped: Self.nowMS) ORDER BY key",
                logger: self.logger
            ).records(as: LeaseRecord.self)
        }
    }

    private enum ClaimAttempt: Sendable {
        case nothing
        case claimed(RunRecord)
        /// Another claimer leased this run first.
        case lost(Int64)
    }

    public func claimResumableRun(instance: String, owner: String, ttl: Duration) async throws -> RunRecord? {
        let ttl = ttl.storeMilliseconds
        let statuses = [RunStatus.running.rawValue, RunStatus.rollingBack.rawValue]
        var passedOver: [Int64] = []
        // A claimer whose snapshot predates another's commit can lock a run just claimed (the
        // row lock is free again) and still see it as unleased; the lease insert below is the
        // arbiter, and on losing it the claimer moves on to the next candidate.
        for _ in 0..<10 {
            let excluded = passedOver
            let outcome: ClaimAttempt = try await transaction("claim a run of \(instance)") { connection in
                let candidates = try await connection.query(
                    """
                    SELECT \(unescaped: WorkflowSchema.runColumns) FROM runs
                    WHERE instance = \(instance) AND status = ANY(\(statuses)) AND id <> ALL(\(excluded)::BIGINT[])
                      AND NOT EXISTS (SELECT 1 FROM leases WHERE leases.run_id = runs.id
                                      AND leases.expires_at > \(unescaped: Self.nowMS))
                    ORDER BY id LIMIT 1
                    FOR UPDATE SKIP LOCKED
                    """, logger: self.logger
                ).records(as: RunRecord.self)
                guard let run = candidates.first else { return .nothing }
                let taken = try await connection.query(
                    """
                    INSERT INTO leases (key, run_id, owner, expires_at)
                    VALUES (\(runLeaseKey(run.id)), \(run.id), \(owner), \(unescaped: Self.nowMS) + \(ttl))
                    ON CONFLICT (key) DO UPDATE SET run_id = EXCLUDED.run_id, owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
                    WHERE leases.expires_at <= \(unescaped: Self.nowMS)
                    RETURNING key
                    """, logger: self.logger
                ).collect()
                return taken.isEmpty ? .lost(run.id) : .claimed(run)
            }
            switch outcome {
            case .nothing: return nil
            case .claimed(let run): return run
            case .lost(let id): passedOver.append(id)
            }
        }
        return nil
    }
}
