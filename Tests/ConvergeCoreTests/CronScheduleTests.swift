import Foundation
import Testing

@testable import ConvergeCore

private func zone(_ name: String) throws -> TimeZone {
    try #require(CronSchedule.timeZone(named: name))
}

private func date(_ iso: String) throws -> Date {
    try Date(iso, strategy: .iso8601)
}

private func iso(_ date: Date, in timeZone: TimeZone) -> String {
    date.formatted(Date.ISO8601FormatStyle(timeZoneSeparator: .colon, timeZone: timeZone))
}

/// The next `count` times as ISO 8601 in the zone, with its offset: "+02:00" against "+01:00" is what tells a DST case apart.
private func times(_ expression: String, after start: String, in zoneName: String = "UTC", count: Int) throws -> [String] {
    let timeZone = try zone(zoneName)
    return try CronSchedule(expression).nextTimes(after: date(start), in: timeZone, count: count).map { iso($0, in: timeZone) }
}

private func next(_ expression: String, after start: String, in zoneName: String = "UTC") throws -> String? {
    let timeZone = try zone(zoneName)
    return try CronSchedule(expression).next(after: date(start), in: timeZone).map { iso($0, in: timeZone) }
}

@Suite struct CronScheduleTests {
    // 2026-01-05 is a Monday.
    @Test(
        "each field form parses to the times it means",
        arguments: [
            ("5,10-12,40-50/5 * * * *", ["00:05", "00:10", "00:11", "00:12", "00:40", "00:45", "00:50", "01:05"]),
            ("*/20 */6 * * *", ["00:20", "00:40", "06:00", "06:20", "06:40"]),
            ("50/5 23 * * *", ["23:50", "23:55"]),
            ("0 9-17/4 * * *", ["09:00", "13:00", "17:00"]),
            ("  0   12 *\t* *  ", ["12:00"]),
            ("00 07 * * *", ["07:00"]),
        ])
    func fieldForms(expression: String, expected: [String]) throws {
        let expectedTimes = expected.map { "2026-01-05T\($0):00Z" }
        #expect(try times(expression, after: "2026-01-05T00:00:00Z", count: expected.count) == expectedTimes)
    }

