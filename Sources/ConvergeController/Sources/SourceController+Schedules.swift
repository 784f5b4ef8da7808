import ConvergeCore
import ConvergeRuntime
import ConvergeStore
import Foundation

extension SourceController {
    /// Fires the source's schedules on time while this replica leads: sleeps until the next due
    /// time (rechecking at least every `recheck`, for a new commit or leadership), then claims
    /// what is due and runs each firing beside the source's queue. Every replica may try: the
    /// store gives each due time to one of them.
    func runSchedules(recheck: Duration = .seconds(5)) async {
        let scheduler = Scheduler(runtime: runtime, store: store, options: options)
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                let loaded = self.loaded
                if gate.closedReason() == nil, !configuration.suspend, let loaded {
                    do {
                        let pass = try await scheduler.due(in: loaded.set)
                        for firing in pass.firings {
                            group.addTask { [self] in await fire(firing, with: scheduler, loaded: loaded) }
                        }
                        for firing in pass.recorded {
                            metrics.fired(source: configuration.name, schedule: firing.schedule, status: firing.status.rawValue)
                            logger.warning(
                                "\(firing.schedule) due \(Scheduler.stamp(firing.dueAt)) \(firing.status.rawValue): \(firing.detail ?? "")")
                        }
                    } catch {
                        logger.error("schedules: \(error)")
                    }
                }
                let next = loaded.flatMap { Scheduler.nextDue(in: $0.set, after: Date()) }
                let wait = min(next.map { $0.timeIntervalSinceNow } ?? recheck.timeInterval, recheck.timeInterval)
                // Just past the due time, so the pass that wakes finds it due.
                try? await Task.sleep(for: .milliseconds(Int64(max(0, wait) * 1000) + 5))
            }
        }
    }

    private func fire(
        _ firing: Scheduler.Firing, with scheduler: Scheduler, loaded: (set: ManifestSet, files: [SourceFile], revision: SourceRevision)
    ) async {
        metrics.firingStarted(
            source: configuration.name, delay: .milliseconds(Int64(max(0, Date().timeIntervalSince(firing.record.dueAt)) * 1000)))
        logger.info("\(firing.resource) due \(Scheduler.stamp(firing.record.dueAt)): starting")
        let record = await scheduler.run(firing, in: loaded.set, files: loaded.files, revision: loaded.revision)
        metrics.fired(source: configuration.name, schedule: record.schedule, status: record.status.rawValue)
        let line =
            "\(firing.resource) due \(Scheduler.stamp(record.dueAt)): \(record.status.rawValue)\(record.runID.map { " (run \($0))" } ?? "")"
        if record.status == .failed { logger.error("\(line): \(record.detail ?? "")") } else { logger.info("\(line)") }
    }
}
