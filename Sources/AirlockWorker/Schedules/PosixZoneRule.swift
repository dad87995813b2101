/// A POSIX TZ rule with RFC 8536's extensions (`CET-1CEST,M3.5.0,M10.5.0/3`,
/// `<-04>4<-03>,M9.1.6/24,M4.1.6/24`), as a TZif file's footer gives it: a standard offset, and
/// optionally a daylight offset with the yearly rules for when it starts and ends.
///
/// POSIX writes offsets west of UTC as positive (`CET-1` is one hour east); these fields hold them
/// east-positive, like the rest of ``ZoneRules``.
struct PosixZoneRule: Sendable, Hashable {
    /// Seconds east of UTC outside daylight time.
    let standardOffset: Int32
    /// Daylight time, when the zone has it.
    let daylight: Daylight?

    struct Daylight: Sendable, Hashable {
        /// Seconds east of UTC during daylight time.
        let offset: Int32
        /// When it starts, on the standard clock.
        let start: Change
        /// When it ends, on the daylight clock.
        let end: Change
    }

    /// A day of each year and a time of that day (which may be negative or past 24 h).
    struct Change: Sendable, Hashable {
        enum Day: Sendable, Hashable {
            /// `Jn`: day 1…365, February 29th never counted.
            case julianNoLeap(Int)
            /// `n`: day 0…365, February 29th counted.
            case zeroBased(Int)
            /// `Mm.w.d`: weekday `d` (0 is Sunday) of week `w` (1…5, 5 the last) of month `m`.
            case monthWeekDay(month: Int, week: Int, weekday: Int)
        }
        let day: Day
        /// Seconds after that day's midnight.
        let time: Int64

        /// The wall-clock time of the change in `year`, as seconds since the epoch.
        func local(in year: Int) -> Int64 {
            let days: Int64
            switch day {
            case .julianNoLeap(let n):
                // Day 60 is March 1st whether or not the year has a February 29th.
                let leapShift = CivilTime.isLeap(year) && n >= 60 ? 1 : 0
                days = CivilTime.days(year: year, month: 1, day: 1) + Int64(n - 1 + leapShift)
            case .zeroBased(let n):
                days = CivilTime.days(year: year, month: 1, day: 1) + Int64(n)
            case .monthWeekDay(let month, let week, let weekday):
                let first = CivilTime.days(year: year, month: month, day: 1)
                let firstWeekday = CivilTime.weekday(ofDay: first)
                var day = 1 + (weekday - firstWeekday + 7) % 7 + 7 * (week - 1)
                while day > CivilTime.daysIn(month: month, of: year) { day -= 7 }
                days = first + Int64(day - 1)
            }
            return days * CivilTime.secondsPerDay + time
        }
    }

    /// Every offset the rule can give: the standard one, and the daylight one when there is one.
    var offsets: [Int32] { [standardOffset] + (daylight.map { [$0.offset] } ?? []) }

    /// The offset in seconds east of UTC at `instant`.
    func offset(at instant: Int64) -> Int32 {
        guard let daylight else { return standardOffset }
        let year = CivilTime(instant + Int64(standardOffset)).year
        // Daylight time runs from a start to the first end after it, which in the southern
        // hemisphere falls in the next year; the year before's period may reach into this one.
        for y in [year - 1, year] {
            let start = daylight.start.local(in: y) - Int64(standardOffset)
            var end = daylight.end.local(in: y) - Int64(daylight.offset)
            if end <= start { end = daylight.end.local(in: y + 1) - Int64(daylight.offset) }
            if start <= instant && instant < end { return daylight.offset }
        }
        return standardOffset
    }

