/// How a failing step is tried again: exponential backoff with jitter, transient errors only.
public struct RetryPolicy: Sendable, Codable, Equatable {
    /// Wait before the second attempt, in seconds.
    public var initialDelay: Double
    public var multiplier: Double
    /// Cap on any one wait, in seconds.
    public var maximumDelay: Double
    /// Attempts in all, the first included.
    public var maximumAttempts: Int

    public static let standard = RetryPolicy(initialDelay: 1, multiplier: 2, maximumDelay: 60, maximumAttempts: 5)

    public init(initialDelay: Double, multiplier: Double, maximumDelay: Double, maximumAttempts: Int) {
        self.initialDelay = initialDelay
        self.multiplier = multiplier
        self.maximumDelay = maximumDelay
        self.maximumAttempts = max(1, maximumAttempts)
    }

    /// The wait after failed attempt `attempt` (1-based): the exponential delay, capped, then
    /// scaled by a random factor in [0.5, 1] so processes retrying together spread out.
    public func delay(afterAttempt attempt: Int, random: Double = Double.random(in: 0.5...1)) -> Double {
        var delay = initialDelay
        for _ in 1..<max(1, attempt) { delay = min(delay * multiplier, maximumDelay) }
        return min(delay, maximumDelay) * random
    }
}

/// What a run was started with; stored with the run so a resumed run behaves the same.
public struct WorkflowOptions: Sendable, Codable, Equatable {
    /// Undo finished steps when a step fails for good (`--no-rollback` turns it off).
    public var rollback: Bool
    public var retry: RetryPolicy
    /// How long a lease lives without renewal; a crashed holder blocks others this long at most.
    public var leaseSeconds: Double
    /// How long to wait for resources another run holds before giving up.
    public var lockTimeoutSeconds: Double

    public init(rollback: Bool = true, retry: RetryPolicy = .standard, leaseSeconds: Double = 30, lockTimeoutSeconds: Double = 60) {
        self.rollback = rollback
        self.retry = retry
        self.leaseSeconds = leaseSeconds
        self.lockTimeoutSeconds = lockTimeoutSeconds
    }
}
