import Foundation

/// Where reconcile runs are journaled: one row per run, one per step, approvals and leases.
///
/// Two backends share this contract and one schema: SQLite (embedded, the CLI default) and
/// PostgreSQL (several processes or replicas sharing work). Every method is a short
/// transaction; nothing is held open between calls, so a process killed at any moment leaves
/// the journal consistent.
public protocol WorkflowStore: Sendable {
    /// Creates or upgrades the schema (versioned migrations, each applied once).
    func migrate() async throws

    /// Records a new run and returns it with its id.
    func createRun(_ run: NewRun) async throws -> RunRecord
    func run(_ id: Int64) async throws -> RunRecord?
    /// Runs, newest first.
    func runs(_ filter: RunFilter) async throws -> [RunRecord]
    /// Sets a run's status (and error text; nil clears it); `finished` stamps its end time,
    /// otherwise the end time is cleared (a resumed run is not finished). `StoreError.runNotFound`
    /// when there is no such run.
    func updateRun(_ id: Int64, status: RunStatus, error: String?, finished: Bool) async throws

    /// Inserts or replaces the journal row of one step of a run, keyed by (run, step index).
    /// Times are kept to the millisecond (`Date.storeRounded`). `StoreError.runNotFound` when
    /// the run does not exist.
    func recordStep(_ step: StepRecord) async throws
    /// The journal of a run, by step index.
    func steps(run: Int64) async throws -> [StepRecord]

    func recordApproval(_ approval: ApprovalRecord) async throws
    func approvals(run: Int64) async throws -> [ApprovalRecord]

    /// Replaces the probe results recorded for a run (the checks run after it).
    func recordProbeResults(run: Int64, _ results: [ProbeRecord]) async throws
    func probeResults(run: Int64) async throws -> [ProbeRecord]

    /// Sets the provider record `key` of `instance` (inserted or replaced).
    func putRecord(instance: String, key: String, value: String) async throws
    /// The provider records of `instance` whose key starts with `prefix`, by key.
    func records(instance: String, prefix: String) async throws -> [ProviderRecord]
    /// Removes the provider record `key` of `instance`, if there is one.
    func removeRecord(instance: String, key: String) async throws

    /// Records `firing` unless its due time of its schedule is already recorded; true when this
    /// call recorded it. Among processes firing the same schedule, exactly one wins each time.
    func claimFiring(_ firing: FiringRecord) async throws -> Bool
    /// Replaces the state of a recorded firing (status, times, run, detail).
    func updateFiring(_ firing: FiringRecord) async throws
    /// The firings of `instance` (of `schedule` when given, with one of `statuses` when given),
    /// newest due time first, at most `limit`.
    func firings(instance: String, schedule: String?, statuses: Set<FiringStatus>?, limit: Int) async throws -> [FiringRecord]

    /// Takes every lease in `keys` for `run` atomically, or none: a key is free when it has
    /// no lease, its lease expired, or it is already this run's. Otherwise reports a holder.
    func acquireLeases(_ keys: [String], run: Int64, owner: String, ttl: Duration) async throws -> LeaseOutcome
    /// Pushes the expiry of every lease of `run` held by `owner`; false when one was lost, and
    /// then nothing is renewed: the run has no lease for `owner`, or one of its leases expired
    /// (another run may have taken it) or passed to another owner. Renew well within the TTL.
    func renewLeases(run: Int64, owner: String, ttl: Duration) async throws -> Bool
    func releaseLeases(run: Int64) async throws
    /// Live leases, for reports and diagnostics.
    func leases() async throws -> [LeaseRecord]

    /// Claims one interrupted run of `instance` for `owner`, atomically, so that among several
    /// processes looking for work exactly one gets each run: the oldest run in `running` or
    /// `rolling_back` none of whose leases is live (its process died or stalled past the TTL)
    /// gets a lease with key ``runLeaseKey(_:)`` for `owner`, and is returned. Nil when there is
    /// nothing to resume. The caller then re-acquires the run's resource leases (same run: free).
    func claimResumableRun(instance: String, owner: String, ttl: Duration) async throws -> RunRecord?

