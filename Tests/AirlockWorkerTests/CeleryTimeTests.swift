import AirlockTestKit
import Foundation
import Testing

@testable import AirlockWorker

/// Celery's ISO-8601 times, written and read with civil arithmetic (no Calendar: a worker without
/// ICU has no zone named "UTC"), against Foundation's Gregorian calendar in this test process.
@Suite("Celery times without Calendar")
struct CeleryTimeTests {
    /// `date`'s whole seconds as Foundation's Gregorian calendar in UTC reads them.
    static func reference(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0)!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    @Test("formatting agrees with Foundation's calendar, and parsing reads it back")
    func formatAndParse() throws {
        var shuffle = SeededShuffle(state: 42)
        for _ in 0..<5000 {
            // Whole microseconds from 1970 to 2038, where a Double still holds each one exactly
            // enough to round back to it.
            let micros = shuffle.next(0...2_147_483_646_999_999)
            let date = Date(timeIntervalSince1970: Double(micros) / 1_000_000)
            let text = CeleryTime.format(date)
            #expect(text == Self.reference(date) + String(format: ".%06d+00:00", Int(micros % 1_000_000)), "\(micros)")
            let back = try #require(CeleryTime.parse(text))
            #expect(abs(back.timeIntervalSince1970 - date.timeIntervalSince1970) < 0.000_001, "\(text)")
        }
    }

    @Test func zonesAndTheirAbsence() throws {
        let utc = try #require(CeleryTime.parse("2026-12-03T13:30:00Z"))
        #expect(utc.timeIntervalSince1970 == 1_796_304_600)
        #expect(CeleryTime.parse("2026-12-03T13:30:00")?.timeIntervalSince1970 == 1_796_304_600, "no zone means UTC")
        #expect(CeleryTime.parse("2026-12-03T15:30:00+02:00")?.timeIntervalSince1970 == 1_796_304_600)
        #expect(CeleryTime.parse("2026-12-03 08:30:00.250-05:00")?.timeIntervalSince1970 == 1_796_304_600.25)
        #expect(CeleryTime.parse("2024-02-29T00:00:00Z")?.timeIntervalSince1970 == 1_709_164_800)
        for bad in ["2026-13-01T00:00:00Z", "2026-12-00T00:00:00Z", "2026-12-03T24:00:00Z", "2026-12-03T13:60:00Z", "2026-12-03", "2026-12-03T13:30:00+0200", "x"] {
            #expect(CeleryTime.parse(bad) == nil, "\(bad)")
        }
    }
}
