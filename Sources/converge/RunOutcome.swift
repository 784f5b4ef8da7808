import ArgumentParser
import ConvergeRuntime
import ConvergeStore
import ConvergeWorkflow

/// How the CLI ends a command that drove a run: the last line, and the exit code.
enum RunOutcome {
    /// The last line of `converge reconcile`, `approve` and `runs resume`.
    static func line(_ run: RunRecord) -> String {
        switch run.status {
        case .succeeded: return "Run \(run.id) succeeded."
        case .awaitingApproval:
            return "Run \(run.id) is waiting for approval: converge approve \(run.id) --approver NAME (or converge reject \(run.id))."
        case .rolledBack: return "Run \(run.id) failed and was rolled back: \(run.error ?? "")"
        case .rollbackFailed:
            return "Run \(run.id) failed and its rollback failed too (see converge runs show \(run.id)):\n\(run.error ?? "")"
        case .failed: return "Run \(run.id) failed: \(run.error ?? "")"
        case .rejected: return "Run \(run.id) was rejected."
        case .superseded: return "Run \(run.id) was superseded: \(run.error ?? "")"
        case .pending, .running, .rollingBack: return "Run \(run.id) is \(run.status.rawValue)."
        }
    }

    /// 0 succeeded (or rejected, as asked), 3 waiting for approval, 1 anything that ended badly.
    static func exit(for run: RunRecord) throws {
        switch run.status {
        case .succeeded, .rejected, .pending, .running: return
        case .awaitingApproval: throw ExitCode(3)
        default: throw ExitCode(1)
        }
    }

    /// Loads run `id`, builds an engine for its instance, applies `action`, and reports the
    /// run's outcome (line on stderr, exit code).
    static func act(
        onRun id: Int64, runtime: Runtime, storage: StoreOptions, parallelism: Int,
        _ action: @escaping (WorkflowEngine) async throws -> RunRecord
    ) async throws {
        try await storage.with { store in
            guard let record = try await store.run(id) else { throw WorkflowError.noSuchRun(id) }
            let progress = ProgressReporter(live: Terminal.stderrIsTTY)
            let engine = runtime.engine(
                store: store, instance: record.instance, parallelism: parallelism, events: { progress.handle($0) },
                faults: FaultInjection.hook)
            let run = try await action(engine)
            progress.clear()
            Terminal.log(line(run))
            try exit(for: run)
        }
    }
}
