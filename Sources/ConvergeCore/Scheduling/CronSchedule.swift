import Foundation

/// A five-field cron schedule (minute hour day-of-month month day-of-week) with the meaning Vixie cron and Kubernetes CronJob
/// give it, evaluated in the wall-clock time of an IANA zone.
///
/// Daylight saving: every scheduled wall time runs at most once, at the first instant the zone's clock reaches it. A time
/// that a spring-forward skips runs when the gap ends (02:30 → 03:00), and all times in one gap, with a time scheduled right
/// at its end, collapse into that one run; a time that a fall-back repeats runs at its first (daylight) occurrence only.
/// AWX and Semaphore both ran jobs twice or never around these transitions.
///
/// The search works on wall-clock fields with plain calendar arithmetic and asks the zone only for UTC offsets, so it jumps
/// month, day, hour and minute at a time instead of stepping through minutes, and no `Calendar` rounding hides a gap.
public struct CronSchedule: Sendable, Hashable, CustomStringConvertible {
    /// The expression as written, trimmed: what a user should see back.
    public let expression: String
    // One bit per allowed value: bit n is value n. Day of week holds 0-6, with 7 folded into Sunday (0).
    private let minutes: UInt64
    private let hours: UInt64
    private let daysOfMonth: UInt64
    private let months: UInt64
    private let daysOfWeek: UInt64
    /// Vixie cron's rule: when both day fields are restricted (neither starts with `*`), a day matches if either does.
    private let eitherDayMatches: Bool

    /// Searching this far past the start decides every expression: 40 years is the longest gap between two matches any
    /// expression can have (Feb 29 on a given weekday, across a century year that is not leap), so nil means "never".
    static let searchYears = 40

