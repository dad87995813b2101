#if canImport(FoundationEssentials)
import FoundationEssentials
// FoundationEssentials alone knows only UTC and fixed offsets; the IANA zones (`Europe/Paris`)
// come from FoundationInternationalization's ICU. Without full Foundation nothing else links that
// library, so the reference in `unknown(_:)` below is what keeps it in a static binary.
import FoundationInternationalization
#else
import Foundation
#endif

/// The time zones cron schedules run in, by IANA name.
enum ScheduleTimeZone {
    /// The zone `name` names (`UTC`, `Europe/Paris`, `GMT+2`), or nil.
    static func named(_ name: String) -> TimeZone? { TimeZone(identifier: name) }

    /// Why `name` was refused, and what to write instead.
    static func unknown(_ name: String) -> String {
        "unknown time zone \(CronExpression.quote(name)); use one of the \(TimeZone.knownTimeZoneIdentifiers.count) IANA names, such as Europe/Paris"
    }
}