    /// Takes the leader lease `name` for `holder`, or renews it, when it is free, expired or
    /// already `holder`'s; returns the lease as it stands afterwards (held by `holder` or by
    /// another). Expiry is judged by the store's clock, so replicas on hosts whose clocks
    /// drift still agree.
    func campaign(for name: String, holder: String, ttl: Duration) async throws -> LeaderLease
    /// Ends `holder`'s lease `name` at once, so a successor need not wait for it to expire;
    /// does nothing when another holds it.
    func resign(_ name: String, holder: String) async throws
}

/// The lease key `claimResumableRun` takes for a run: `run/<id>`.
public func runLeaseKey(_ run: Int64) -> String { "run/\(run)" }

extension Date {
    /// Milliseconds since 1970, how both backends store time (integers: no time zones, and
    /// identical in SQLite and PostgreSQL). Rounded to the nearest millisecond so that a value
    /// read back converts to the same integer again.
    public var storeMilliseconds: Int64 {
        Int64((timeIntervalSince1970 * 1000).rounded())
    }

    /// A date from the store's milliseconds since 1970.
    public init(storeMilliseconds ms: Int64) {
        self.init(timeIntervalSince1970: Double(ms) / 1000)
    }

    /// This date as the store will return it: rounded to the millisecond.
    public var storeRounded: Date { Date(storeMilliseconds: storeMilliseconds) }
}

extension Duration {
    /// Whole milliseconds (rounded down, at least 0), for lease expiries.
    public var storeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        let ms = seconds.multipliedReportingOverflow(by: 1000)
        if ms.overflow { return seconds < 0 ? 0 : Int64.max / 2 }
        return max(0, ms.partialValue + attoseconds / 1_000_000_000_000_000)
    }
}

public enum RunStatus: String, Sendable, Codable, CaseIterable {
    /// Created; leases not yet taken.
    case pending
    /// Stopped until `converge approve` or `converge reject`.
    case awaitingApproval = "awaiting_approval"
    case running
    case succeeded
    /// Failed with `--no-rollback`: what was done stays.
    case failed
    case rollingBack = "rolling_back"
    case rolledBack = "rolled_back"
    /// A compensation failed; each failure is listed in the steps.
    case rollbackFailed = "rollback_failed"
    case rejected
    /// A newer plan for the same resources replaced it before it ran.
    case superseded

    /// True when the run will not change state any more.
    public var isFinal: Bool {
        switch self {
        case .succeeded, .failed, .rolledBack, .rollbackFailed, .rejected, .superseded: return true
        case .pending, .awaitingApproval, .running, .rollingBack: return false
        }
    }

    /// Final and not a success: what `converge runs --failed` lists.
    public var isFailure: Bool {
        [.failed, .rolledBack, .rollbackFailed].contains(self)
    }
}

/// What a caller provides to start a run.
public struct NewRun: Sendable {
    public var instance: String
    public var repository: String
    public var commit: String?
    public var planDigest: String
    /// The plan as JSON (`Plan`'s documented schema): a resumed run executes exactly this.
    public var planJSON: String
    public var status: RunStatus
    /// `host:pid` of the process that created it.
    public var executor: String
    public var convergeVersion: String
    /// Options the run was started with (JSON), e.g. `{"rollback":true}`.
    public var optionsJSON: String
    /// The manifest files the plan was computed from (JSON list of `{path, base64}`): a run
    /// resumed by another process decodes exactly the desired state it started with.
    public var manifestsJSON: String

    public init(
        instance: String, repository: String, commit: String?, planDigest: String, planJSON: String,
        status: RunStatus, executor: String, convergeVersion: String, optionsJSON: String = "{}",
        manifestsJSON: String = "[]"
    ) {
        self.instance = instance
        self.repository = repository
        self.commit = commit
        self.planDigest = planDigest
        self.planJSON = planJSON
        self.status = status
        self.executor = executor
        self.convergeVersion = convergeVersion
        self.optionsJSON = optionsJSON
        self.manifestsJSON = manifestsJSON
    }
}

