#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif
import Airlock

/// A cron expression: five fields (`minute hour day-of-month month day-of-week`) or six, with
/// seconds first, as Vixie cron, Quartz (without `L`/`W`/`#`) and sidekiq-cron read them.
///
/// Each field is `*` (or `?`), a number, a range `a-b`, a step `*/n`, `a-b/n` or `a/n`, or a
/// comma-separated list of those; months and weekdays also by name (`JAN`, `mon-fri`); weekday 7
/// is Sunday like 0. The macros `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`,
/// `@midnight` and `@hourly` are accepted. When both day fields are restricted, a day matching
/// either runs (the Vixie rule): `0 0 1 * MON` is midnight on the 1st and on every Monday.
///
/// Times are read in a time zone (``next(after:in:)``): a local time that happens twice when
/// clocks go back fires twice, and one that does not exist when they go forward is skipped.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    /// The expression as written.
    public let description: String
    private let seconds: UInt64
    private let minutes: UInt64
    private let hours: UInt64
    private let daysOfMonth: UInt64
    private let months: UInt64
    private let weekdays: UInt64
    /// Whether each day field was restricted (not `*`), for the Vixie rule.
    private let daysOfMonthRestricted: Bool
    private let weekdaysRestricted: Bool

    /// Parses `text`.
    /// - Throws: ``ScheduleError`` naming the field and what is wrong with it.
    public init(_ text: String) throws(ScheduleError) {
        let trimmed = text.trimmingSpaces()
        let expanded = Self.macros[trimmed.lowercased()] ?? trimmed
        var fields = expanded.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 || fields.count == 6 else {
            throw ScheduleError(.invalidCron, "cron expression \(Self.quote(text)) has \(fields.count) fields; write 5 (minute hour day month weekday) or 6 (second first)")
        }
        if fields.count == 5 { fields.insert("0", at: 0) }
        func field(_ index: Int, _ spec: FieldSpec) throws(ScheduleError) -> (bits: UInt64, restricted: Bool) {
            do {
                return try Self.parse(fields[index], spec)
            } catch {
                throw ScheduleError(.invalidCron, "cron expression \(Self.quote(text)): \(spec.name) field \(Self.quote(fields[index])): \(error.text)")
            }
        }
        description = trimmed
        seconds = try field(0, .second).bits
        minutes = try field(1, .minute).bits
        hours = try field(2, .hour).bits
        (daysOfMonth, daysOfMonthRestricted) = try field(3, .dayOfMonth)
        months = try field(4, .month).bits
        var weekdayField = try field(5, .weekday)
        // 7 is Sunday too.
        if weekdayField.bits & (1 << 7) != 0 { weekdayField.bits = (weekdayField.bits | 1) & ~(1 << 7) }
        (weekdays, weekdaysRestricted) = weekdayField
    }

    /// The first instant strictly after `date` that the expression matches in `timeZone`, to the
    /// second; `nil` when none comes within five years (`0 0 30 2 *`, February 30th).
    public func next(after date: Date, in timeZone: ScheduleTimeZone = .utc) -> Date? {
        let rules = timeZone.rules
        let after = Int64((date.timeIntervalSince1970).rounded(.down))
        let lastYear = CivilTime(after + Int64(rules.offset(at: after))).year + 5
        // Walk the matching wall-clock times in order and map each to the instants that show it
        // (none in a spring-forward gap, two in a fall-back hour). Wall-clock order is not quite
        // instant order around a change, so start from the earliest wall-clock time any later
        // instant can show, and stop once no later wall-clock time can belong to an instant
        // before the best found. Three days bound the first: no offset differs from another by
        // more than 51 hours.
        var local = after + 1 + Int64(rules.offsetBounds(from: after + 1, through: after + 3 * CivilTime.secondsPerDay).min)
        var best: Int64?
        var stop = Int64.max
        while local <= stop, let match = nextMatch(atOrAfter: local, lastYear: lastYear), match <= stop {
            for instant in rules.instants(showing: match) where instant > after && instant < (best ?? .max) {
                best = instant
                stop = instant + Int64(rules.offsetBounds(from: after + 1, through: instant).max)
            }
            local = match + 1
        }
        return best.map { Date(timeIntervalSince1970: Double($0)) }
    }

    /// The first wall-clock time at or after `local` (seconds since the epoch read as a wall
    /// clock) that the expression matches, up to the end of `lastYear`.
    private func nextMatch(atOrAfter local: Int64, lastYear: Int) -> Int64? {
        var t = local
        // Each step moves to the start of the next unit that can match, so a search takes at
        // most a few hundred steps, never one per second.
        while true {
            let c = CivilTime(t)
            guard c.year <= lastYear else { return nil }
            if !Self.has(months, c.month) {
                t = CivilTime.days(year: c.year, month: c.month + 1, day: 1) * CivilTime.secondsPerDay
                continue
            }
            let intoDay = Int64(c.hour * 3600 + c.minute * 60 + c.second)
            if !dayMatches(day: c.day, weekday: c.weekday) {
                t += CivilTime.secondsPerDay - intoDay
                continue
            }
            if !Self.has(hours, c.hour) {
                t += 3600 - Int64(c.minute * 60 + c.second)
                continue
            }
            if !Self.has(minutes, c.minute) {
                t += 60 - Int64(c.second)
                continue
            }
            if !Self.has(seconds, c.second) {
                let later = (c.second + 1..<60).first { Self.has(seconds, $0) }
                t += Int64((later ?? 60) - c.second)
                continue
            }
            return t
        }
    }

    private func dayMatches(day: Int, weekday: Int) -> Bool {
        let byDate = Self.has(daysOfMonth, day)
        let byWeekday = Self.has(weekdays, weekday)
        if daysOfMonthRestricted && weekdaysRestricted { return byDate || byWeekday }
        return byDate && byWeekday
    }

    private static func has(_ bits: UInt64, _ value: Int) -> Bool { value >= 0 && value < 64 && bits & (1 << UInt64(value)) != 0 }

    // MARK: Parsing

    private static let macros = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]

    private struct FieldSpec {
        let name: String
        let range: ClosedRange<Int>
        var names: [String] = []
        /// The first name's number (`JAN` is 1, `SUN` is 0).
        var firstNamed = 0

        static let second = FieldSpec(name: "second", range: 0...59)
        static let minute = FieldSpec(name: "minute", range: 0...59)
        static let hour = FieldSpec(name: "hour", range: 0...23)
        static let dayOfMonth = FieldSpec(name: "day-of-month", range: 1...31)
        static let month = FieldSpec(
            name: "month", range: 1...12, names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], firstNamed: 1)
        static let weekday = FieldSpec(name: "weekday", range: 0...7, names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])
    }

    private struct FieldProblem: Error {
        let text: String
        init(_ text: String) { self.text = text }
    }

    private static func parse(_ text: String, _ spec: FieldSpec) throws(FieldProblem) -> (bits: UInt64, restricted: Bool) {
        if text == "*" || text == "?" { return (bits(spec.range), false) }
        var result: UInt64 = 0
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !part.isEmpty else { throw FieldProblem("empty list item") }
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw FieldProblem("more than one '/' in \(Self.quote(String(part)))") }
            var step = 1
            if pieces.count == 2 {
                guard let n = Int(pieces[1]), n > 0 else { throw FieldProblem("step \(Self.quote(String(pieces[1]))) is not a whole number above 0") }
                step = n
            }
            let base = pieces[0]
            let range: ClosedRange<Int>
            if base == "*" || base == "?" {
                range = spec.range
            } else if let dash = base.firstIndex(of: "-") {
                let low = try value(base[..<dash], spec), high = try value(base[base.index(after: dash)...], spec)
                guard low <= high else { throw FieldProblem("range \(low)-\(high) runs backwards") }
                range = low...high
            } else {
                let start = try value(base, spec)
                // `a/n` runs from a to the end of the field's range; a plain number is itself.
                range = pieces.count == 2 ? start...spec.range.upperBound : start...start
            }
            for v in stride(from: range.lowerBound, through: range.upperBound, by: step) { result |= 1 << UInt64(v) }
        }
        // As in Vixie cron, a field starting with `*` counts as unrestricted for the day rule.
        return (result, !(text.hasPrefix("*") || text.hasPrefix("?")))
    }

    private static func value(_ text: Substring, _ spec: FieldSpec) throws(FieldProblem) -> Int {
        if let index = spec.names.firstIndex(of: text.uppercased()) { return index + spec.firstNamed }
        guard let number = Int(text) else {
            let known = spec.names.isEmpty ? "" : " (or a name: \(spec.names.first!)…\(spec.names.last!))"
            throw FieldProblem("\(Self.quote(String(text))) is not a number\(known)")
        }
        guard spec.range.contains(number) else {
            throw FieldProblem("\(number) is out of range \(spec.range.lowerBound)...\(spec.range.upperBound)")
        }
        return number
    }

    /// `text` in quotes, escaped: expressions come from configuration and end up in logs.
    static func quote(_ text: String) -> String { "'\(SafeText.escape(text))'" }

    private static func bits(_ range: ClosedRange<Int>) -> UInt64 {
        range.reduce(0) { $0 | 1 << UInt64($1) }
    }
}
