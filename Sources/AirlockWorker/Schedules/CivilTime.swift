/// Wall-clock dates and times in the proleptic Gregorian calendar, counted in seconds the way Unix
/// time counts them (no leap seconds), with no time zone: a zone's rules map them to instants
/// (``ScheduleTimeZone``). Cron matches these fields, and arithmetic on them is exact — no day is
/// 23 or 25 hours long here — which is what lets ``CronExpression`` step through them in jumps.
struct CivilTime: Hashable {
    let year: Int
    /// 1…12.
    let month: Int
    /// 1…31.
    let day: Int
    let hour: Int
    let minute: Int
    let second: Int
    /// 0 is Sunday.
    let weekday: Int

    static let secondsPerDay: Int64 = 86_400

    /// The fields of `seconds` counted from 1970-01-01 00:00:00.
    init(_ seconds: Int64) {
        let days = seconds.flooredDiv(Self.secondsPerDay)
        let intoDay = Int(seconds - days * Self.secondsPerDay)
        (year, month, day) = Self.date(fromDays: days)
        hour = intoDay / 3600
        minute = intoDay / 60 % 60
        second = intoDay % 60
        weekday = Self.weekday(ofDay: days)
    }

    /// The weekday (0 is Sunday) of the day `days` after 1970-01-01, a Thursday.
    static func weekday(ofDay days: Int64) -> Int {
        Int((days + 4) - (days + 4).flooredDiv(7) * 7)
    }

    /// The number of days from 1970-01-01 to the given date; `month` may run past 12 into the
    /// next year. (Howard Hinnant's `days_from_civil`.)
    static func days(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(year) + Int64((month - 1).flooredDiv(12))
        let m = Int64(month - 1 - (month - 1).flooredDiv(12) * 12 + 1)
        let shifted = m <= 2 ? y - 1 : y
        let era = shifted.flooredDiv(400)
        let yearOfEra = shifted - era * 400
        let dayOfYear = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The date `days` after 1970-01-01. (Howard Hinnant's `civil_from_days`.)
    static func date(fromDays days: Int64) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = z.flooredDiv(146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (Int(yearOfEra + era * 400 + (month <= 2 ? 1 : 0)), Int(month), Int(day))
    }

    static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    static func daysIn(month: Int, of year: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}

extension BinaryInteger {
    /// Division rounding towards negative infinity.
    func flooredDiv(_ divisor: Self) -> Self {
        let q = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? q - 1 : q
    }
}
