import Foundation
import Testing

@testable import Airlock

/// `JSONBytesEncoder` against its oracle, `JSONEncoder()` with default options: the same JSON
/// value for every shape of `Encodable`, and what it writes decodes back with `JSONDecoder`.
extension AirlockCore {
    @Suite("JSONBytesEncoder matches JSONEncoder")
    struct JSONBytesEncoderTests {
        struct Scalars: Codable, Equatable {
            var string = "héllo \"wörld\"\n\u{1}\u{7f}\u{2028}/"
            var int = -42, int8 = Int8.min, int16 = Int16.max, int32 = Int32.min, int64 = Int64.max
            var uint = UInt.max, uint8 = UInt8.max, uint16 = UInt16(7), uint32 = UInt32.max, uint64 = UInt64.max
            var bool = true
            var double = 2.5, whole = 2.0, tiny = Double.leastNonzeroMagnitude, huge = 1e300, negative = -0.125
            var float: Float = 0.1, wholeFloat: Float = 3, bigFloat: Float = 3.4e38
        }

        struct Optionals: Codable, Equatable {
            var present: Int? = 1
            var absent: String?
            var nested: Optionals.Inner? = Inner()
            struct Inner: Codable, Equatable { var value: Double? = nil; var list: [Int?] = [1, nil, 3] }
        }

        enum Shape: Codable, Equatable {
            case circle(radius: Double)
            case square(Int)
            case point
        }

        struct Foundationish: Codable, Equatable {
            var date = Date(timeIntervalSinceReferenceDate: 12345.678)
            var data = Data([0, 1, 2, 250, 255])
            var url = URL(string: "https://example.com/a b?q=1".addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed)!)!
            var decimal = Decimal(string: "12345.6789")!
            var uuid = UUID(uuidString: "0F8E2A4C-5B6D-4E7F-8A9B-0C1D2E3F4A5B")!
        }

        struct Collections: Codable, Equatable {
            var byName: [String: Int] = ["a": 1, "b": 2]
            var byNumber: [Int: String] = [1: "one", 20: "twenty"]
            var byOther: [Double: Bool] = [1.5: true]
            var nested: [[Int]] = [[], [1], [2, 3]]
            var shapes: [Shape] = [.circle(radius: 1.5), .square(2), .point]
            var set: Set<Int> = [3]
            var empty: [String] = []
        }

