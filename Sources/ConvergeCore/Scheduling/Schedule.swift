import Foundation

/// When a scheduled resource runs (a `ScheduledPlaybook`): a cron expression in an IANA time
/// zone or one time, what happens when the previous run is still going, and how late a run
/// may start. Read from the fields `schedule` or `at`, `timeZone`, `concurrencyPolicy`,
/// `startingDeadline` and `suspend` of a spec.
///
/// A due time later than `startingDeadline` is recorded as missed and never started: after an
/// outage only the most recent due time may run, and only within the deadline (AWX caught up
/// hours late after one, awx#5014; Kubernetes CronJob has `startingDeadlineSeconds`).
public struct Schedule: Sendable, Equatable {
    public enum Timing: Sendable, Equatable {
        case cron(CronSchedule)
        /// Once, at this instant.
        case once(Date)
    }

    /// What a due time does while the schedule's previous run is still going.
    public enum ConcurrencyPolicy: String, Sendable, CaseIterable {
        /// It is skipped (recorded as such).
        case forbid = "Forbid"
        /// It runs beside the previous one.
        case allow = "Allow"
        /// The previous run is stopped and this one runs.
        case replace = "Replace"
    }

    /// Five minutes: a controller restarting or failing over still runs what fell due
    /// meanwhile; one down for longer does not wake up to yesterday's jobs.
    public static let defaultStartingDeadline = Duration.seconds(300)

    public var timing: Timing
    public var timeZone: TimeZone
    public var concurrencyPolicy: ConcurrencyPolicy
    public var startingDeadline: Duration
    public var suspend: Bool

    public init(
        timing: Timing, timeZone: TimeZone, concurrencyPolicy: ConcurrencyPolicy = .forbid,
        startingDeadline: Duration = Schedule.defaultStartingDeadline, suspend: Bool = false
    ) {
        self.timing = timing
        self.timeZone = timeZone
        self.concurrencyPolicy = concurrencyPolicy
        self.startingDeadline = startingDeadline
        self.suspend = suspend
    }

    /// `schedule: "30 2 * * *"` or `at: 2026-12-24T18:00` (in `timeZone`, or with its own
    /// offset), and the rest; every problem is reported through the reader, nil when unusable.
    public static func read(_ spec: MappingReader) -> Schedule? {
        let zoneNode = spec.optional("timeZone")
        var timeZone = TimeZone(identifier: "UTC") ?? .current
        if let zoneNode, let name = zoneNode.string {
            if let zone = CronSchedule.timeZone(named: name) {
                timeZone = zone
            } else {
                zoneNode.report("unknown time zone '\(name)'", hint: "use an IANA name such as Europe/Berlin, America/New_York or UTC")
            }
        }
        let cronNode = spec.optional("schedule")
        let atNode = spec.optional("at")
        var timing: Timing?
        switch (cronNode, atNode) {
        case (let node?, nil):
            do {
                timing = .cron(try CronSchedule(node.string ?? ""))
            } catch {
                node.report("\(error)", hint: "five fields: minute hour day-of-month month day-of-week, e.g. \"30 2 * * *\"")
            }
        case (nil, let node?):
            if let text = node.string, let date = once(text, in: timeZone) {
                timing = .once(date)
            } else {
                node.report(
                    "'\(node.string ?? "")' is not a date and time", hint: "write 2026-12-24T18:00 (in timeZone) or 2026-12-24T18:00:00Z")
            }
        case (_?, let node?):
            node.report("cannot be combined with spec.schedule", hint: "a schedule repeats (schedule) or runs once (at)")
        case (nil, nil):
            spec.node.collector.report(
                "spec.schedule: required field is missing", at: spec.location,
                hint: "a cron expression such as \"30 2 * * *\", or at: for one run")
        }
        var policy = ConcurrencyPolicy.forbid
        if let node = spec.optional("concurrencyPolicy") {
            if let value = node.string.flatMap(ConcurrencyPolicy.init(rawValue:)) {
                policy = value
            } else {
                node.report("expected Forbid, Allow or Replace")
            }
        }
        var deadline = defaultStartingDeadline
        if let node = spec.optional("startingDeadline") {
            if let text = node.string, let nanoseconds = DurationText.nanoseconds(text), nanoseconds > 0 {
                deadline = .nanoseconds(nanoseconds)
            } else {
                node.report("expected a duration such as 5m or 1h")
            }
        }
        let suspend = spec.optional("suspend")?.bool ?? false
        return timing.map {
            Schedule(timing: $0, timeZone: timeZone, concurrencyPolicy: policy, startingDeadline: deadline, suspend: suspend)
        }
    }

