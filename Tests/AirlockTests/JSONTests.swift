import Foundation
import Testing

@testable import Airlock

extension AirlockCore {
    @Suite("JSONValue and JSONWriter")
    struct JSONTests {
        static let sample: JSONValue = [
            "int": 42, "negative": -7, "big": .int(Int.max), "double": 2.5, "string": "héllo \"world\"",
            "bool": false, "null": nil, "array": [1, "two", 3.25, true, nil, [], [:]],
            "object": ["nested": ["deep": [1, 2, 3]]],
        ]

        func written(_ value: JSONValue, sortKeys: Bool = true) -> String {
            var out: [UInt8] = []
            JSONWriter.write(value, into: &out, sortKeys: sortKeys)
            return String(decoding: out, as: UTF8.self)
        }

        func decoded(_ text: String) throws -> JSONValue {
            try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        }

        @Test func literalForms() {
            let null: JSONValue = nil
            let bool: JSONValue = true
            let int: JSONValue = 3
            let double: JSONValue = 1.5
            let string: JSONValue = "s"
            let array: JSONValue = [1, "a", nil]
            let object: JSONValue = ["k": 1, "k2": [true]]
            #expect(null == .null && null.isNull)
            #expect(bool == .bool(true))
            #expect(int == .int(3))
            #expect(double == .double(1.5))
            #expect(string == .string("s"))
            #expect(array == .array([.int(1), .string("a"), .null]))
            #expect(object == .object(["k": .int(1), "k2": .array([.bool(true)])]))
            let repeated: JSONValue = ["k": 1, "k": 2]
            #expect(repeated == ["k": 2])  // a repeated key keeps its last value
        }

        @Test func accessors() {
            let value = Self.sample
            #expect(value["int"]?.intValue == 42)
            #expect(value["double"]?.doubleValue == 2.5)
            #expect(value["int"]?.doubleValue == 42.0)
            #expect(value["double"]?.intValue == nil)
            #expect(JSONValue.double(3.0).intValue == 3)
            #expect(value["string"]?.stringValue == "héllo \"world\"")
            #expect(value["bool"]?.boolValue == false)
            #expect(value["array"]?.arrayValue?.count == 7)
            #expect(value["object"]?["nested"]?["deep"] == [1, 2, 3])
            #expect(value["missing"] == nil)
            #expect(value["int"]?.stringValue == nil)
            #expect(JSONValue.int(1)["key"] == nil)
        }

        @Test func codableRoundTrip() throws {
            let data = try JSONEncoder().encode(Self.sample)
            let back = try JSONDecoder().decode(JSONValue.self, from: data)
            #expect(back == Self.sample)
        }

        @Test func integersStayIntegers() throws {
            #expect(try decoded("5") == .int(5))
            #expect(try decoded("-3") == .int(-3))
            #expect(try decoded("0") == .int(0))
            #expect(try decoded("1") == .int(1))  // not `true`
            #expect(try decoded("\(Int.max)") == .int(Int.max))
            #expect(try decoded("[1, 2]") == [.int(1), .int(2)])
            #expect(try decoded("true") == .bool(true))
            #expect(try decoded("2.5") == .double(2.5))
        }