        /// Hand-written containers: nested keyed and unkeyed, a key written twice, a super encoder.
        struct Custom: Encodable {
            enum Keys: String, CodingKey { case a, b, c, list, `super` }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: Keys.self)
                try container.encode(1, forKey: .a)
                try container.encode("twice", forKey: .a)
                var nested = container.nestedContainer(keyedBy: Keys.self, forKey: .b)
                try nested.encodeNil(forKey: .c)
                var list = container.nestedUnkeyedContainer(forKey: .list)
                try list.encode(true)
                var inner = list.nestedContainer(keyedBy: Keys.self)
                try inner.encode(2.5, forKey: .a)
                var deeper = list.nestedUnkeyedContainer()
                try deeper.encode("x")
                try list.encode(Shape.point)
                let parent = container.superEncoder()
                var parentContainer = parent.singleValueContainer()
                try parentContainer.encode([1, 2])
                let named = container.superEncoder(forKey: .c)
                var namedContainer = named.container(keyedBy: Keys.self)
                try namedContainer.encode(Int8(-3), forKey: .a)
                // A container asked for twice writes into the same object.
                var again = encoder.container(keyedBy: Keys.self)
                try again.encode(UInt16(9), forKey: .list)
            }
        }

        /// Classes that encode their superclass through `superEncoder()`.
        class Base: Encodable {
            var id = 7
        }

        final class Derived: Base {
            var extra = "more"
            enum Keys: CodingKey { case extra }
            override func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: Keys.self)
                try container.encode(extra, forKey: .extra)
                try super.encode(to: container.superEncoder())
            }
        }

        struct EncodesNothing: Encodable {
            func encode(to encoder: any Encoder) throws {}
        }

        struct NotFinite: Encodable {
            var value: Double
        }

        func expectSameJSON(_ value: some Encodable, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let ours = try JSONBytesEncoder.encode(value)
            let theirs = try JSONEncoder().encode(value)
            #expect(try JSONParser.parse(ours) == JSONParser.parse(theirs),
                    "ours: \(String(decoding: ours, as: UTF8.self))\ntheirs: \(String(decoding: theirs, as: UTF8.self))",
                    sourceLocation: sourceLocation)
        }

        func expectRoundTrip<T: Codable & Equatable>(_ value: T, sourceLocation: SourceLocation = #_sourceLocation) throws {
            try expectSameJSON(value, sourceLocation: sourceLocation)
            #expect(try JSONDecoder().decode(T.self, from: Data(JSONBytesEncoder.encode(value))) == value, sourceLocation: sourceLocation)
        }

        @Test func scalarsOfEveryWidth() throws {
            try expectRoundTrip(Scalars())
            var extremes = Scalars()
            (extremes.int, extremes.int64, extremes.double, extremes.float) = (.min, .min, -1e-300, -Float.leastNonzeroMagnitude)
            try expectRoundTrip(extremes)
        }

        @Test func optionalsAreNullInsideArraysAndLeftOutAsFields() throws {
            try expectRoundTrip(Optionals())
            try expectRoundTrip(Optionals(present: nil, absent: "here", nested: nil))
            let written = String(decoding: try JSONBytesEncoder.encode(Optionals(present: nil)), as: UTF8.self)
            #expect(!written.contains("present") && !written.contains("absent"), "\(written)")
        }

        @Test func enumsWithAssociatedValues() throws {
            for shape in [Shape.circle(radius: 0.5), .square(-1), .point] { try expectRoundTrip(shape) }
        }

        @Test func foundationTypesTakeJSONEncodersForms() throws {
            try expectRoundTrip(Foundationish())
            let object = try JSONParser.parse(JSONBytesEncoder.encode(Foundationish()))
            #expect(object["data"] == .string("AAEC+v8="))
            #expect(object["uuid"] == .string("0F8E2A4C-5B6D-4E7F-8A9B-0C1D2E3F4A5B"))
        }

        @Test func collectionsAndDictionariesOfEveryKeyKind() throws {
            try expectRoundTrip(Collections())
            try expectRoundTrip([1, 2, 3])
            try expectRoundTrip(["top": ["level": true]])
            try expectRoundTrip("a top-level string")
            try expectRoundTrip(Optional<Int>.none)
        }

        @Test func handWrittenContainersAndSuperEncoders() throws {
            try expectSameJSON(Custom())
            try expectSameJSON(Derived())
            try expectSameJSON([Derived(), Derived()])
        }

        @Test func whatJSONEncoderRefusesIsRefused() {
            for bad in [Double.nan, .infinity, -.infinity] {
                #expect(throws: EncodingError.self) { try JSONEncoder().encode(NotFinite(value: bad)) }
                #expect(throws: EncodingError.self) { try JSONBytesEncoder.encode(NotFinite(value: bad)) }
            }
            #expect(throws: EncodingError.self) { try JSONBytesEncoder.encode([Float.nan]) }
            #expect(throws: EncodingError.self) { try JSONEncoder().encode(EncodesNothing()) }
            #expect(throws: EncodingError.self) { try JSONBytesEncoder.encode(EncodesNothing()) }
        }

        /// Random structures of nested arrays and objects of random scalars: the same value both ways.
        @Test func randomTreesMatch() throws {
            var generator = SystemRandomNumberGenerator()
            for _ in 0..<300 { try expectSameJSON(JSONValue.randomTree(using: &generator)) }
        }
    }
}
