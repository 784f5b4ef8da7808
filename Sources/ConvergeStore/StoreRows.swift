import Foundation

/// One result row, read by column name whatever the backend: SQLite's and PostgreSQL's rows
/// both conform, so every record is decoded by one initializer (`StoreRowDecodable`) for both.
package protocol StoreRow {
    func int64(_ column: String) throws -> Int64
    func optionalInt64(_ column: String) throws -> Int64?
    func string(_ column: String) throws -> String
    func optionalString(_ column: String) throws -> String?
    /// A truth value: a PostgreSQL `BOOLEAN`, a SQLite integer (0 is false).
    func bool(_ column: String) throws -> Bool
}

extension StoreRow {
    package func int(_ column: String) throws -> Int { Int(truncatingIfNeeded: try int64(column)) }

    /// A time stored as milliseconds since 1970 (`Date.storeMilliseconds`).
    package func date(_ column: String) throws -> Date { Date(storeMilliseconds: try int64(column)) }

    package func optionalDate(_ column: String) throws -> Date? {
        try optionalInt64(column).map(Date.init(storeMilliseconds:))
    }
}

extension StoreRow {
    /// A column holding one of `Value`'s raw values (a status, a decision). A text this build
    /// does not know fails `operation`, naming it `what` and, when `newer`, the likely cause.
    fileprivate func enumeration<Value: RawRepresentable<String>>(
        _ column: String, _ what: String, operation: @autoclosure () -> String, newer: Bool = true
    ) throws -> Value {
        let text = try string(column)
        guard let value = Value(rawValue: text) else {
            let cause = newer ? " (written by a newer Converge?)" : ""
            throw StoreError.database(operation: operation(), message: "unknown \(what) '\(text)'\(cause)")
        }
        return value
    }
}

extension StoreError {
    /// A row lacked a column its decoder reads: the query and the decoder disagree.
    package static func missingColumn(_ column: String) -> StoreError {
        .database(operation: "read a row", message: "the result has no column '\(column)'")
    }
}

/// A record read from a row selected with its `WorkflowSchema` column list.
package protocol StoreRowDecodable {
    init(row: some StoreRow) throws
}

extension RunRecord: StoreRowDecodable {
    /// Columns: `WorkflowSchema.runColumns`.
    package init(row: some StoreRow) throws {
        let id = try row.int64("id")
        let status: RunStatus = try row.enumeration("status", "run status", operation: "read run \(id)")
        self.init(
            id: id, instance: try row.string("instance"), repository: try row.string("repository"),
            commit: try row.optionalString("commit_id"), planDigest: try row.string("plan_digest"),
            planJSON: try row.string("plan_json"), status: status, executor: try row.string("executor"),
            convergeVersion: try row.string("converge_version"), optionsJSON: try row.string("options_json"),
            manifestsJSON: try row.string("manifests_json"), error: try row.optionalString("error"),
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"),
            finishedAt: try row.optionalDate("finished_at"))
    }
}

extension StepRecord: StoreRowDecodable {
    /// Columns: `WorkflowSchema.stepColumns`.
    package init(row: some StoreRow) throws {
        let runID = try row.int64("run_id")
        let status: StepStatus = try row.enumeration("status", "step status", operation: "read steps of run \(runID)")
        self.init(
            runID: runID, index: try row.int("step_index"), resource: try row.string("resource"),
            action: try row.string("action"), status: status, attempts: try row.int("attempts"),
            startedAt: try row.optionalDate("started_at"), finishedAt: try row.optionalDate("finished_at"),
            output: try row.optionalString("output"), error: try row.optionalString("error"),
            convergeVersion: try row.string("converge_version"), report: try row.optionalString("report"),
            worker: try row.optionalString("worker"))
    }
}

extension ApprovalRecord: StoreRowDecodable {
    /// Columns: `WorkflowSchema.approvalColumns`.
    package init(row: some StoreRow) throws {
        let runID = try row.int64("run_id")
        let decision: ApprovalDecision = try row.enumeration(
            "decision", "decision", operation: "read approvals of run \(runID)", newer: false)
        self.init(
            runID: runID, planDigest: try row.string("plan_digest"), decision: decision, approver: try row.string("approver"),
            comment: try row.string("comment"), at: try row.date("at"), via: try row.optionalString("via"),
            step: try row.optionalInt64("step").map { Int($0) })
    }
}

