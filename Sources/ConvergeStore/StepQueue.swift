import Foundation

/// The work queue through which workers run steps where their targets are (PostgreSQL only:
/// many processes on many hosts claim from it). A step to run remotely becomes a job of its
/// target's pool; a worker of that pool claims it (`FOR UPDATE SKIP LOCKED`) with a lease its
/// heartbeat renews, runs it, and writes its outcome. Each claim increments the job's
/// `attempt`, which is the claim's fencing token: a write that carries an older one (from a
/// worker that lost its lease) is refused, so an outcome is recorded once even when the step
/// ran twice.
public protocol StepQueue: WorkflowStore {
    /// Records a worker (or, for a known id, its restart) as alive now.
    func registerWorker(_ worker: WorkerRegistration) async throws
    /// Marks the worker alive and extends the lease of every job it holds by `lease`; returns
    /// how many it holds. Jobs whose lease ran out before are no longer its own.
    func heartbeat(worker: String, lease: Duration) async throws -> Int
    /// Marks a worker stopped (a clean shutdown); its jobs, if any, are released at once.
    func deregisterWorker(_ id: String) async throws
    /// Every worker ever registered, most recent heartbeat first, with the jobs each holds.
    func workers() async throws -> [WorkerRecord]

    /// Adds a job and wakes the pool's idle workers. A job already queued for the same step
    /// and kind of the same run is returned instead (the enqueuing process resumed).
    func enqueue(_ job: NewStepJob) async throws -> StepJobRecord
    /// Claims up to `limit` jobs of `pool` that are queued, or claimed by a worker whose lease
    /// ran out, whose plan format the worker can run (`planFormat` at most the worker's);
    /// each claim increments the job's attempt.
    func claim(pool: String, worker: String, version: String, planFormat: Int, limit: Int, lease: Duration) async throws -> [StepJobRecord]
    /// Records the snapshot a worker took before its job acted (fenced by `attempt`).
    func recordJobSnapshot(job: Int64, attempt: Int, snapshot: String?) async throws
    /// Records the job's outcome, fenced by `attempt`: throws `StoreError.staleClaim` when the
    /// job was claimed again since (or already finished).
    func complete(job: Int64, attempt: Int, outcome: StepJobOutcome) async throws
    func job(_ id: Int64) async throws -> StepJobRecord?
    /// The jobs of run `id`, in the order they were queued.
    func jobs(run id: Int64) async throws -> [StepJobRecord]
    /// Records that job `job`'s envelope used `nonce`; false when another job used it before (a
    /// replayed envelope). The same job's next claim (a takeover) may use it again.
    func useNonce(_ nonce: String, job: Int64) async throws -> Bool

    /// Runs `body` with the notifications of the queue (`jobs:<pool>` when a job is queued,
    /// `done:<job id>` when one finishes) as they arrive, over a connection held meanwhile.
    func withQueueNotifications<T: Sendable>(_ body: (AsyncStream<String>) async throws -> T) async throws -> T
}

/// A worker as it announces itself.
public struct WorkerRegistration: Sendable, Equatable {
    public var id: String
    public var pool: String
    /// Its Converge version, shown and recorded on the steps it runs.
    public var version: String
    /// The newest plan format it can run; runs made with a newer one are left to others.
    public var planFormat: Int
    public var host: String
    public var concurrency: Int

    public init(id: String, pool: String, version: String, planFormat: Int, host: String, concurrency: Int) {
        self.id = id
        self.pool = pool
        self.version = version
        self.planFormat = planFormat
        self.host = host
        self.concurrency = concurrency
    }
}

/// A worker as the store knows it.
public struct WorkerRecord: Sendable, Equatable {
    public var registration: WorkerRegistration
    public var startedAt: Date
    public var heartbeatAt: Date
    /// Set by a clean shutdown.
    public var stoppedAt: Date?
    /// Jobs it holds now (claimed, lease not run out).
    public var inFlight: Int

    public init(registration: WorkerRegistration, startedAt: Date, heartbeatAt: Date, stoppedAt: Date?, inFlight: Int) {
        self.registration = registration
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
        self.stoppedAt = stoppedAt
        self.inFlight = inFlight
    }
}

/// What a job asks a worker to do with its step.
public enum StepJobKind: String, Sendable, Codable {
    /// Take the step's snapshot, then carry the step out.
    case execute
    /// Undo the step, from the snapshot the job carries.
    case compensate
}

public enum StepJobStatus: String, Sendable, Codable {
    case queued, claimed, succeeded, failed
}

/// A job to queue.
public struct NewStepJob: Sendable {
    public var runID: Int64
    public var stepIndex: Int
    public var kind: StepJobKind
    public var pool: String
    /// The plan format of the run: only workers that know it claim the job.
    public var planFormat: Int
    /// The signed envelope, as JSON.
    public var envelope: String
    /// The snapshot a compensation starts from (nil for an execution).
    public var snapshot: String?

    public init(runID: Int64, stepIndex: Int, kind: StepJobKind, pool: String, planFormat: Int, envelope: String, snapshot: String?) {
        self.runID = runID
        self.stepIndex = stepIndex
        self.kind = kind
        self.pool = pool
        self.planFormat = planFormat
        self.envelope = envelope
        self.snapshot = snapshot
    }
}

/// A job as the store holds it.
public struct StepJobRecord: Sendable, Equatable {
    public var id: Int64
    public var runID: Int64
    public var stepIndex: Int
    public var kind: StepJobKind
    public var pool: String
    public var planFormat: Int
    public var envelope: String
    public var status: StepJobStatus
    /// How many times it was claimed: the current claim's fencing token.
    public var attempt: Int
    public var worker: String?
    public var workerVersion: String?
    public var leasedUntil: Date?
    public var enqueuedAt: Date
    public var claimedAt: Date?
    public var finishedAt: Date?
    /// The snapshot the step took before it acted (execute), or the one to undo from (compensate).
    public var snapshot: String?
    public var report: String?
    public var error: String?

    public init(
        id: Int64, runID: Int64, stepIndex: Int, kind: StepJobKind, pool: String, planFormat: Int, envelope: String,
        status: StepJobStatus, attempt: Int, worker: String?, workerVersion: String?, leasedUntil: Date?, enqueuedAt: Date,
        claimedAt: Date?, finishedAt: Date?, snapshot: String?, report: String?, error: String?
    ) {
        self.id = id
        self.runID = runID
        self.stepIndex = stepIndex
        self.kind = kind
        self.pool = pool
        self.planFormat = planFormat
        self.envelope = envelope
        self.status = status
        self.attempt = attempt
        self.worker = worker
        self.workerVersion = workerVersion
        self.leasedUntil = leasedUntil
        self.enqueuedAt = enqueuedAt
        self.claimedAt = claimedAt
        self.finishedAt = finishedAt
        self.snapshot = snapshot
        self.report = report
        self.error = error
    }
}

/// How a job ended, as its worker reports it.
public struct StepJobOutcome: Sendable, Equatable {
    public var succeeded: Bool
    public var report: String?
    /// Why it failed; for a refused envelope, the reason it was refused. (The worker has
    /// retried what could pass already.)
    public var error: String?

    public init(succeeded: Bool, report: String? = nil, error: String? = nil) {
        self.succeeded = succeeded
        self.report = report
        self.error = error
    }
}

/// The channel the queue's notifications go through.
public enum StepQueueChannel {
    public static let name = "converge_step_jobs"
    public static func queued(pool: String) -> String { "jobs:\(pool)" }
    /// What precedes the job's id in a finished job's notification (`done:<id>`).
    public static let donePrefix = "done:"
}
