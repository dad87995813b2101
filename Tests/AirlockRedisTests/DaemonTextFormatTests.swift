import Foundation
import Testing

@testable import AirlockDaemon

/// The daemon's text formatting once done by Foundation (`String(format:)`, `NSString` paths),
/// checked against Foundation itself, which the tests may still import.
@Suite("Daemon: text formats without Foundation")
struct DaemonTextFormatTests {
    @Test("one decimal is printf's %.1f, halves and all")
    func oneDecimalIsPrintf() {
        let values: [Double] = [0, -0.0, 0.05, 0.25, 0.35, 4.25, 4.35, 9.95, 12.5, 99.99, -1.25, 1e9 + 0.05, 123_456.789, .nan, .infinity, -.infinity]
        for value in values {
            #expect(Format.oneDecimal(value) == String(format: "%.1f", value), "\(value)")
        }
        for tenth in 0..<2000 {
            let value = Double(tenth) / 100
            #expect(Format.oneDecimal(value) == String(format: "%.1f", value), "\(value)")
        }
    }

    @Test("ages: ms, tenths of seconds, then two units with the smaller zero-padded")
    func ages() {
        #expect(Format.age(milliseconds: nil) == "-")
        #expect(Format.age(milliseconds: 850) == "850ms")
        #expect(Format.age(milliseconds: 4_249) == "4.2s")
        #expect(Format.age(milliseconds: 42_000) == "42s")
        #expect(Format.age(milliseconds: 185_000) == "3m05s")
        #expect(Format.age(milliseconds: 7_380_000) == "2h03m")
        #expect(Format.age(milliseconds: 352_800_000) == "4d02h")
        #expect(Format.age(milliseconds: 36_000_000) == "10h00m")
        #expect(Format.rate(12.46) == "12.5" && Format.rate(nil) == "-")
        #expect(Format.seconds(3) == "3s" && Format.seconds(2.5) == "2.5s")
    }

    @Test("a path's directory is NSString's deletingLastPathComponent")
    func directoryOfAPath() {
        for path in ["/usr/local/bin/airlock-workerd", "/airlock-workerd", "bin/tool", "tool", "/a/b/", "/", "", "//x", "a//b"] {
            #expect(OutboxTool.directory(of: path) == (path as NSString).deletingLastPathComponent, "\(path)")
        }
    }
}
