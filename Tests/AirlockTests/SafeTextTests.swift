import Foundation
import Testing

@testable import Airlock

extension AirlockCore {
    @Suite("SafeText, time arithmetic and JSON escaping of hostile text")
    struct SafeTextTests {
        @Test func controlCharactersBecomeVisibleEscapes() {
            #expect(SafeText.escape("plain text, é and 日本") == "plain text, é and 日本")
            #expect(SafeText.escape("a\nforged line") == "a\\nforged line")
            #expect(SafeText.escape("bell\u{07}esc\u{1B}[31mred") == "bell\\x07esc\\x1b[31mred")
            #expect(SafeText.escape("tab\there\r") == "tab\\there\\r")
            #expect(SafeText.escape("del\u{7F}") == "del\\x7f")
            // C1 controls: U+009B is a one-character CSI on many terminals.
            #expect(SafeText.escape("csi\u{9B}2J") == "csi\\x9b2J")
            #expect(SafeText.escape("\u{85}next line") == "\\x85next line")
            // Bidirectional overrides and line separators reorder or split what is shown.
            #expect(SafeText.escape("evil\u{202E}txt.exe") == "evil\\u{202e}txt.exe")
            #expect(SafeText.escape("a\u{2028}b\u{2066}c") == "a\\u{2028}b\\u{2066}c")
            #expect(SafeText.escape("\u{0}") == "\\x00")
        }

        @Test func isSafeAgreesWithEscape() {
            for text in ["ok", "é", "a\nb", "\u{9B}", "\u{202E}", ""] {
                #expect(SafeText.isSafe(text) == (SafeText.escape(text) == text), "\(text.debugDescription)")
            }
        }

        @Test func everyScalarBelowU00A0IsPrintableAfterEscaping() {
            for value in UInt32(0)..<0xA0 {
                let escaped = SafeText.escape(String(Unicode.Scalar(value)!))
                #expect(escaped.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F }, "U+\(String(value, radix: 16))")
            }
        }

        @Test func jsonStringsEscapeTerminalControlsBeyondWhatJSONRequires() throws {
            let hostile = "x\u{7F}\u{9B}\u{85}\u{2028}\u{2029}\u{202E}\u{2066}\u{200F}\u{1B}y"
            var out: [UInt8] = []
            JSONWriter.writeString(hostile, into: &out)
            let text = String(decoding: out, as: UTF8.self)
            #expect(text == #""x\u007f\u009b\u0085\u2028\u2029\u202e\u2066\u200f\u001by""#)
            // Still valid JSON that reads back as the original string.
            #expect(try JSONParser.parse(out) == .string(hostile))
            // Harmless neighbours of the escaped ranges are written as they are.
            var plain: [UInt8] = []
            JSONWriter.writeString("\u{A0}\u{A9}\u{2030}\u{2070}€", into: &plain)
            #expect(String(decoding: plain, as: UTF8.self) == "\"\u{A0}\u{A9}\u{2030}\u{2070}€\"")
        }

        @Test func checkedSecondsRefuseWhatCannotBeADuration() {
            #expect(Duration(checkedSeconds: 1.5) == .milliseconds(1500))
            #expect(Duration(checkedSeconds: 0) == .zero)
            #expect(Duration(checkedSeconds: 1e300) == nil)
            #expect(Duration(checkedSeconds: .infinity) == nil)
            #expect(Duration(checkedSeconds: .nan) == nil)
            #expect(Duration(checkedSeconds: -1) == nil)
            #expect(Duration(checkedSeconds: Duration.longestAccepted.timeInterval) != nil)
        }

        @Test func saturatingArithmeticNeverTraps() {
            #expect(Int64.max.addingSaturated(1) == .max)
            #expect(Int64.min.addingSaturated(-1) == .min)
            #expect(Int64(5).subtractingSaturated(Int64.min) == .max)
            #expect(Int64(-5).subtractingSaturated(Int64.max) == .min)
            #expect(Int64(10).subtractingSaturated(3) == 7)
            #expect(Int64(saturating: 1e300) == .max)
            #expect(Int64(saturating: -.infinity) == .min)
            #expect(Int64(saturating: .nan) == nil)
            #expect(Int64(saturating: 2.6) == 3)
            #expect(Duration.seconds(Int64.max).wholeMilliseconds == .max)
            #expect(Duration.milliseconds(1234).wholeMilliseconds == 1234)
        }

        @Test func epochMillisecondsClampAbsurdDates() {
            #expect(epochMilliseconds(Date(timeIntervalSince1970: 1.5)) == 1500)
            #expect(epochMilliseconds(Date(timeIntervalSince1970: 1e300)) == .max)
            #expect(epochMilliseconds(Date(timeIntervalSince1970: -1e300)) == .min)
            #expect(acceptedEpochMilliseconds.contains(epochMilliseconds()))
        }
    }
}