    private static let macros = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]

    /// Parses five whitespace-separated fields or one of the macros `@hourly`, `@daily`/`@midnight`, `@weekly`, `@monthly`,
    /// `@yearly`/`@annually` (macros case-insensitive, like the month and weekday names).
    public init(_ expression: String) throws(ParseError) {
        let trimmed = expression.trimmingCharacters(in: .whitespacesAndNewlines)
        var text = trimmed
        if trimmed.hasPrefix("@") {
            guard let expansion = Self.macros[trimmed.lowercased()] else { throw ParseError(.unknownMacro, text: trimmed) }
            text = expansion
        }
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count == Field.allCases.count else { throw ParseError(.wrongFieldCount(found: fields.count), text: trimmed) }
        self.expression = trimmed
        minutes = try Self.parse(fields[Field.minute.rawValue], as: .minute)
        hours = try Self.parse(fields[Field.hour.rawValue], as: .hour)
        daysOfMonth = try Self.parse(fields[Field.dayOfMonth.rawValue], as: .dayOfMonth)
        months = try Self.parse(fields[Field.month.rawValue], as: .month)
        let weekdays = try Self.parse(fields[Field.dayOfWeek.rawValue], as: .dayOfWeek)
        daysOfWeek = (weekdays & 0x7F) | (weekdays >> 7)
        eitherDayMatches = !fields[Field.dayOfMonth.rawValue].hasPrefix("*") && !fields[Field.dayOfWeek.rawValue].hasPrefix("*")
    }

    public var description: String { expression }

    /// The first scheduled time strictly after `date`, on a whole minute, or nil if the expression never matches (`0 0 30 2 *`).
    public func next(after date: Date, in timeZone: TimeZone) -> Date? {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let localMinute = Self.floorDivide(seconds + timeZone.secondsFromGMT(for: date), 60)
        // Wall times up to the clock's reading at `date` were all reached by then; only later ones can still run.
        var from = WallTime(localMinute: localMinute + 1)
        let lastYear = from.year + Self.searchYears
        while let wall = firstMatch(atOrAfter: from, throughYear: lastYear) {
            // After a fall-back the clock reads times again that it already passed: those ran at their first occurrence.
            let instant = Self.firstInstant(reaching: wall.localMinute * 60, in: timeZone)
            if instant > seconds { return Date(timeIntervalSince1970: TimeInterval(instant)) }
            from = WallTime(localMinute: wall.localMinute + 1)
        }
        return nil
    }

    /// Up to `count` successive scheduled times after `date`; fewer only if the expression stops matching.
    public func nextTimes(after date: Date, in timeZone: TimeZone, count: Int) -> [Date] {
        var times: [Date] = []
        var last = date
        while times.count < count, let time = next(after: last, in: timeZone) {
            times.append(time)
            last = time
        }
        return times
    }

    /// The zone for an IANA identifier such as "Europe/Berlin", or nil.
    ///
    /// Accepts exactly the identifiers in `TimeZone.knownTimeZoneIdentifiers`, plus "UTC" and "Etc/UTC" (which that list
    /// lacks on Linux). `TimeZone(identifier:)` alone also takes abbreviations and legacy names like "EST", "CET" or
    /// "US/Eastern", whose meaning differs between systems and tzdata releases; a schedule should name a real location.
    public static func timeZone(named name: String) -> TimeZone? {
        guard name == "UTC" || name == "Etc/UTC" || knownZones.contains(name) else { return nil }
        return TimeZone(identifier: name)
    }

    private static let knownZones = Set(TimeZone.knownTimeZoneIdentifiers)

    // MARK: Matching wall times

    /// The earliest wall time at or after `start` that the fields match, jumping whole months, days and hours that cannot.
    private func firstMatch(atOrAfter start: WallTime, throughYear lastYear: Int) -> WallTime? {
        var (year, month, day, hour, minute) = (start.year, start.month, start.day, start.hour, start.minute)
        while year <= lastYear {
            guard let nextMonth = Self.first(of: months, from: month) else {
                (year, month, day, hour, minute) = (year + 1, 1, 1, 0, 0)
                continue
            }
            if nextMonth != month { (month, day, hour, minute) = (nextMonth, 1, 0, 0) }
            guard day <= Self.daysIn(month: month, year: year) else {
                (month, day, hour, minute) = (month + 1, 1, 0, 0)
                continue
            }
            guard dayMatches(year: year, month: month, day: day), let nextHour = Self.first(of: hours, from: hour) else {
                (day, hour, minute) = (day + 1, 0, 0)
                continue
            }
            if nextHour != hour { (hour, minute) = (nextHour, 0) }
            guard let nextMinute = Self.first(of: minutes, from: minute) else {
                (hour, minute) = (hour + 1, 0)
                continue
            }
            return WallTime(year: year, month: month, day: day, hour: hour, minute: nextMinute)
        }
        return nil
    }

    private func dayMatches(year: Int, month: Int, day: Int) -> Bool {
        let weekday = Self.floorModulo(Self.daysSinceEpoch(year: year, month: month, day: day) + 4, 7)  // 1970-01-01 was a Thursday.
        let dayOfMonthMatches = daysOfMonth & 1 << day != 0
        let dayOfWeekMatches = daysOfWeek & 1 << weekday != 0
        return eitherDayMatches ? dayOfMonthMatches || dayOfWeekMatches : dayOfMonthMatches && dayOfWeekMatches
    }

    /// The smallest value in `bits` that is `value` or more.
    private static func first(of bits: UInt64, from value: Int) -> Int? {
        guard value < 64 else { return nil }
        let rest = bits & ~0 << value
        return rest == 0 ? nil : rest.trailingZeroBitCount
    }

    // MARK: Wall time to instant

    /// The first instant (seconds since 1970) at which the zone's clock reads `wall` (local seconds since 1970) or later.
    ///
    /// That is the wall time itself when it exists once, its first occurrence when a fall-back repeats it, and the end of the
    /// gap when a spring-forward skips it, so every skipped time of one gap maps to the same instant.
    private static func firstInstant(reaching wall: Int, in zone: TimeZone) -> Int {
        // Offsets lie within ±14 h, so a day either side sees the offsets before and after any transition near `wall`.
        let before = offset(at: wall - 86_400, in: zone)
        let after = offset(at: wall + 86_400, in: zone)
        let occurrences = [wall - before, wall - after].filter { offset(at: $0, in: zone) == wall - $0 }
        if let first = occurrences.min() { return first }
        // In the gap: the clock reads below `wall` at `wall - after` and above it at `wall - before`; find where it jumps.
        var (low, high) = (wall - after, wall - before)
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if middle + offset(at: middle, in: zone) >= wall { high = middle } else { low = middle }
        }
        return high
    }

    private static func offset(at seconds: Int, in zone: TimeZone) -> Int {
        zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    // MARK: Parsing

    /// Parses one field into its bitmask: a comma-separated list of `*`, `a`, `a-b`, each optionally `/step`; `a/step` runs
    /// from `a` to the field's maximum.
    private static func parse(_ text: Substring, as field: Field) throws(ParseError) -> UInt64 {
        var bits: UInt64 = 0
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "/", omittingEmptySubsequences: false)
            guard !item.isEmpty, parts.count <= 2 else { throw ParseError(.invalidValue, field: field, text: item.isEmpty ? text : item) }
            var step = 1
            if parts.count == 2 {
                guard let value = number(parts[1]) else { throw ParseError(.invalidValue, field: field, text: item) }
                guard value > 0 else { throw ParseError(.zeroStep, field: field, text: item) }
                step = value
            }
            let span = parts[0]
            let low: Int
            let high: Int
            if span == "*" {
                (low, high) = (field.range.lowerBound, field.range.upperBound)
            } else if let dash = span.firstIndex(of: "-") {
                low = try value(span[..<dash], of: item, as: field)
                high = try value(span[span.index(after: dash)...], of: item, as: field)
                guard low <= high else { throw ParseError(.reversedRange, field: field, text: span) }
            } else {
                low = try value(span, of: item, as: field)
                high = parts.count == 2 ? field.range.upperBound : low
            }
            for value in stride(from: low, through: high, by: step) { bits |= 1 << value }
        }
        return bits
    }

    /// A number or (for month and day of week) a three-letter name, checked against the field's range.
    private static func value(_ token: Substring, of item: Substring, as field: Field) throws(ParseError) -> Int {
        if let index = field.names.firstIndex(of: token.uppercased()) { return index + field.range.lowerBound }
        guard let value = number(token) else { throw ParseError(.invalidValue, field: field, text: item) }
        guard field.range.contains(value) else { throw ParseError(.outOfRange, field: field, text: token) }
        return value
    }

    /// Decimal digits only (no sign or spaces, which `Int(_:)` would take); too many digits read as out of range.
    private static func number(_ token: Substring) -> Int? {
        guard !token.isEmpty, token.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(token) ?? Int.max
    }

    // MARK: Calendar arithmetic

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days from 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's `days_from_civil`).
    fileprivate static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let year = month <= 2 ? year - 1 : year
        let era = floorDivide(year, 400)
        let yearOfEra = year - era * 400
        let dayOfYear = (153 * ((month + 9) % 12) + 2) / 5 + day - 1  // Counted from March 1.
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The inverse of `daysSinceEpoch` (Howard Hinnant's `civil_from_days`).
    fileprivate static func date(daysSinceEpoch days: Int) -> (year: Int, month: Int, day: Int) {
        let shifted = days + 719_468
        let era = floorDivide(shifted, 146_097)
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1
        let month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    fileprivate static func floorDivide(_ value: Int, _ divisor: Int) -> Int {
        let quotient = value / divisor
        return value % divisor < 0 ? quotient - 1 : quotient
    }

    private static func floorModulo(_ value: Int, _ divisor: Int) -> Int {
        value - floorDivide(value, divisor) * divisor
    }
}

/// A clock reading in the zone, not an instant: fields as the wall clock shows them.
private struct WallTime {
    var year: Int
    var month: Int
    var day: Int
    var hour: Int
    var minute: Int

    init(year: Int, month: Int, day: Int, hour: Int, minute: Int) {
        (self.year, self.month, self.day, self.hour, self.minute) = (year, month, day, hour, minute)
    }

    /// From local minutes since 1970-01-01 00:00.
    init(localMinute: Int) {
        let days = CronSchedule.floorDivide(localMinute, 1440)
        let minuteOfDay = localMinute - days * 1440
        (year, month, day) = CronSchedule.date(daysSinceEpoch: days)
        (hour, minute) = (minuteOfDay / 60, minuteOfDay % 60)
    }

    /// Local minutes since 1970-01-01 00:00.
    var localMinute: Int { CronSchedule.daysSinceEpoch(year: year, month: month, day: day) * 1440 + hour * 60 + minute }
}

extension CronSchedule {
    /// The five fields, in order; `rawValue` is the field's 0-based position in the expression.
    public enum Field: Int, Sendable, Hashable, CaseIterable {
        case minute, hour, dayOfMonth, month, dayOfWeek

        public var name: String {
            switch self {
            case .minute: "minute"
            case .hour: "hour"
            case .dayOfMonth: "day of month"
            case .month: "month"
            case .dayOfWeek: "day of week"
            }
        }

        /// The numbers the field takes; day of week takes 0-7, both 0 and 7 being Sunday.
        public var range: ClosedRange<Int> {
            switch self {
            case .minute: 0...59
            case .hour: 0...23
            case .dayOfMonth: 1...31
            case .month: 1...12
            case .dayOfWeek: 0...7
            }
        }

        /// Names for values from the lower bound up, matched case-insensitively.
        fileprivate var names: [String] {
            switch self {
            case .month: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
            case .dayOfWeek: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
            case .minute, .hour, .dayOfMonth: []
            }
        }

        /// What a user may write, for messages.
        public var allowed: String {
            let numbers = "\(range.lowerBound)-\(range.upperBound)"
            guard let first = names.first, let last = names.last else { return numbers }
            return "\(numbers) or \(first)-\(last)"
        }
    }

    /// Why an expression does not parse: the field (and its position, to point at the column), the text at fault, and in
    /// `description` the values the field allows.
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public enum Problem: Sendable, Hashable {
            case wrongFieldCount(found: Int)
            case unknownMacro
            case invalidValue
            case outOfRange
            case reversedRange
            case zeroStep
        }

        public let problem: Problem
        /// Nil when the expression as a whole is wrong (field count, unknown macro).
        public let field: Field?
        /// The offending value, range or step as written; the whole expression when `field` is nil.
        public let text: String

        init(_ problem: Problem, field: Field? = nil, text: some StringProtocol) {
            self.problem = problem
            self.field = field
            self.text = String(text)
        }

        /// The field's 0-based position among the five.
        public var fieldIndex: Int? { field?.rawValue }

        public var description: String {
            let subject = "\(field?.name ?? "expression"): '\(text)'"
            let allowed = field?.allowed ?? ""
            return switch problem {
            case .wrongFieldCount(let found): "expected 5 fields (minute hour day-of-month month day-of-week), found \(found)"
            case .unknownMacro: "'\(text)' is not a supported macro (@hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually)"
            case .invalidValue: "\(subject) is not a value in \(allowed)"
            case .outOfRange: "\(subject) is out of range \(allowed)"
            case .reversedRange: "\(subject) is a reversed range; write it low-high within \(allowed)"
            case .zeroStep: "\(subject) has a step of 0; a step must be 1 or more, within \(allowed)"
            }
        }
    }
}
