import ConvergeCore

/// `ScheduledPlaybook`: a playbook run on a schedule, each due time a journaled run of its
/// own with its history (`converge schedules`).
///
/// ```yaml
/// kind: ScheduledPlaybook
/// metadata: {name: nightly-patch}
/// spec:
///   playbook: patch
///   target: web               # as a PlaybookRun: inventory, extraVars, forks, checkMode,
///   snapshot: true            # snapshot, revertOnFailure, timeout
///   schedule: "30 2 * * *"    # or at: 2026-12-24T18:00 for one run
///   timeZone: Europe/Berlin   # IANA; default UTC
///   concurrencyPolicy: Forbid # Allow, Replace
///   startingDeadline: 5m      # later than this after its due time: missed, never started
///   suspend: false
/// ```
public struct ScheduledPlaybookSpec: ScheduledResource, Equatable {
    public static let kind = "ScheduledPlaybook"
    /// Not diffed: it runs when due, not when it differs.
    public static let isLiveObject = false

    /// What runs at each due time.
    public var run: PlaybookRunSpec
    public var schedule: Schedule?

    public init?(spec: MappingReader, metadata: Metadata) {
        let run = PlaybookRunSpec(spec: spec, metadata: metadata)
        schedule = Schedule.read(spec)
        guard let run else { return nil }
        self.run = run
    }

    public func references(in set: ManifestSet) -> [Reference] {
        // A schedule runs on hosts as they are; it does not wait for machines to be made.
        run.references(in: set).map { Reference(target: $0.target, field: $0.field, location: $0.location) }
    }

    public func target(in set: ManifestSet) -> ResourceID? { run.target(in: set) }

    public func validate(_ resource: Resource, in set: ManifestSet, collector: DiagnosticCollector) {
        run.validate(resource, in: set, collector: collector)
    }

    /// The inputs a due time runs with, as a `PlaybookRun`'s: the plan of each firing shows
    /// them and pins the playbook's digest.
    public func desiredFields(metadata: Metadata, in set: ManifestSet) -> FieldMap {
        run.desiredFields(metadata: metadata, in: set)
    }
}