public struct RunRecord: Sendable, Codable, Equatable {
    public var id: Int64
    public var instance: String
    public var repository: String
    public var commit: String?
    public var planDigest: String
    public var planJSON: String
    public var status: RunStatus
    public var executor: String
    public var convergeVersion: String
    public var optionsJSON: String
    public var manifestsJSON: String
    public var error: String?
    public var createdAt: Date
    public var updatedAt: Date
    public var finishedAt: Date?

    public init(
        id: Int64, instance: String, repository: String, commit: String?, planDigest: String, planJSON: String,
        status: RunStatus, executor: String, convergeVersion: String, optionsJSON: String, manifestsJSON: String,
        error: String?, createdAt: Date, updatedAt: Date, finishedAt: Date?
    ) {
        self.id = id
        self.instance = instance
        self.repository = repository
        self.commit = commit
        self.planDigest = planDigest
        self.planJSON = planJSON
        self.status = status
        self.executor = executor
        self.convergeVersion = convergeVersion
        self.optionsJSON = optionsJSON
        self.manifestsJSON = manifestsJSON
        self.error = error
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.finishedAt = finishedAt
    }
}

public struct RunFilter: Sendable {
    public var statuses: Set<RunStatus>?
    public var instance: String?
    public var limit: Int

    public init(statuses: Set<RunStatus>? = nil, instance: String? = nil, limit: Int = 100) {
        self.statuses = statuses
        self.instance = instance
        self.limit = limit
    }
}

public enum StepStatus: String, Sendable, Codable, CaseIterable {
    /// Started and not finished: after a crash it is run again (steps are idempotent).
    case running
    case succeeded
    case failed
    /// Its compensation ran during rollback.
    case compensated
    case compensationFailed = "compensation_failed"
}

/// One row of the journal: the last known state of one step of one run.
public struct StepRecord: Sendable, Codable, Equatable {
    public var runID: Int64
    public var index: Int
    /// `Kind/name` of the resource the step acts on.
    public var resource: String
    /// create, update or delete.
    public var action: String
    public var status: StepStatus
    public var attempts: Int
    public var startedAt: Date?
    public var finishedAt: Date?
    /// What the step recorded for its compensation (the object's state before it), as JSON.
    public var output: String?
    public var error: String?
    /// The Converge version that ran it (runs can outlive an upgrade).
    public var convergeVersion: String
    /// What the step reports it did, as JSON in its provider's shape (a playbook's result per
    /// host); nil for steps whose outcome is all in their status.
    public var report: String?
    /// The worker that ran it (`converge worker`'s id), nil when the run's own process did.
    public var worker: String?

    public init(
        runID: Int64, index: Int, resource: String, action: String, status: StepStatus, attempts: Int,
        startedAt: Date?, finishedAt: Date?, output: String?, error: String?, convergeVersion: String, report: String? = nil,
        worker: String? = nil
    ) {
        self.runID = runID
        self.index = index
        self.resource = resource
        self.action = action
        self.status = status
        self.attempts = attempts
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.output = output
        self.error = error
        self.convergeVersion = convergeVersion
        self.report = report
        self.worker = worker
    }
}

public enum ApprovalDecision: String, Sendable, Codable {
    case approved, rejected
}

/// A person's decision on a run, bound to the digest of the plan they reviewed.
public struct ApprovalRecord: Sendable, Codable, Equatable {
    public var runID: Int64
    public var planDigest: String
    public var decision: ApprovalDecision
    public var approver: String
    public var comment: String
    public var at: Date
    /// The forge object the decision was given on (`GitHub review 8812 on acme/infra#42`),
    /// nil when it was given to Converge directly (CLI, API).
    public var via: String?
    /// The step the decision lets start (or not) in a run already under way: a rollout's
    /// switch, a pipeline's next wave. Nil for a decision on the whole plan, before it starts.
    public var step: Int?

    public init(
        runID: Int64, planDigest: String, decision: ApprovalDecision, approver: String, comment: String, at: Date, via: String? = nil,
        step: Int? = nil
    ) {
        self.runID = runID
        self.planDigest = planDigest
        self.decision = decision
        self.approver = approver
        self.comment = comment
        self.at = at
        self.via = via
        self.step = step
    }
}