        /// The digit writer against `String(_:)`, the oracle, at the edges of each width and on
        /// random values of every magnitude.
        @Test func integersAreWrittenAsTheirDecimalDigits() {
            func digits(_ value: some BinaryInteger) -> String {
                var out: [UInt8] = []
                JSONWriter.writeInteger(value, into: &out)
                return String(decoding: out, as: UTF8.self)
            }
            var generator = SystemRandomNumberGenerator()
            var values: [Int64] = [0, 1, -1, 9, 10, -10, 99, 100, .max, .min, .max - 1, .min + 1, 1_764_000_000_000]
            for _ in 0..<5000 {
                let width = Int64.random(in: 0...62, using: &generator)
                values.append(Int64.random(in: -(1 << width)...((1 << width) - 1), using: &generator))
            }
            for value in values {
                #expect(digits(value) == String(value))
                #expect(digits(Int(value)) == String(Int(value)))
            }
            for value: UInt64 in [0, .max, .max / 10, 1 << 63] { #expect(digits(value) == String(value)) }
            for value: Int8 in [.min, .max, 0, -1] { #expect(digits(value) == String(value)) }
            #expect(digits(Int128.min) == String(Int128.min) && digits(UInt128.max) == String(UInt128.max))
            #expect(written(.int(Int.min)) == String(Int.min))
        }

        @Test func descriptionIsCompactJSONWithSortedKeys() {
            let value: JSONValue = ["c": "x", "a": 1, "b": [true, nil, 1.5]]
            #expect(value.description == #"{"a":1,"b":[true,null,1.5],"c":"x"}"#)
            #expect(JSONValue.string("q").description == #""q""#)
            #expect(JSONValue.double(2).description == "2.0")
        }

        @Test func writerEscapesWhatJSONRequires() {
            #expect(written(.string(#"say "hi""#)) == #""say \"hi\"""#)
            #expect(written(.string(#"back\slash"#)) == #""back\\slash""#)
            #expect(written(.string("line\nfeed\rreturn\ttab")) == #""line\nfeed\rreturn\ttab""#)
            #expect(written(.string("\u{0}\u{1}\u{8}\u{C}\u{1F}")) == #""\u0000\u0001\u0008\u000c\u001f""#)
            #expect(written(.string("/")) == #""/""#)
            #expect(written(.object(["ke\"y": 1])) == #"{"ke\"y":1}"#)
        }

        @Test func writerPassesUnicodeThrough() {
            let text = "héllo wörld ✓ 😀 日本"
            let out = written(.string(text))
            #expect(out == "\"\(text)\"")
            #expect(Array(out.utf8) == [0x22] + Array(text.utf8) + [0x22])
        }

        @Test func writerOutputParsesBackToTheSameValue() throws {
            for sortKeys in [true, false] {
                let text = written(Self.sample, sortKeys: sortKeys)
                #expect(try decoded(text) == Self.sample)
                #expect(try JSONParser.parse(Array(text.utf8)) == Self.sample)
                let foundation = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
                #expect(foundation?["string"] as? String == "héllo \"world\"")
            }
            let tricky: JSONValue = .string("\u{0}\u{1F}\"\\\n\r\t é 😀")
            #expect(try decoded(written(tricky)) == tricky)
        }

        @Test func escapedRunsOfAnyMixRoundTripAndLeaveNoControlCharacter() throws {
            // Plain runs of every length between every kind of character the writer escapes, so
            // each boundary of the run-at-a-time copy is crossed.
            let pieces = ["", "a", "plain text ", "é", "😀", "\"", "\\", "\n", "\u{0}", "\u{7F}", "\u{9B}", "\u{85}",
                          "\u{2028}", "\u{202E}", "\u{2066}", "\u{200F}", "\u{2030}", "\u{E2}", String(repeating: "x", count: 300)]
            var generator = SystemRandomNumberGenerator()
            for _ in 0..<2_000 {
                let text = (0..<Int.random(in: 0...12, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
                let out = written(.string(text))
                #expect(try JSONParser.parse(Array(out.utf8)) == .string(text), "\(Array(text.unicodeScalars))")
                #expect(SafeText.isSafe(out), "\(out)")
            }
        }

        @Test func aStringsScanFindsEveryRunEndAtEveryOffset() throws {
            // A quote, a backslash, a control byte or a non-ASCII byte at any offset of strings
            // and keys up to 24 bytes long (three words, should the scan ever go a word at a time)
            // must be found where it is.
            for length in 0...24 {
                for position in 0..<max(length, 1) {
                    let before = String(repeating: "a", count: position)
                    let after = String(repeating: "b", count: max(0, length - position - 1))
                    for (raw, meaning) in [("\\\"", "\""), ("\\\\", "\\"), ("\\n", "\n"), ("\\u0041", "A"), ("é", "é"), ("\u{7F}", "\u{7F}"), (" ", " ")] {
                        let text = before + raw + after
                        let expected = before + meaning + after
                        #expect(try JSONParser.parse(Array("\"\(text)\"".utf8)) == .string(expected), "\(length) \(position) \(raw)")
                        #expect(try JSONParser.parse(Array("{\"\(text)\":1}".utf8)) == .object([expected: 1]), "a key: \(length) \(position) \(raw)")
                    }
                    for control in ["\u{0}", "\u{1F}", "\n", "\t"] {
                        let text = before + control + after
                        #expect(throws: JSONParseError.self, "\(length) \(position)") { try JSONParser.parse(Array("\"\(text)\"".utf8)) }
                    }
                }
                #expect(throws: JSONParseError.self, "unterminated at \(length)") {
                    try JSONParser.parse(Array("\"\(String(repeating: "x", count: length))".utf8))
                }
                let invalid = Array("\"\(String(repeating: "x", count: length))".utf8) + [0xFF, 0x22]
                #expect(throws: JSONParseError.self, "invalid UTF-8 after \(length)") { try JSONParser.parse(invalid) }
            }
        }

        @Test func wholeDoublesKeepADecimalPointAndStayDoubles() throws {
            #expect(written(.double(1.0)) == "1.0")
            #expect(written(.int(1)) == "1")
            let parsed = try JSONParser.parse(Array(written([1, 1.0, 2.5]).utf8))
            #expect(parsed == [.int(1), .double(1.0), .double(2.5)])
        }

        @Test func nonFiniteDoublesBecomeNull() {
            #expect(written(.double(.infinity)) == "null")
            #expect(written(.double(-.infinity)) == "null")
            #expect(written(.double(.nan)) == "null")
        }

        @Test func largeAndSmallDoublesAreValidJSON() throws {
            for value in [1e20, -1e300, Double.leastNonzeroMagnitude, 0.1, 123456.789] {
                let text = written(.double(value))
                #expect(try decoded(text).doubleValue == value)
            }
        }

        @Test func theParserRejectsMalformedText() {
            #expect(throws: JSONParseError.self) { try JSONParser.parse(Array("[1, 2".utf8)) }
            #expect(throws: JSONParseError.self) { try JSONParser.parse(Array("{\"a\":1} extra".utf8)) }
            #expect(throws: JSONParseError.self) { try JSONParser.parse(Array("\"\u{1}\"".utf8)) }
        }
    }
}