    @Test("day of week: 0 and 7 are Sunday, names in any case, ranges up to 7")
    func dayOfWeekValues() throws {
        #expect(try times("0 0 * * 7", after: "2026-01-05T00:00:00Z", count: 2) == ["2026-01-11T00:00:00Z", "2026-01-18T00:00:00Z"])
        #expect(try times("0 0 * * 0", after: "2026-01-05T00:00:00Z", count: 1) == ["2026-01-11T00:00:00Z"])
        #expect(
            try times("0 0 * * 5-7", after: "2026-01-05T00:00:00Z", count: 3)
                == ["2026-01-09T00:00:00Z", "2026-01-10T00:00:00Z", "2026-01-11T00:00:00Z"])
        #expect(try times("0 8 * * mon-FRI", after: "2026-01-09T09:00:00Z", count: 2) == ["2026-01-12T08:00:00Z", "2026-01-13T08:00:00Z"])
    }

    @Test(
        "each macro equals its five fields",
        arguments: [
            ("@hourly", "0 * * * *"), ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"), ("@weekly", "0 0 * * 0"),
            ("@monthly", "0 0 1 * *"), ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@Daily", "0 0 * * *"),
        ])
    func macros(macro: String, fields: String) throws {
        #expect(try CronSchedule(macro).description == macro)
        #expect(try times(macro, after: "2026-01-05T10:30:00Z", count: 3) == times(fields, after: "2026-01-05T10:30:00Z", count: 3))
    }

    @Test("macros run when their names say")
    func macroTimes() throws {
        let start = "2026-01-05T10:30:00Z"
        #expect(try times("@hourly", after: start, count: 2) == ["2026-01-05T11:00:00Z", "2026-01-05T12:00:00Z"])
        #expect(try times("@daily", after: start, count: 1) == ["2026-01-06T00:00:00Z"])
        #expect(try times("@weekly", after: start, count: 1) == ["2026-01-11T00:00:00Z"])
        #expect(try times("@monthly", after: start, count: 1) == ["2026-02-01T00:00:00Z"])
        #expect(try times("@yearly", after: start, count: 1) == ["2027-01-01T00:00:00Z"])
    }

    @Test(
        "a bad field names the field, its position, the text and the allowed range",
        arguments: [
            ("61 * * * *", 0, "minute: '61' is out of range 0-59"),
            ("x * * * *", 0, "minute: 'x' is not a value in 0-59"),
            ("-1 * * * *", 0, "minute: '-1' is not a value in 0-59"),
            ("1/2/3 * * * *", 0, "minute: '1/2/3' is not a value in 0-59"),
            ("*/x * * * *", 0, "minute: '*/x' is not a value in 0-59"),
            ("*/0 * * * *", 0, "minute: '*/0' has a step of 0; a step must be 1 or more, within 0-59"),
            ("99999999999999999999 * * * *", 0, "minute: '99999999999999999999' is out of range 0-59"),
            ("0 25 * * *", 1, "hour: '25' is out of range 0-23"),
            ("0 1,25 * * *", 1, "hour: '25' is out of range 0-23"),
            ("0 20-25 * * *", 1, "hour: '25' is out of range 0-23"),
            ("0 5-1 * * *", 1, "hour: '5-1' is a reversed range; write it low-high within 0-23"),
            ("0 1,,2 * * *", 1, "hour: '1,,2' is not a value in 0-23"),
            ("0 0 0 * *", 2, "day of month: '0' is out of range 1-31"),
            ("0 0 32 * *", 2, "day of month: '32' is out of range 1-31"),
            ("0 0 * 13 *", 3, "month: '13' is out of range 1-12 or JAN-DEC"),
            ("0 0 * FOO *", 3, "month: 'FOO' is not a value in 1-12 or JAN-DEC"),
            ("0 0 * * 8", 4, "day of week: '8' is out of range 0-7 or SUN-SAT"),
            ("0 0 * * MONDAY", 4, "day of week: 'MONDAY' is not a value in 0-7 or SUN-SAT"),
            ("0 0 * * SAT-SUN", 4, "day of week: 'SAT-SUN' is a reversed range; write it low-high within 0-7 or SUN-SAT"),
        ])
    func fieldErrors(expression: String, index: Int, message: String) throws {
        let error = try #require(throws: CronSchedule.ParseError.self) { try CronSchedule(expression) }
        #expect(error.fieldIndex == index)
        #expect(error.field?.name == message.prefix { $0 != ":" }.description)
        #expect(error.description == message)
    }

    @Test(
        "a wrong number of fields or an unknown macro is an error of the whole expression",
        arguments: [
            ("0 0 * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), found 6"),
            ("0 0 * *", "expected 5 fields (minute hour day-of-month month day-of-week), found 4"),
            ("   ", "expected 5 fields (minute hour day-of-month month day-of-week), found 0"),
            ("@reboot", "'@reboot' is not a supported macro (@hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually)"),
        ])
    func expressionErrors(expression: String, message: String) throws {
        let error = try #require(throws: CronSchedule.ParseError.self) { try CronSchedule(expression) }
        #expect(error.fieldIndex == nil)
        #expect(error.description == message)
    }

    @Test("plain times in UTC, New York and Berlin keep their wall-clock time across DST")
    func plainZones() throws {
        #expect(try times("30 9 * * 1-5", after: "2026-01-09T10:00:00Z", count: 2) == ["2026-01-12T09:30:00Z", "2026-01-13T09:30:00Z"])
        #expect(
            try times("0 9 * * 1-5", after: "2026-01-09T12:00:00-05:00", in: "America/New_York", count: 2)
                == ["2026-01-12T09:00:00-05:00", "2026-01-13T09:00:00-05:00"])
        #expect(
            try times("30 8 1 * *", after: "2026-02-15T00:00:00-05:00", in: "America/New_York", count: 2)
                == ["2026-03-01T08:30:00-05:00", "2026-04-01T08:30:00-04:00"])
        #expect(try times("0 6 * * *", after: "2026-06-30T23:00:00Z", in: "Europe/Berlin", count: 1) == ["2026-07-01T06:00:00+02:00"])
        #expect(
            try times("15 14 1 * *", after: "2026-02-15T00:00:00+01:00", in: "Europe/Berlin", count: 2)
                == ["2026-03-01T14:15:00+01:00", "2026-04-01T14:15:00+02:00"])
    }

    @Test("month names in any case, in lists, ranges and steps")
    func monthNames() throws {
        #expect(
            try times("0 0 1 JAN,jul *", after: "2026-01-05T00:00:00Z", count: 3)
                == ["2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-07-01T00:00:00Z"])
        #expect(
            try times("0 12 15 Mar-May *", after: "2026-01-05T00:00:00Z", count: 4)
                == ["2026-03-15T12:00:00Z", "2026-04-15T12:00:00Z", "2026-05-15T12:00:00Z", "2027-03-15T12:00:00Z"])
        #expect(
            try times("0 0 1 JAN-DEC/3 *", after: "2026-01-05T00:00:00Z", count: 4)
                == ["2026-04-01T00:00:00Z", "2026-07-01T00:00:00Z", "2026-10-01T00:00:00Z", "2027-01-01T00:00:00Z"])
    }

    @Test("both day fields restricted: either matches; one starting with '*': both must")
    func dayOfMonthOrDayOfWeek() throws {
        #expect(
            try times("0 0 13 * FRI", after: "2026-03-01T00:00:00Z", count: 8)
                == [
                    "2026-03-06", "2026-03-13", "2026-03-20", "2026-03-27", "2026-04-03", "2026-04-10", "2026-04-13", "2026-04-17",
                ].map { "\($0)T00:00:00Z" })
        // `*/2` starts with '*', so only odd-dated Fridays; `*/7` likewise, so "days 1-7 that are Sundays".
        #expect(
            try times("0 0 */2 * FRI", after: "2026-01-06T00:00:00Z", count: 4)
                == ["2026-01-09", "2026-01-23", "2026-02-13", "2026-02-27"].map { "\($0)T00:00:00Z" })
        #expect(
            try times("0 0 1-7 * */7", after: "2026-01-06T00:00:00Z", count: 3)
                == ["2026-02-01", "2026-03-01", "2026-04-05"].map { "\($0)T00:00:00Z" })
        #expect(try times("0 0 * * MON", after: "2026-01-06T00:00:00Z", count: 2) == ["2026-01-12T00:00:00Z", "2026-01-19T00:00:00Z"])
        #expect(try times("0 0 1 * *", after: "2026-01-06T00:00:00Z", count: 2) == ["2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"])
    }

    @Test("leap day runs only in leap years, 8 years apart across 2100")
    func leapDay() throws {
        #expect(
            try times("0 0 29 2 *", after: "2026-01-01T00:00:00Z", count: 3)
                == ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z", "2036-02-29T00:00:00Z"])
        #expect(try times("0 0 29 2 *", after: "2096-03-01T00:00:00Z", count: 1) == ["2104-02-29T00:00:00Z"])
    }

    @Test("*/15 steps land on the quarter hours, in UTC and in New York")
    func quarterHours() throws {
        #expect(
            try times("*/15 * * * *", after: "2026-01-05T00:07:30Z", count: 4)
                == ["2026-01-05T00:15:00Z", "2026-01-05T00:30:00Z", "2026-01-05T00:45:00Z", "2026-01-05T01:00:00Z"])
        #expect(
            try times("*/15 9 * * *", after: "2026-07-01T09:40:00-04:00", in: "America/New_York", count: 2)
                == ["2026-07-01T09:45:00-04:00", "2026-07-02T09:00:00-04:00"])
    }

    @Test("spring forward: a skipped time runs once when the gap ends (Berlin 2026-03-29, 02:00 → 03:00)")
    func springForwardBerlin() throws {
        #expect(
            try times("30 2 * * *", after: "2026-03-28T00:00:00+01:00", in: "Europe/Berlin", count: 3)
                == ["2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"])
        // 02:00, 02:15, 02:30 and 02:45 are all skipped: one run, not four.
        #expect(
            try times("*/15 2 * * *", after: "2026-03-28T03:00:00+01:00", in: "Europe/Berlin", count: 3)
                == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00", "2026-03-30T02:15:00+02:00"])
        // 03:00 itself collapses with the skipped times before it.
        #expect(
            try times("0 2,3 * * *", after: "2026-03-29T00:00:00+01:00", in: "Europe/Berlin", count: 2)
                == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"])
        #expect(
            try times("*/30 2-3 * * *", after: "2026-03-29T00:00:00+01:00", in: "Europe/Berlin", count: 3)
                == ["2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00", "2026-03-30T02:00:00+02:00"])
        #expect(
            try times("* * * * *", after: "2026-03-29T01:58:00+01:00", in: "Europe/Berlin", count: 3)
                == ["2026-03-29T01:59:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:01:00+02:00"])
    }

    @Test("spring forward in New York 2026-03-08, 02:00 → 03:00")
    func springForwardNewYork() throws {
        #expect(
            try times("30 2 * * *", after: "2026-03-07T12:00:00-05:00", in: "America/New_York", count: 2)
                == ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"])
        #expect(
            try times("*/15 2 * * *", after: "2026-03-08T00:00:00-05:00", in: "America/New_York", count: 2)
                == ["2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"])
        // Asked again right after the collapsed run, the skipped times are not owed any more.
        #expect(try next("*/15 2 * * *", after: "2026-03-08T03:00:00-04:00", in: "America/New_York") == "2026-03-09T02:00:00-04:00")
    }

    @Test("fall back: a repeated time runs once, at its first (daylight) occurrence (Berlin 2026-10-25, 03:00 → 02:00)")
    func fallBackBerlin() throws {
        #expect(
            try times("30 2 * * *", after: "2026-10-24T12:00:00+02:00", in: "Europe/Berlin", count: 3)
                == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00", "2026-10-27T02:30:00+01:00"])
        #expect(
            try times("0 * * * *", after: "2026-10-25T00:30:00+02:00", in: "Europe/Berlin", count: 4)
                == ["2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00", "2026-10-25T04:00:00+01:00"])
        // Asked during the second pass of 02:00-02:59: those times ran during the first.
        #expect(try next("30 2 * * *", after: "2026-10-25T02:10:00+01:00", in: "Europe/Berlin") == "2026-10-26T02:30:00+01:00")
    }

    @Test("fall back in New York 2026-11-01: 01:00-01:59 repeats, hourly runs once in it")
    func fallBackNewYork() throws {
        #expect(
            try times("0 * * * *", after: "2026-11-01T00:00:00-04:00", in: "America/New_York", count: 3)
                == ["2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00"])
        #expect(
            try times("*/30 * * * *", after: "2026-11-01T00:00:00-04:00", in: "America/New_York", count: 4)
                == ["2026-11-01T00:30:00-04:00", "2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T02:00:00-05:00"])
        #expect(
            try times("30 1 * * *", after: "2026-10-31T12:00:00-04:00", in: "America/New_York", count: 2)
                == ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"])
        #expect(try next("*/15 * * * *", after: "2026-11-01T01:20:00-05:00", in: "America/New_York") == "2026-11-01T02:00:00-05:00")
    }

    @Test(
        "any scheduled wall time runs at the first instant the clock reaches it, minute by minute around each 2026 transition",
        arguments: ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago"])
    func agreesWithMinuteWalk(zoneName: String) throws {
        let timeZone = try zone(zoneName)
        let utc = try zone("UTC")
        var transition = try date("2026-01-01T00:00:00Z")
        for _ in 0..<2 {
            transition = try #require(timeZone.nextDaylightSavingTimeTransition(after: transition))
            let start = transition.addingTimeInterval(-26 * 3600)
            let end = transition.addingTimeInterval(26 * 3600)
            for expression in ["*/15 2 * * *", "30 2 * * *", "0 * * * *", "*/7 0-3 * * *", "0 0 * * *", "45 1,2 * * *", "0,30 23 * * *"] {
                let schedule = try CronSchedule(expression)
                // Whether a wall time in (low, high] is scheduled, asked in UTC where wall time and instant coincide.
                let isScheduled = { (low: Int, high: Int) in
                    let first = schedule.next(after: Date(timeIntervalSince1970: TimeInterval(low)), in: utc)
                    return first.map { $0.timeIntervalSince1970 <= TimeInterval(high) } ?? false
                }
                // The walk: a run is due at the first minute whose clock reading passes a scheduled time not yet passed.
                var expected: [Date] = []
                var highestWall = Int(start.timeIntervalSince1970) + timeZone.secondsFromGMT(for: start)
                for instant in stride(from: Int(start.timeIntervalSince1970) + 60, through: Int(end.timeIntervalSince1970), by: 60) {
                    let moment = Date(timeIntervalSince1970: TimeInterval(instant))
                    let wall = instant + timeZone.secondsFromGMT(for: moment)
                    if wall > highestWall, isScheduled(highestWall, wall) { expected.append(moment) }
                    highestWall = max(highestWall, wall)
                }
                let actual = schedule.nextTimes(after: start, in: timeZone, count: expected.count + 1).filter { $0 <= end }
                #expect(actual == expected, "\(expression) in \(zoneName) around \(transition)")
                // Asked from anywhere, the second pass of a repeated hour included, the answer is the next run still due.
                for asked in stride(from: start, to: end, by: 7 * 60 + 0.5) {
                    guard let due = expected.first(where: { $0 > asked }) else { break }
                    #expect(schedule.next(after: asked, in: timeZone) == due, "\(expression) in \(zoneName) after \(asked)")
                }
            }
        }
    }

    @Test("far-future expressions: the day-field OR rule, a leap day on a weekday, and expressions that never match")
    func farFuture() throws {
        // Both day fields restricted, so this is "Feb 29, or any Monday in February", not "Feb 29 when it is a Monday".
        #expect(
            try times("0 0 29 2 1", after: "2026-01-01T00:00:00Z", count: 5)
                == ["2026-02-02", "2026-02-09", "2026-02-16", "2026-02-23", "2027-02-01"].map { "\($0)T00:00:00Z" })
        #expect(
            try times("0 0 29 2 1", after: "2028-02-20T00:00:00Z", count: 4)
                == ["2028-02-21", "2028-02-28", "2028-02-29", "2029-02-05"].map { "\($0)T00:00:00Z" })
        // A leap day that is a Sunday (`*/7` starts with '*', so both must match): 28 years apart, then 40 across 2100.
        #expect(
            try times("0 0 29 2 */7", after: "2026-01-01T00:00:00Z", count: 4)
                == ["2032-02-29", "2060-02-29", "2088-02-29", "2128-02-29"].map { "\($0)T00:00:00Z" })
        let utc = try zone("UTC")
        let start = try date("2026-01-01T00:00:00Z")
        for expression in ["0 0 30 2 *", "0 0 31 4,6,9,11 *"] {
            #expect(try CronSchedule(expression).next(after: start, in: utc) == nil)
            #expect(try CronSchedule(expression).nextTimes(after: start, in: utc, count: 3).isEmpty)
        }
    }

    @Test("next(after:) is strictly after the given instant and lands on whole minutes")
    func strictlyAfter() throws {
        #expect(try next("0 * * * *", after: "2026-01-05T10:00:00Z") == "2026-01-05T11:00:00Z")
        #expect(try next("0 * * * *", after: "2026-01-05T09:59:59Z") == "2026-01-05T10:00:00Z")
        let utc = try zone("UTC")
        let schedule = try CronSchedule("* * * * *")
        let onTheMinute = try date("2026-01-05T10:00:00Z")
        #expect(schedule.next(after: onTheMinute.addingTimeInterval(0.5), in: utc) == onTheMinute.addingTimeInterval(60))
        #expect(schedule.next(after: onTheMinute.addingTimeInterval(-0.001), in: utc) == onTheMinute)
        #expect(schedule.nextTimes(after: onTheMinute, in: utc, count: 0).isEmpty)
    }

    @Test("time zones: IANA identifiers and UTC, not abbreviations or legacy names")
    func timeZoneNames() {
        for name in ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC", "Etc/UTC"] {
            #expect(CronSchedule.timeZone(named: name) != nil, "\(name)")
        }
        #expect(CronSchedule.timeZone(named: "Europe/Berlin")?.identifier == "Europe/Berlin")
        for name in ["EST", "CET", "PST", "US/Eastern", "europe/berlin", "Mars/Olympus_Mons", ""] {
            #expect(CronSchedule.timeZone(named: name) == nil, "\(name)")
        }
    }
}
