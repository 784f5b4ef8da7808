import ArgumentParser
import ConvergeWorkflow

/// How a run behaves when steps fail or resources are busy.
struct WorkflowOptionsGroup: ParsableArguments {
    @Flag(help: "When a step fails for good, keep what was done instead of rolling back.")
    var noRollback = false

    @Option(help: "Attempts per step for transient failures (engine busy, connection reset, 5xx).")
    var retryAttempts: Int = RetryPolicy.standard.maximumAttempts

    @Option(help: "Seconds before the first retry; doubles each time.")
    var retryDelay: Double = RetryPolicy.standard.initialDelay

    @Option(help: "Longest wait between retries, in seconds.")
    var retryMaxDelay: Double = RetryPolicy.standard.maximumDelay

    @Option(help: "Seconds to wait for resources another run holds.")
    var lockTimeout: Double = 60

    @Option(help: "Seconds a run's leases live without renewal (how long a crashed run blocks others).")
    var leaseTTL: Double = 30

    var options: WorkflowOptions {
        WorkflowOptions(
            rollback: !noRollback,
            retry: RetryPolicy(initialDelay: retryDelay, multiplier: 2, maximumDelay: retryMaxDelay, maximumAttempts: retryAttempts),
            leaseSeconds: leaseTTL, lockTimeoutSeconds: lockTimeout)
    }
}