    /// Parses `text`; nil when it is not a rule.
    init?(_ text: String) {
        var scanner = Scanner(Array(text.utf8))
        guard scanner.name(), let standard = scanner.offset(maxHours: 24) else { return nil }
        standardOffset = Int32(-standard)
        if scanner.atEnd {
            daylight = nil
            return
        }
        guard scanner.name() else { return nil }
        var daylightOffset = standardOffset + 3600
        if let written = scanner.offset(maxHours: 24) { daylightOffset = Int32(-written) }
        // Without rules POSIX leaves the dates to the implementation; glibc and tzcode use the
        // United States' since 2007.
        var start = Change(day: .monthWeekDay(month: 3, week: 2, weekday: 0), time: 7200)
        var end = Change(day: .monthWeekDay(month: 11, week: 1, weekday: 0), time: 7200)
        if !scanner.atEnd {
            guard scanner.take(UInt8(ascii: ",")), let s = scanner.change(), scanner.take(UInt8(ascii: ",")), let e = scanner.change() else { return nil }
            start = s
            end = e
        }
        guard scanner.atEnd else { return nil }
        daylight = Daylight(offset: daylightOffset, start: start, end: end)
    }

    private struct Scanner {
        let bytes: [UInt8]
        var at = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { at == bytes.count }
        var peek: UInt8? { at < bytes.count ? bytes[at] : nil }

        mutating func take(_ byte: UInt8) -> Bool {
            guard peek == byte else { return false }
            at += 1
            return true
        }

        /// `CET` (three or more letters) or `<+0330>` (quoted, letters, digits and signs).
        mutating func name() -> Bool {
            if take(UInt8(ascii: "<")) {
                let start = at
                while let b = peek, b != UInt8(ascii: ">") {
                    guard isLetter(b) || isDigit(b) || b == UInt8(ascii: "+") || b == UInt8(ascii: "-") else { return false }
                    at += 1
                }
                return at - start >= 3 && take(UInt8(ascii: ">"))
            }
            let start = at
            while let b = peek, isLetter(b) { at += 1 }
            return at - start >= 3
        }

        /// `[+-]hh[:mm[:ss]]` in seconds; nil (consuming nothing) when there is none.
        mutating func offset(maxHours: Int64) -> Int64? {
            let start = at
            var sign: Int64 = 1
            if take(UInt8(ascii: "-")) { sign = -1 } else { _ = take(UInt8(ascii: "+")) }
            guard let hours = number(maxDigits: 3), hours <= maxHours else {
                at = start
                return nil
            }
            var seconds = hours * 3600
            for unit: Int64 in [60, 1] {
                guard take(UInt8(ascii: ":")) else { break }
                guard let n = number(maxDigits: 2), n < 60 else {
                    at = start
                    return nil
                }
                seconds += n * unit
            }
            return sign * seconds
        }

        /// `Jn`, `n` or `Mm.w.d`, then `/time` (default 02:00, RFC 8536 allows −167…167 hours).
        mutating func change() -> Change? {
            let day: Change.Day
            if take(UInt8(ascii: "J")) {
                guard let n = number(maxDigits: 3), (1...365).contains(n) else { return nil }
                day = .julianNoLeap(Int(n))
            } else if take(UInt8(ascii: "M")) {
                guard let m = number(maxDigits: 2), (1...12).contains(m), take(UInt8(ascii: ".")),
                      let w = number(maxDigits: 1), (1...5).contains(w), take(UInt8(ascii: ".")),
                      let d = number(maxDigits: 1), (0...6).contains(d)
                else { return nil }
                day = .monthWeekDay(month: Int(m), week: Int(w), weekday: Int(d))
            } else {
                guard let n = number(maxDigits: 3), (0...365).contains(n) else { return nil }
                day = .zeroBased(Int(n))
            }
            var time: Int64 = 7200
            if take(UInt8(ascii: "/")) {
                guard let t = offset(maxHours: 167) else { return nil }
                time = t
            }
            return Change(day: day, time: time)
        }

        mutating func number(maxDigits: Int) -> Int64? {
            var value: Int64 = 0, digits = 0
            while let b = peek, isDigit(b), digits < maxDigits {
                value = value * 10 + Int64(b - UInt8(ascii: "0"))
                digits += 1
                at += 1
            }
            return digits == 0 ? nil : value
        }

        private func isLetter(_ b: UInt8) -> Bool { (b | 0x20) >= UInt8(ascii: "a") && (b | 0x20) <= UInt8(ascii: "z") }
        private func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
    }
}