    /// `2026-12-24T18:00[:00]` in `zone` (a time a spring-forward skips runs when the gap ends,
    /// one a fall-back repeats at its first occurrence, as cron times do), or with `Z` or
    /// `±hh:mm`.
    static func once(_ text: String, in zone: TimeZone) -> Date? {
        if let exact = try? Date(text, strategy: .iso8601) { return exact }
        let parts = text.split(whereSeparator: { "-T:".contains($0) }).map { Int($0) }
        guard parts.count == 5 || parts.count == 6, !parts.contains(nil), text.count >= 16 else { return nil }
        let (year, month, day, hour, minute) = (parts[0]!, parts[1]!, parts[2]!, parts[3]!, parts[4]!)
        guard (parts.count == 5 || parts[5] == 0), (1...12).contains(month), (1...31).contains(day), (0...23).contains(hour),
            (0...59).contains(minute),
            let cron = try? CronSchedule("\(minute) \(hour) \(day) \(month) *")
        else { return nil }
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC") ?? zone
        guard let wall = utc.date(from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute)),
            utc.component(.day, from: wall) == day
        else { return nil }
        // The wall time read as UTC is within a day of the instant; two days before it, the
        // next matching time is that very date's.
        return cron.next(after: wall.addingTimeInterval(-2 * 86_400), in: zone)
    }

    /// The next `count` due times after `date`.
    public func nextTimes(after date: Date, count: Int) -> [Date] {
        switch timing {
        case .cron(let cron): return cron.nextTimes(after: date, in: timeZone, count: count)
        case .once(let instant): return instant > date && count > 0 ? [instant] : []
        }
    }

    /// The due times in `(after, through]`: the newest `limit` of them, oldest first, and how
    /// many earlier ones were left out.
    public func dueTimes(after: Date, through: Date, limit: Int) -> (times: [Date], omitted: Int) {
        switch timing {
        case .once(let instant):
            return instant > after && instant <= through ? ([instant], 0) : ([], 0)
        case .cron(let cron):
            var times: [Date] = []
            var omitted = 0
            var cursor = after
            while let next = cron.next(after: cursor, in: timeZone), next <= through {
                times.append(next)
                if times.count > limit {
                    times.removeFirst()
                    omitted += 1
                }
                cursor = next
            }
            return (times, omitted)
        }
    }

    /// `5m`, as manifests write durations.
    public var deadlineText: String {
        let (seconds, attoseconds) = startingDeadline.components
        return DurationText.format(nanoseconds: seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// The schedule as written: `30 2 * * * (Europe/Berlin)` or `once at 2026-12-24T17:00:00Z`.
    public var summary: String {
        switch timing {
        case .cron(let cron): return "\(cron.expression) (\(timeZone.identifier))"
        case .once(let instant): return "once at \(instant.formatted(.iso8601))"
        }
    }
}

/// A kind whose resources run on a schedule (a `ScheduledPlaybook`): the runtime's scheduler
/// fires each due time as an action on the resource (`Reconciler.planAction`), journaled.
public protocol ScheduledResource: ResourceSpec {
    var schedule: Schedule? { get }
}
