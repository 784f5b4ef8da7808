/// The journal's schema, for both backends side by side so they cannot drift apart: the same
/// tables, columns and keys; only the dialect differs (auto-increment ids, integer widths).
///
/// Times are integer milliseconds since 1970 in every column (`Date.storeMilliseconds`), so
/// neither backend converts time zones or loses precision differently.
///
/// Migrations are applied in order, each once, inside one write transaction that also records
/// it in `schema_migrations`; a process finding a version it does not know refuses to run
/// (`StoreError.schemaTooNew`). Append new migrations; never edit a released one.
public enum WorkflowSchema {
    public struct Migration: Sendable {
        public var version: Int
        public var sqlite: [String]
        public var postgres: [String]
    }

    /// The `schema_migrations` table itself, created before anything else (idempotent).
    public static let sqliteMigrationsTable =
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
    public static let postgresMigrationsTable =
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)"

    /// The newest version this build knows.
    public static var latestVersion: Int { migrations.last?.version ?? 0 }

    public static let migrations: [Migration] = [
        Migration(
            version: 1,
            sqlite: [
                """
                CREATE TABLE runs (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    instance TEXT NOT NULL,
                    repository TEXT NOT NULL,
                    commit_id TEXT,
                    plan_digest TEXT NOT NULL,
                    plan_json TEXT NOT NULL,
                    status TEXT NOT NULL,
                    executor TEXT NOT NULL,
                    converge_version TEXT NOT NULL,
                    options_json TEXT NOT NULL,
                    manifests_json TEXT NOT NULL,
                    error TEXT,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    finished_at INTEGER
                )
                """,
                "CREATE INDEX runs_by_instance_status ON runs (instance, status, id)",
                "CREATE INDEX runs_by_status ON runs (status, id)",
                """
                CREATE TABLE steps (
                    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                    step_index INTEGER NOT NULL,
                    resource TEXT NOT NULL,
                    action TEXT NOT NULL,
                    status TEXT NOT NULL,
                    attempts INTEGER NOT NULL,
                    started_at INTEGER,
                    finished_at INTEGER,
                    output TEXT,
                    error TEXT,
                    converge_version TEXT NOT NULL,
                    PRIMARY KEY (run_id, step_index)
                )
                """,
                """
                CREATE TABLE approvals (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                    plan_digest TEXT NOT NULL,
                    decision TEXT NOT NULL,
                    approver TEXT NOT NULL,
                    comment TEXT NOT NULL,
                    at INTEGER NOT NULL
                )
                """,
                "CREATE INDEX approvals_by_run ON approvals (run_id, id)",
                // No foreign key to runs: leases may also guard things that are not runs
                // (e.g. a controller's leadership).
                """
                CREATE TABLE leases (
                    key TEXT PRIMARY KEY,
                    run_id INTEGER NOT NULL,
                    owner TEXT NOT NULL,
                    expires_at INTEGER NOT NULL
                )
                """,
                "CREATE INDEX leases_by_run ON leases (run_id)",
            ],
            postgres: [
                """
                CREATE TABLE runs (
                    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    instance TEXT NOT NULL,
                    repository TEXT NOT NULL,
                    commit_id TEXT,
                    plan_digest TEXT NOT NULL,
                    plan_json TEXT NOT NULL,
                    status TEXT NOT NULL,
                    executor TEXT NOT NULL,
                    converge_version TEXT NOT NULL,
                    options_json TEXT NOT NULL,
                    manifests_json TEXT NOT NULL,
                    error TEXT,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    finished_at BIGINT
                )
                """,
                "CREATE INDEX runs_by_instance_status ON runs (instance, status, id)",
                "CREATE INDEX runs_by_status ON runs (status, id)",
                """
                CREATE TABLE steps (
                    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                    step_index BIGINT NOT NULL,
                    resource TEXT NOT NULL,
                    action TEXT NOT NULL,
                    status TEXT NOT NULL,
                    attempts BIGINT NOT NULL,
                    started_at BIGINT,
                    finished_at BIGINT,
                    output TEXT,
                    error TEXT,
                    converge_version TEXT NOT NULL,
                    PRIMARY KEY (run_id, step_index)
                )
                """,
                """
                CREATE TABLE approvals (
                    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                    plan_digest TEXT NOT NULL,
                    decision TEXT NOT NULL,
                    approver TEXT NOT NULL,
                    comment TEXT NOT NULL,
                    at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX approvals_by_run ON approvals (run_id, id)",
                """
                CREATE TABLE leases (
                    key TEXT PRIMARY KEY,
                    run_id BIGINT NOT NULL,
                    owner TEXT NOT NULL,
                    expires_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX leases_by_run ON leases (run_id)",
            ]
        ),
        // The probes run after a run, for its report.
        Migration(
            version: 2,
            sqlite: [
                """
                CREATE TABLE probe_results (
                    run_id INTEGER NOT NULL REFERENCES runs (id),
                    position INTEGER NOT NULL,
                    probe TEXT NOT NULL,
                    summary TEXT NOT NULL,
                    reachable INTEGER NOT NULL,
                    expected INTEGER NOT NULL,
                    detail TEXT NOT NULL,
                    at INTEGER NOT NULL,
                    PRIMARY KEY (run_id, position)
                )
                """
            ],
            postgres: [
                """
                CREATE TABLE probe_results (
                    run_id BIGINT NOT NULL REFERENCES runs (id),
                    position INTEGER NOT NULL,
                    probe TEXT NOT NULL,
                    summary TEXT NOT NULL,
                    reachable BOOLEAN NOT NULL,
                    expected BOOLEAN NOT NULL,
                    detail TEXT NOT NULL,
                    at BIGINT NOT NULL,
                    PRIMARY KEY (run_id, position)
                )
                """
            ]
        ),
        // The leader lease of controller replicas sharing a store.
        Migration(
            version: 3,
            sqlite: [
                """
                CREATE TABLE leader_leases (
                    name TEXT PRIMARY KEY,
                    holder TEXT NOT NULL,
                    acquired_at INTEGER NOT NULL,
                    renewed_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    transitions INTEGER NOT NULL
                )
                """
            ],
            postgres: [
                """
                CREATE TABLE leader_leases (
                    name TEXT PRIMARY KEY,
                    holder TEXT NOT NULL,
                    acquired_at BIGINT NOT NULL,
                    renewed_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    transitions BIGINT NOT NULL
                )
                """
            ]
        ),
        // Where an approval was given, when not through Converge itself (a pull-request review).
        Migration(
            version: 4,
            sqlite: ["ALTER TABLE approvals ADD COLUMN via TEXT"],
            postgres: ["ALTER TABLE approvals ADD COLUMN via TEXT"]
        ),
        // What providers keep about objects the live systems cannot be asked about (the inputs
        // a playbook last ran with, the VMs an instance snapshotted), and what a step reports
        // it did (a playbook's result per host).
        Migration(
            version: 5,
            sqlite: [
                """
                CREATE TABLE provider_records (
                    instance TEXT NOT NULL,
                    key TEXT NOT NULL,
                    value TEXT NOT NULL,
                    updated_at INTEGER NOT NULL,
                    PRIMARY KEY (instance, key)
                )
                """,
                "ALTER TABLE steps ADD COLUMN report TEXT",
            ],
            postgres: [
                """
                CREATE TABLE provider_records (
                    instance TEXT NOT NULL,
                    key TEXT NOT NULL,
                    value TEXT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    PRIMARY KEY (instance, key)
                )
                """,
                "ALTER TABLE steps ADD COLUMN report TEXT",
            ]
        ),
        // Each due time of each schedule, claimed by one process (the primary key) and then
        // followed to its end: the history of scheduled runs, and what was missed or skipped.
        Migration(
            version: 6,
            sqlite: [
                """
                CREATE TABLE schedule_firings (
                    instance TEXT NOT NULL,
                    schedule TEXT NOT NULL,
                    due_at INTEGER NOT NULL,
                    status TEXT NOT NULL,
                    owner TEXT NOT NULL,
                    claimed_at INTEGER NOT NULL,
                    started_at INTEGER,
                    finished_at INTEGER,
                    run_id INTEGER,
                    detail TEXT,
                    PRIMARY KEY (instance, schedule, due_at)
                )
                """
            ],
            postgres: [
                """
                CREATE TABLE schedule_firings (
                    instance TEXT NOT NULL,
                    schedule TEXT NOT NULL,
                    due_at BIGINT NOT NULL,
                    status TEXT NOT NULL,
                    owner TEXT NOT NULL,
                    claimed_at BIGINT NOT NULL,
                    started_at BIGINT,
                    finished_at BIGINT,
                    run_id BIGINT,
                    detail TEXT,
                    PRIMARY KEY (instance, schedule, due_at)
                )
                """
            ]
        ),
        // The step an approval lets start, when it was given to a run already under way (a
        // rollout's promotion, a pipeline's next wave); NULL for an approval of the whole plan.
        Migration(
            version: 7,
            sqlite: ["ALTER TABLE approvals ADD COLUMN step INTEGER"],
            postgres: ["ALTER TABLE approvals ADD COLUMN step BIGINT"]
        ),
        // Workers: which one ran each step; and, on PostgreSQL, the work queue they claim from
        // (`StepQueue`), the workers themselves and the nonces of the envelopes they ran.
        Migration(
            version: 8,
            sqlite: ["ALTER TABLE steps ADD COLUMN worker TEXT"],
            postgres: [
                "ALTER TABLE steps ADD COLUMN worker TEXT",
                """
                CREATE TABLE workers (
                    id TEXT PRIMARY KEY, pool TEXT NOT NULL, version TEXT NOT NULL, plan_format BIGINT NOT NULL,
                    host TEXT NOT NULL, concurrency BIGINT NOT NULL, started_at BIGINT NOT NULL, heartbeat_at BIGINT NOT NULL,
                    stopped_at BIGINT)
                """,
                """
                CREATE TABLE step_jobs (
                    id BIGSERIAL PRIMARY KEY, run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                    step_index BIGINT NOT NULL, kind TEXT NOT NULL, pool TEXT NOT NULL, plan_format BIGINT NOT NULL,
                    envelope TEXT NOT NULL, status TEXT NOT NULL, attempt BIGINT NOT NULL DEFAULT 0,
                    worker TEXT, worker_version TEXT, leased_until BIGINT, enqueued_at BIGINT NOT NULL, claimed_at BIGINT,
                    finished_at BIGINT, snapshot TEXT, report TEXT, error TEXT,
                    UNIQUE (run_id, step_index, kind))
                """,
                "CREATE INDEX step_jobs_claimable ON step_jobs (pool, id) WHERE status IN ('queued', 'claimed')",
                "CREATE INDEX step_jobs_worker ON step_jobs (worker) WHERE status = 'claimed'",
                "CREATE TABLE job_nonces (nonce TEXT PRIMARY KEY, job_id BIGINT NOT NULL, used_at BIGINT NOT NULL)",
            ]
        ),
        // The role workers log in with (PostgreSQL only): members of `converge_worker`, each
        // bound to its pools in `worker_pools`, read the runs of their pools' jobs and write only
        // their pools' claims, outcomes and worker rows (row-level security). Other roles see
        // every row, as before.
        Migration(
            version: 9,
            sqlite: [],
            postgres: [
                """
                DO $$ BEGIN
                    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'converge_worker') THEN CREATE ROLE converge_worker NOLOGIN; END IF;
                END $$
                """,
                "CREATE TABLE worker_pools (role_name TEXT NOT NULL, pool TEXT NOT NULL, PRIMARY KEY (role_name, pool))",
                "GRANT SELECT ON schema_migrations, worker_pools, runs TO converge_worker",
                "GRANT SELECT, UPDATE ON step_jobs TO converge_worker",
                "GRANT SELECT, INSERT, UPDATE ON workers TO converge_worker",
                "GRANT SELECT, INSERT ON job_nonces TO converge_worker",
                "ALTER TABLE step_jobs ENABLE ROW LEVEL SECURITY",
                "ALTER TABLE workers ENABLE ROW LEVEL SECURITY",
                "ALTER TABLE runs ENABLE ROW LEVEL SECURITY",
                "CREATE POLICY everyone_else ON step_jobs USING (NOT \(workerMember))",
                "CREATE POLICY worker_pools ON step_jobs TO converge_worker USING (\(workerPools)) WITH CHECK (\(workerPools))",
                "CREATE POLICY everyone_else ON workers USING (NOT \(workerMember))",
                "CREATE POLICY worker_pools ON workers TO converge_worker USING (\(workerPools)) WITH CHECK (\(workerPools))",
                "CREATE POLICY everyone_else ON runs USING (NOT \(workerMember))",
                "CREATE POLICY worker_pools ON runs FOR SELECT TO converge_worker USING (id IN (SELECT run_id FROM step_jobs))",
                // A job's report (a playbook's log) in bounded chunks, written with its outcome.
                """
                CREATE TABLE job_outputs (
                    job_id BIGINT NOT NULL REFERENCES step_jobs(id) ON DELETE CASCADE, attempt BIGINT NOT NULL, seq BIGINT NOT NULL,
                    chunk TEXT NOT NULL, PRIMARY KEY (job_id, attempt, seq))
                """,
                "GRANT SELECT, INSERT ON job_outputs TO converge_worker",
                "ALTER TABLE job_outputs ENABLE ROW LEVEL SECURITY",
                "CREATE POLICY everyone_else ON job_outputs USING (NOT \(workerMember))",
                "CREATE POLICY worker_pools ON job_outputs TO converge_worker USING (job_id IN (SELECT id FROM step_jobs)) WITH CHECK (job_id IN (SELECT id FROM step_jobs))",
            ]
        ),
    ]

    /// True for a role that logs in as a worker (a member of `converge_worker`), in SQL.
    static let workerMember = "pg_has_role(current_user, 'converge_worker', 'MEMBER')"
    /// The rows of a worker role's pools, in SQL.
    static let workerPools = "pool IN (SELECT pool FROM worker_pools WHERE role_name = current_user)"

    /// The columns of `runs` in the order both backends select and decode them.
    public static let runColumns =
        "id, instance, repository, commit_id, plan_digest, plan_json, status, executor, converge_version, options_json, "
        + "manifests_json, error, created_at, updated_at, finished_at"

    /// The columns of `steps` in the order both backends select and decode them.
    public static let stepColumns =
        "run_id, step_index, resource, action, status, attempts, started_at, finished_at, output, error, converge_version, report, worker"

    /// The columns of `step_jobs` (PostgreSQL) in the order they are selected and decoded.
    package static let stepJobColumns =
        "id, run_id, step_index, kind, pool, plan_format, envelope, status, attempt, worker, worker_version, leased_until, "
        + "enqueued_at, claimed_at, finished_at, snapshot, report, error"

    /// The columns of `workers` (PostgreSQL).
    package static let workerColumns = "id, pool, version, plan_format, host, concurrency, started_at, heartbeat_at, stopped_at"

    /// The columns of `approvals` both backends select and decode.
    package static let approvalColumns = "run_id, plan_digest, decision, approver, comment, at, via, step"

    /// The columns of `schedule_firings` both backends select and decode.
    package static let firingColumns = "instance, schedule, due_at, status, owner, claimed_at, started_at, finished_at, run_id, detail"

    /// The columns of `provider_records` both backends select and decode.
    package static let providerRecordColumns = "key, value, updated_at"

    /// The columns of `probe_results` both backends select and decode.
    package static let probeResultColumns = "probe, summary, reachable, expected, detail, at"

    /// The columns of `leases` both backends select and decode.
    package static let leaseColumns = "key, run_id, owner, expires_at"

    /// The columns of `leader_leases` both backends select and decode.
    package static let leaderLeaseColumns = "name, holder, acquired_at, renewed_at, expires_at, transitions"

    /// Takes or renews a leader lease, with placeholders `name, holder, now, expires` written
    /// by `placeholder(n)` and `now` the store clock's expression: an insert, or an update of
    /// a row that is the holder's or expired. `SET` reads the row as it was, so the
    /// acquisition time and the transition count change only when the holder does.
    package static func campaignStatement(_ placeholder: (Int) -> String) -> String {
        """
        INSERT INTO leader_leases (name, holder, acquired_at, renewed_at, expires_at, transitions)
        VALUES (\(placeholder(1)), \(placeholder(2)), \(placeholder(3)), \(placeholder(3)), \(placeholder(4)), 0)
        ON CONFLICT (name) DO UPDATE SET
            acquired_at = CASE WHEN leader_leases.holder = excluded.holder THEN leader_leases.acquired_at ELSE excluded.acquired_at END,
            transitions = CASE WHEN leader_leases.holder = excluded.holder THEN leader_leases.transitions
                ELSE leader_leases.transitions + 1 END,
            holder = excluded.holder, renewed_at = excluded.renewed_at, expires_at = excluded.expires_at
        WHERE leader_leases.holder = excluded.holder OR leader_leases.expires_at <= excluded.renewed_at
        """
    }
}
