import Foundation
import Testing

/// The shipped binaries link FoundationEssentials without ICU, where named time zones, non-fixed
/// calendars' zones and locales do not exist (`TimeZone(identifier: "UTC")` is nil). A test process
/// links Foundation, and ICU with it, so a call to one of them works here and traps in production:
/// this reads the sources for them instead.
@Suite("Sources call nothing that needs ICU")
struct WithoutICUTests {
    static let needICU = ["TimeZone(identifier:", "TimeZone.current", "Calendar(identifier:", "Calendar.current", "Locale(", "Locale.current", "DateFormatter", "NumberFormatter", "import FoundationInternationalization"]

    /// Whether `api` stands in `line` as a name of its own (`ScheduleTimeZone(identifier:` is not `TimeZone(identifier:`).
    static func mentions(_ line: String, _ api: String) -> Bool {
        let pattern = "(?<![A-Za-z0-9_])" + NSRegularExpression.escapedPattern(for: api)
        let regex = try! NSRegularExpression(pattern: pattern)
        return regex.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) != nil
    }

    @Test func theCheckFindsANameOnlyWhereItStandsAlone() {
        #expect(Self.mentions("calendar.timeZone = TimeZone(identifier: \"UTC\")!", "TimeZone(identifier:"))
        #expect(!Self.mentions("static let utc = ScheduleTimeZone(identifier: \"UTC\", rules: .fixed(0))", "TimeZone(identifier:"))
    }

    @Test func noSourceUsesAnAPIThatNeedsICU() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources")
        let walker = try #require(FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil))
        var files = 0
        var found: [String] = []
        while let url = walker.nextObject() as? URL {
            guard url.pathExtension == "swift" else { continue }
            files += 1
            let text = try String(contentsOf: url, encoding: .utf8)
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let code = line.trimmingCharacters(in: .whitespaces)
                guard !code.hasPrefix("//") else { continue }
                for api in Self.needICU where Self.mentions(code, api) { found.append("\(url.lastPathComponent):\(number + 1): \(api)") }
            }
        }
        #expect(files > 100, "read \(files) source files under \(sources.path)")
        #expect(found.isEmpty, "needs ICU, absent from the release binaries: \(found)")
    }
}