/// One probe's outcome after a run: what was checked, whether it answered, whether that was
/// expected.
public struct ProbeRecord: Sendable, Codable, Equatable {
    public var probe: String
    public var summary: String
    public var reachable: Bool
    public var expected: Bool
    public var detail: String
    public var at: Date

    public init(probe: String, summary: String, reachable: Bool, expected: Bool, detail: String, at: Date) {
        self.probe = probe
        self.summary = summary
        self.reachable = reachable
        self.expected = expected
        self.detail = detail
        self.at = at
    }

    public var passed: Bool { reachable == expected }
}

/// Where one due time of a schedule stands.
public enum FiringStatus: String, Sendable, Codable, CaseIterable {
    /// Claimed; its run is about to start.
    case pending
    case running
    case completed
    case failed
    /// Not started: past its starting deadline (an outage), or an earlier time a later one
    /// superseded. Never caught up.
    case missed
    /// Not started: the previous run was still going (`concurrencyPolicy: Forbid`).
    case skipped
    /// Stopped for a newer due time (`concurrencyPolicy: Replace`).
    case replaced

    public var isFinal: Bool { self != .pending && self != .running }
}

/// One due time of one schedule: who claimed it, what became of it, and its run.
public struct FiringRecord: Sendable, Codable, Equatable {
    public var instance: String
    /// The scheduled resource (`ScheduledPlaybook/nightly`).
    public var schedule: String
    public var dueAt: Date
    public var status: FiringStatus
    /// `host:pid` of the process that claimed it.
    public var owner: String
    public var claimedAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// The journaled run it started (`converge runs show`).
    public var runID: Int64?
    /// Why it was missed or skipped, or its outcome in one line.
    public var detail: String?

    public init(
        instance: String, schedule: String, dueAt: Date, status: FiringStatus, owner: String, claimedAt: Date, startedAt: Date? = nil,
        finishedAt: Date? = nil, runID: Int64? = nil, detail: String? = nil
    ) {
        self.instance = instance
        self.schedule = schedule
        self.dueAt = dueAt
        self.status = status
        self.owner = owner
        self.claimedAt = claimedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.runID = runID
        self.detail = detail
    }
}

/// What a provider keeps about an object the live system cannot be asked about (the inputs a
/// playbook last ran with), under a key of its own (`PlaybookRun/site`), per instance.
public struct ProviderRecord: Sendable, Codable, Equatable {
    public var key: String
    /// JSON, in a shape the provider owns.
    public var value: String
    public var updatedAt: Date

    public init(key: String, value: String, updatedAt: Date) {
        self.key = key
        self.value = value
        self.updatedAt = updatedAt
    }
}

/// One resource's lease: which run holds it, for which process, until when.
public struct LeaseRecord: Sendable, Codable, Equatable {
    public var key: String
    public var runID: Int64
    public var owner: String
    public var expiresAt: Date

    public init(key: String, runID: Int64, owner: String, expiresAt: Date) {
        self.key = key
        self.runID = runID
        self.owner = owner
        self.expiresAt = expiresAt
    }
}

public enum LeaseOutcome: Sendable, Equatable {
    case acquired
    /// The first key found held by another run, and its lease.
    case held(LeaseRecord)
}

/// The lease that makes one replica of a controller its leader.
public struct LeaderLease: Sendable, Codable, Equatable {
    public var name: String
    public var holder: String
    /// When `holder` took it (renewals keep it).
    public var acquiredAt: Date
    public var renewedAt: Date
    public var expiresAt: Date
    /// How many times the lease passed from one holder to another.
    public var transitions: Int

    public init(name: String, holder: String, acquiredAt: Date, renewedAt: Date, expiresAt: Date, transitions: Int) {
        self.name = name
        self.holder = holder
        self.acquiredAt = acquiredAt
        self.renewedAt = renewedAt
        self.expiresAt = expiresAt
        self.transitions = transitions
    }
}