extension ProbeRecord: StoreRowDecodable {
    /// Columns: `WorkflowSchema.probeResultColumns`.
    package init(row: some StoreRow) throws {
        self.init(
            probe: try row.string("probe"), summary: try row.string("summary"), reachable: try row.bool("reachable"),
            expected: try row.bool("expected"), detail: try row.string("detail"), at: try row.date("at"))
    }
}

extension FiringRecord: StoreRowDecodable {
    /// Columns: `WorkflowSchema.firingColumns`.
    package init(row: some StoreRow) throws {
        self.init(
            instance: try row.string("instance"), schedule: try row.string("schedule"), dueAt: try row.date("due_at"),
            status: try row.enumeration("status", "firing status", operation: "read schedule firings"), owner: try row.string("owner"),
            claimedAt: try row.date("claimed_at"), startedAt: try row.optionalDate("started_at"), finishedAt: try row.optionalDate("finished_at"),
            runID: try row.optionalInt64("run_id"), detail: try row.optionalString("detail"))
    }
}

extension ProviderRecord: StoreRowDecodable {
    /// Columns: `WorkflowSchema.providerRecordColumns`.
    package init(row: some StoreRow) throws {
        self.init(key: try row.string("key"), value: try row.string("value"), updatedAt: try row.date("updated_at"))
    }
}

extension LeaseRecord: StoreRowDecodable {
    /// Columns: `WorkflowSchema.leaseColumns`.
    package init(row: some StoreRow) throws {
        self.init(
            key: try row.string("key"), runID: try row.int64("run_id"), owner: try row.string("owner"),
            expiresAt: try row.date("expires_at"))
    }
}

extension LeaderLease: StoreRowDecodable {
    /// Columns: `WorkflowSchema.leaderLeaseColumns`.
    package init(row: some StoreRow) throws {
        self.init(
            name: try row.string("name"), holder: try row.string("holder"), acquiredAt: try row.date("acquired_at"),
            renewedAt: try row.date("renewed_at"), expiresAt: try row.date("expires_at"), transitions: try row.int("transitions"))
    }
}

/// What renewing needs to know of one of a run's leases: its owner, and whether it is still
/// live by the store's clock (a column `live`, `expires_at` compared with now in the query, so
/// each backend judges expiry by the clock it trusts).
package struct LeaseStanding: StoreRowDecodable {
    package var owner: String
    package var isLive: Bool

    package init(row: some StoreRow) throws {
        owner = try row.string("owner")
        isLive = try row.bool("live")
    }

    /// The renewal rule: `owner` may push the expiry of a run's leases only when the run has
    /// some and every one is live and `owner`'s. Otherwise nothing is renewed: a lease that
    /// expired may already be another run's (or become one's), and one that passed to another
    /// owner is not this process's to extend.
    package static func mayRenew(_ leases: [LeaseStanding], owner: String) -> Bool {
        !leases.isEmpty && leases.allSatisfy { $0.owner == owner && $0.isLive }
    }
}

extension StepJobRecord: StoreRowDecodable {
    /// Columns: `WorkflowSchema.stepJobColumns`.
    package init(row: some StoreRow) throws {
        let id = try row.int64("id")
        let operation = "read job \(id)"
        self.init(
            id: id, runID: try row.int64("run_id"), stepIndex: try row.int("step_index"),
            kind: try row.enumeration("kind", "job kind", operation: operation), pool: try row.string("pool"),
            planFormat: try row.int("plan_format"), envelope: try row.string("envelope"),
            status: try row.enumeration("status", "job status", operation: operation), attempt: try row.int("attempt"),
            worker: try row.optionalString("worker"), workerVersion: try row.optionalString("worker_version"),
            leasedUntil: try row.optionalDate("leased_until"), enqueuedAt: try row.date("enqueued_at"),
            claimedAt: try row.optionalDate("claimed_at"), finishedAt: try row.optionalDate("finished_at"),
            snapshot: try row.optionalString("snapshot"), report: try row.optionalString("report"), error: try row.optionalString("error"))
    }
}

extension WorkerRecord: StoreRowDecodable {
    /// Columns: `WorkflowSchema.workerColumns`, and `in_flight`.
    package init(row: some StoreRow) throws {
        self.init(
            registration: WorkerRegistration(
                id: try row.string("id"), pool: try row.string("pool"), version: try row.string("version"),
                planFormat: try row.int("plan_format"), host: try row.string("host"), concurrency: try row.int("concurrency")),
            startedAt: try row.date("started_at"), heartbeatAt: try row.date("heartbeat_at"), stoppedAt: try row.optionalDate("stopped_at"),
            inFlight: try row.int("in_flight"))
    }
}
