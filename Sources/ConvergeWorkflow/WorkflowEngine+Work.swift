import ConvergeCore
import ConvergeStore

/// What a worker does with a job: the acting part of one step of a run the engine journals
/// elsewhere.
extension WorkflowEngine {
    /// Run `run` as it was planned, with the live state of its targets observed now.
    public func plannedChange(of run: RunRecord) async throws -> Reconciler.PlannedChange {
        try await replan(run)
    }

    /// Carries out `kind` of step `index` here. An execution takes the step's snapshot first,
    /// unless an earlier claim of the job took one (`snapshot`), and hands it to `keep` before
    /// the step acts; a compensation undoes the step from `snapshot`. Errors that may pass are
    /// retried as the run's options say. Returns what the step reported.
    public func work(
        _ kind: StepJobKind, step index: Int, of run: RunRecord, planned: Reconciler.PlannedChange, snapshot: String?,
        keep: @Sendable (String?) async throws -> Void
    ) async throws -> String? {
        guard planned.plan.steps.indices.contains(index) else {
            throw WorkflowError.corruptJournal("run \(run.id) has no step \(index)")
        }
        let step = planned.plan.steps[index]
        let reconciler = try reconciler(for: planned.desired, instance: run.instance)
        let provider = try reconciler.provider(for: step.resource, in: planned)
        let retry = try Self.decode(WorkflowOptions.self, run.optionsJSON).retry
        let reporter = StepReporter()
        var attempt = 0
        if kind == .execute, snapshot == nil {
            try await keep(
                try await provider.snapshot(step, observed: planned.observed[step.resource], in: planned.desired, instance: run.instance))
        }
        while true {
            attempt += 1
            do {
                try await StepReporter.$current.withValue(reporter) {
                    switch kind {
                    case .execute: try await reconciler.execute(step, in: planned)
                    case .compensate: try await provider.compensate(step, snapshot: snapshot, instance: run.instance)
                    }
                }
                return reporter.reported
            } catch {
                let transient = (error as? any TransientClassifying)?.isTransient ?? false
                guard transient, attempt < retry.maximumAttempts, !Task.isCancelled else { throw error }
                try await clock.sleep(for: .milliseconds(Int64(retry.delay(afterAttempt: attempt) * 1000)))
            }
        }
    }
}

extension WorkflowEngine {
    /// The files a run's steps act from, as the journal keeps them: its manifests, and the
    /// files beside them (a playbook's, a container's `files`). A signed job pins them by digest.
    public static func files(of run: RunRecord) throws -> (manifests: [SourceFile], repositoryFiles: [SourceFile]) {
        try ManifestArchive.decode(run.manifestsJSON)
    }
}
