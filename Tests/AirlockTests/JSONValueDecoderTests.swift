import Foundation
import Testing

@testable import Airlock

/// `JSONValueDecoder` against its oracle, what the worker did before it: `JSONDecoder()` with
/// default options reading the JSON text of the same value. The same values come out, and what
/// one refuses the other refuses.
extension AirlockCore {
    @Suite("JSONValueDecoder matches JSONDecoder")
    struct JSONValueDecoderTests {
        typealias Encoded = JSONBytesEncoderTests

        struct Field<T: Decodable & Equatable>: Decodable, Equatable {
            var v: T
        }

        final class Base: Codable, Equatable {
            var id = 7
            static func == (lhs: Base, rhs: Base) -> Bool { lhs.id == rhs.id }
        }

        struct WithSuper: Decodable, Equatable {
            enum Keys: CodingKey { case extra }
            var extra: String
            var base: Base
            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: Keys.self)
                extra = try container.decode(String.self, forKey: .extra)
                base = try Base(from: container.superDecoder())
            }
        }

        struct FirstOfList: Decodable, Equatable {
            var first: Base
            init(from decoder: any Decoder) throws {
                var list = try decoder.unkeyedContainer()
                first = try Base(from: list.superDecoder())
            }
        }

        /// What the worker did before: the value as JSON text, read back by JSONDecoder.
        static func oracle<T: Decodable>(_ type: T.Type, _ value: JSONValue) -> Result<T, any Error> {
            Result { try JSONDecoder().decode(T.self, from: Data(value.description.utf8)) }
        }

        static func ours<T: Decodable>(_ type: T.Type, _ value: JSONValue) -> Result<T, any Error> {
            Result { try JSONValueDecoder.decode(T.self, from: value) }
        }

        func expectSame<T: Decodable & Equatable>(_ type: T.Type, _ value: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) {
            for wrapped in [value, .object(["v": value])] {
                let isField = wrapped != value
                let expected = isField ? Self.oracle(Field<T>.self, wrapped).map(\.v) : Self.oracle(T.self, wrapped)
                let actual = isField ? Self.ours(Field<T>.self, wrapped).map(\.v) : Self.ours(T.self, wrapped)
                switch (expected, actual) {
                case (.success(let a), .success(let b)):
                    #expect(a == b, "\(T.self) from \(wrapped)", sourceLocation: sourceLocation)
                case (.failure, .failure): break
                case (.success(let a), .failure(let error)):
                    Issue.record("\(T.self) from \(wrapped): JSONDecoder read \(a), ours threw \(error)", sourceLocation: sourceLocation)
                case (.failure(let error), .success(let b)):
                    Issue.record("\(T.self) from \(wrapped): JSONDecoder threw \(error), ours read \(b)", sourceLocation: sourceLocation)
                }
            }
        }

        static let values: [JSONValue] = [
            .int(0), .int(2), .int(-1), .int(127), .int(128), .int(255), .int(256), .int(300), .int(Int.max), .int(Int.min),
            .double(2.0), .double(2.5), .double(-0.0), .double(1e40), .double(9.3e18), .double(1.8446744073709552e19),
            .double(3.4028235e38), .double(Double("1e-320")!),  // a subnormal, parsed at run time (a literal warns)
            .string(""), .string("2"), .string("AAEC+v8="), .string("not base64!"), .string("https://example.com/a?b=c"),
            .bool(true), .bool(false), .null, .array([]), .array([.int(1), .null, .int(3)]), .object([:]), .object(["a": .int(1)]),
        ]

        @Test func everyScalarTypeFromEveryKindOfValue() {
            for value in Self.values {
                expectSame(Int.self, value)
                expectSame(Int8.self, value)
                expectSame(Int16.self, value)
                expectSame(Int32.self, value)
                expectSame(Int64.self, value)
                expectSame(UInt.self, value)
                expectSame(UInt8.self, value)
                expectSame(UInt16.self, value)
                expectSame(UInt32.self, value)
                expectSame(UInt64.self, value)
                expectSame(Double.self, value)
                expectSame(Float.self, value)
                expectSame(Bool.self, value)
                expectSame(String.self, value)
                expectSame(Data.self, value)
                expectSame(URL.self, value)
                expectSame(Decimal.self, value)
                expectSame(Date.self, value)
                expectSame(Int?.self, value)
                expectSame([Int?].self, value)
                expectSame([String: Int].self, value)
                expectSame([Int: Int].self, value)
                expectSame(Encoded.Shape.self, value)
            }
        }

        @Test func whatTheEncoderWritesDecodesBackToTheSameValue() throws {
            func roundTrip<T: Codable & Equatable>(_ value: T, sourceLocation: SourceLocation = #_sourceLocation) throws {
                let tree = try JSONParser.parse(JSONBytesEncoder.encode(value))
                #expect(try JSONValueDecoder.decode(T.self, from: tree) == value, sourceLocation: sourceLocation)
                expectSame(T.self, tree, sourceLocation: sourceLocation)
            }
            // Integers above Int.max do not survive JSONValue (a Double holds them), before this decoder as now.
            var scalars = Encoded.Scalars()
            (scalars.uint, scalars.uint64) = (UInt(Int.max), UInt64(Int.max))
            try roundTrip(scalars)
            try roundTrip(Encoded.Optionals())
            try roundTrip(Encoded.Optionals(present: nil, absent: "here", nested: nil))
            try roundTrip(Encoded.Foundationish())
            try roundTrip(Encoded.Collections())
            for shape in [Encoded.Shape.circle(radius: 0.5), .square(-1), .point] { try roundTrip(shape) }
        }

        @Test func missingKeysNullsAndWrongShapesAreRefusedAlike() {
            let object: JSONValue = ["present": 1, "absent": nil]
            struct Required: Decodable, Equatable { var present: Int; var absent: Int }
            struct Optional2: Decodable, Equatable { var present: Int?; var absent: Int?; var missing: Int? }
            struct Missing: Decodable, Equatable { var missing: String }
            expectSame(Required.self, object)
            expectSame(Optional2.self, object)
            expectSame(Missing.self, object)
            expectSame([Int: Int].self, ["1": 2, "x": 3])
            expectSame([Int: Int].self, ["1": 2, "30": 3])
            expectSame(Encoded.Shape.self, ["circle": ["radius": "wide"]])
            expectSame(Encoded.Shape.self, ["circle": ["radius": 2], "point": [:]])
            #expect(throws: DecodingError.self) { try JSONValueDecoder.decode(Missing.self, from: object) }
        }

        @Test func superDecodersReadTheSameValues() {
            expectSame(WithSuper.self, ["extra": "x", "super": ["id": 3]])
            expectSame(WithSuper.self, ["extra": "x"])
            expectSame(WithSuper.self, ["extra": "x", "super": 4])
            expectSame(FirstOfList.self, [["id": 5], 6])
            expectSame(FirstOfList.self, [])
        }

        /// Random structures against `[String: JSONValue]`-shaped and `JSONValue` targets.
        @Test func randomTreesDecodeAlike() throws {
            var generator = SystemRandomNumberGenerator()
            for _ in 0..<300 {
                let value = JSONValue.randomTree(using: &generator)
                expectSame(JSONValue.self, value)
                expectSame([String: Int].self, value)
                expectSame([[Int]].self, value)
                expectSame([String: [Double?]].self, value)
            }
        }
    }
}

