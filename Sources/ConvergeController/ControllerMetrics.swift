import ConvergeCore
import ConvergeWorkflow
import Prometheus
import Synchronization

/// The controller's Prometheus metrics, named in the style of controller-runtime and Flux
/// (`<prefix>_reconcile_total`, `_duration_seconds`), in a registry of its own.
///
/// A registry per controller, not swift-metrics' process-wide bootstrap: tests and the
/// benchmarks run several controllers in one process, each with its own figures.
public final class ControllerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    /// Each source's revision series, replaced when the revision moves (an `_info` gauge).
    private let revisions = Mutex<[String: Gauge]>([:])

    /// Buckets from 50 ms (an in-sync tick) to 10 minutes (a VM clone).
    private static let durationBuckets: [Duration] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600].map {
        .milliseconds(Int64($0 * 1000))
    }

    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "converge", metricName: metric, unitName: unit, helpText: help)
    }
    private static var reconcileTotal: MetricNameDescriptor { name("reconcile", "total", "Reconciles of a source by how they ended") }
    private static var reconcileDuration: MetricNameDescriptor {
        name("reconcile_duration", "seconds", "Time from the fetch of a source to the end of its reconcile")
    }
    private static var driftResources: MetricNameDescriptor {
        name("drift", "resources", "Resources whose live state differs from the source's applied commit")
    }
    private static var revisionInfo: MetricNameDescriptor {
        name("source_revision", "info", "The commit last fetched for a source (value 1)")
    }
    private static var pendingApprovals: MetricNameDescriptor { name("pending", "approvals", "Runs waiting for an approval") }
    private static var leader: MetricNameDescriptor { name("leader", "", "1 on the replica that leads, 0 on the others") }
    private static var stepTotal: MetricNameDescriptor { name("step", "total", "Steps run by kind, action and result") }
    private static var firingTotal: MetricNameDescriptor {
        name("schedule_firings", "total", "Due times of schedules by how they ended: completed, failed, missed, skipped, replaced")
    }
    private static var firingDelay: MetricNameDescriptor {
        name("schedule_start_delay", "seconds", "Time from a schedule's due time to the start of its run")
    }
    /// Buckets from 10 ms to a minute: a due time is started within a second.
    private static let delayBuckets: [Duration] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60].map { .milliseconds(Int64($0 * 1000)) }

    public init() {}

    /// How a reconcile of a source ended: `in_sync`, `applied`, `awaiting_approval`,
    /// `drift_reported`, `failed`, `rolled_back`, `halted`, `fetch_error`, `invalid`, `error`.
    func reconciled(source: String, result: String, duration: Duration) {
        registry.makeCounter(descriptor: Self.reconcileTotal, labels: [("source", source), ("result", result)]).increment()
        registry.makeDurationHistogram(descriptor: Self.reconcileDuration, labels: [("source", source)], buckets: Self.durationBuckets)
            .record(duration)
    }

    /// Changes the live systems have against the source's commit (drift not yet corrected).
    func drift(source: String, resources: Int) {
        registry.makeGauge(descriptor: Self.driftResources, labels: [("source", source)]).set(to: Double(resources))
    }

    func revision(source: String, revision: String) {
        let gauge = registry.makeGauge(descriptor: Self.revisionInfo, labels: [("source", source), ("revision", revision)])
        gauge.set(to: 1)
        let previous = revisions.withLock { revisions in
            defer { revisions[source] = gauge }
            return revisions[source]
        }
        if let previous, previous !== gauge { registry.unregisterGauge(previous) }
    }

    /// A due time's end (or its recording as missed or skipped), by source and schedule.
    func fired(source: String, schedule: String, status: String) {
        registry.makeCounter(descriptor: Self.firingTotal, labels: [("source", source), ("schedule", schedule), ("status", status)]).increment()
    }

    /// How late after its due time a scheduled run started.
    func firingStarted(source: String, delay: Duration) {
        registry.makeDurationHistogram(descriptor: Self.firingDelay, labels: [("source", source)], buckets: Self.delayBuckets).record(delay)
    }

    /// Set from the store each time `/metrics` is read, so every replica reports the same count.
    func pendingApprovals(_ count: Int) {
        registry.makeGauge(descriptor: Self.pendingApprovals).set(to: Double(count))
    }

    func leader(_ leads: Bool) {
        registry.makeGauge(descriptor: Self.leader).set(to: leads ? 1 : 0)
    }

    /// Counts each step as it ends, by kind, action and result.
    func step(_ event: WorkflowEvent) {
        let (step, result): (PlanStep, String)
        switch event {
        case .stepFinished(let finished, _): (step, result) = (finished, "succeeded")
        case .stepFailed(let failed, _): (step, result) = (failed, "failed")
        case .compensated(let undone): (step, result) = (undone, "compensated")
        default: return
        }
        registry.makeCounter(
            descriptor: Self.stepTotal, labels: [("kind", step.resource.kind), ("action", step.action.rawValue), ("result", result)]
        ).increment()
    }

    /// The Prometheus text exposition.
    func text() -> [UInt8] {
        registry.emitToBuffer()
    }
}
