#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Decodes a typed task (any `Decodable`) straight from the ``JSONValue`` its arguments already
/// are, as `JSONDecoder()` with default options decodes the JSON text of that value — the same
/// values accepted and the same refused (`Data` from Base64, `URL` from a string, `Decimal` from a
/// number, `Date` from seconds since 2001, an integer from a whole number that fits) — without
/// writing the text and parsing it again for every job a worker runs.
package enum JSONValueDecoder {
    /// `T` read from `value`.
    /// - Throws: `DecodingError` where `JSONDecoder` would throw one; whatever `T`'s own
    ///   `init(from:)` throws.
    package static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try TreeDecoder(value, codingPath: []).decodeValue(T.self)
    }
}

private final class TreeDecoder: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(_ value: JSONValue, codingPath: [any CodingKey]) {
        self.value = value
        self.codingPath = codingPath
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else {
            throw Self.mismatch([String: JSONValue].self, value, at: codingPath)
        }
        return KeyedDecodingContainer(KeyedContainer<Key>(members: members, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let elements) = value else {
            throw Self.mismatch([JSONValue].self, value, at: codingPath)
        }
        return UnkeyedContainer(elements: elements, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleValueContainer(decoder: self) }

    func decodeValue<T: Decodable>(_ type: T.Type) throws -> T {
        try Self.decode(T.self, from: value, at: codingPath)
    }

    /// `T` from `value`: the scalars and the types `JSONDecoder` reads its own way first, then
    /// anything else through its `init(from:)`. Types are compared, not cast.
    static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue, at path: [any CodingKey]) throws -> T {
        if type == String.self {
            guard case .string(let string) = value else { throw mismatch(type, value, at: path) }
            return string as! T
        }
        if type == Int.self { return try integer(Int.self, value, at: path) as! T }
        if type == Bool.self {
            guard case .bool(let bool) = value else { throw mismatch(type, value, at: path) }
            return bool as! T
        }
        if type == Double.self { return try double(value, type, at: path) as! T }
        if type == Float.self {
            // As JSONDecoder reads a Float from the number's text: rounded to the nearest Float,
            // refused when that overflows to infinity or underflows to zero.
            let double = try double(value, type, at: path)
            let float = Float(double)
            guard float.isFinite, float != 0 || double == 0 else {
                throw DecodingError.dataCorrupted(DecodingError.Context(
                    codingPath: path, debugDescription: "Number \(value) does not fit in Float."))
            }
            return float as! T
        }
        if type == Data.self {
            guard case .string(let string) = value else { throw mismatch(type, value, at: path) }
            guard let data = Data(base64Encoded: string) else {
                throw DecodingError.dataCorrupted(DecodingError.Context(codingPath: path, debugDescription: "Encountered Data is not valid Base64."))
            }
            return data as! T
        }
        if type == URL.self {
            guard case .string(let string) = value else { throw mismatch(type, value, at: path) }
            guard let url = URL(string: string) else {
                throw DecodingError.dataCorrupted(DecodingError.Context(codingPath: path, debugDescription: "Invalid URL string."))
            }
            return url as! T
        }
        if type == Decimal.self {
            // The number's text as JSONValue writes it, which is what JSONDecoder would have read.
            switch value {
            case .int, .double: break
            default: throw mismatch(type, value, at: path)
            }
            var text: [UInt8] = []
            JSONWriter.write(value, into: &text)
            guard let decimal = Decimal(string: String(decoding: text, as: UTF8.self)) else { throw mismatch(type, value, at: path) }
            return decimal as! T
        }
        if type == Int64.self { return try integer(Int64.self, value, at: path) as! T }
        if type == Int32.self { return try integer(Int32.self, value, at: path) as! T }
        if type == Int16.self { return try integer(Int16.self, value, at: path) as! T }
        if type == Int8.self { return try integer(Int8.self, value, at: path) as! T }
        if type == UInt.self { return try integer(UInt.self, value, at: path) as! T }
        if type == UInt64.self { return try integer(UInt64.self, value, at: path) as! T }
        if type == UInt32.self { return try integer(UInt32.self, value, at: path) as! T }
        if type == UInt16.self { return try integer(UInt16.self, value, at: path) as! T }
        if type == UInt8.self { return try integer(UInt8.self, value, at: path) as! T }
        return try T(from: TreeDecoder(value, codingPath: path))
    }

    /// An integer from a JSON number that holds one exactly: `2` or `2.0`, not `2.5` nor a value
    /// outside `I`'s range.
    static func integer<I: FixedWidthInteger>(_ type: I.Type, _ value: JSONValue, at path: [any CodingKey]) throws -> I {
        let result: I?
        switch value {
        case .int(let int): result = I(exactly: int)
        case .double(let double): result = I(exactly: double)
        default: throw mismatch(type, value, at: path)
        }
        guard let result else {
            throw DecodingError.dataCorrupted(DecodingError.Context(
                codingPath: path, debugDescription: "Number \(value) does not fit in \(I.self)."))
        }
        return result
    }

    static func double(_ value: JSONValue, _ type: Any.Type, at path: [any CodingKey]) throws -> Double {
        switch value {
        case .double(let double): return double
        case .int(let int): return Double(int)
        default: throw mismatch(type, value, at: path)
        }
    }

    static func mismatch(_ type: Any.Type, _ value: JSONValue, at path: [any CodingKey]) -> DecodingError {
        let context = DecodingError.Context(codingPath: path, debugDescription: "Expected to decode \(type) but found \(kind(of: value)) instead.")
        return value == .null ? .valueNotFound(type, context) : .typeMismatch(type, context)
    }

    static func kind(of value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "a dictionary"
        }
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSONValue]
    let codingPath: [any CodingKey]

    var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

    private func member(_ key: Key) throws -> JSONValue {
        guard let value = members[key.stringValue] else {
            throw DecodingError.keyNotFound(key, DecodingError.Context(
                codingPath: codingPath, debugDescription: "No value associated with key \(key) (\"\(key.stringValue)\")."))
        }
        return value
    }

    func decodeNil(forKey key: Key) throws -> Bool { try member(key) == .null }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try TreeDecoder.decode(T.self, from: try member(key), at: codingPath + [key])
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try TreeDecoder(try member(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try TreeDecoder(try member(key), codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { TreeDecoder(members["super"] ?? .null, codingPath: codingPath + [SuperKey()]) }

    func superDecoder(forKey key: Key) throws -> any Decoder { TreeDecoder(members[key.stringValue] ?? .null, codingPath: codingPath + [key]) }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let elements: [JSONValue]
    let codingPath: [any CodingKey]
    var currentIndex = 0
    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    init(elements: [JSONValue], codingPath: [any CodingKey]) {
        self.elements = elements
        self.codingPath = codingPath
    }

    private var path: [any CodingKey] { codingPath + [IndexKey(index: currentIndex)] }

    private func current(_ type: Any.Type) throws -> JSONValue {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(type, DecodingError.Context(codingPath: path, debugDescription: "Unkeyed container is at end."))
        }
        return elements[currentIndex]
    }

    mutating func decodeNil() throws -> Bool {
        guard try current(Never.self) == .null else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let value = try TreeDecoder.decode(T.self, from: try current(type), at: path)
        currentIndex += 1
        return value
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let container = try TreeDecoder(try current(type), codingPath: path).container(keyedBy: type)
        currentIndex += 1
        return container
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let container = try TreeDecoder(try current([JSONValue].self), codingPath: path).unkeyedContainer()
        currentIndex += 1
        return container
    }

    mutating func superDecoder() throws -> any Decoder {
        let decoder = TreeDecoder(try current((any Decoder).self), codingPath: path)
        currentIndex += 1
        return decoder
    }
}

private struct SingleValueContainer: SingleValueDecodingContainer {
    let decoder: TreeDecoder
    var codingPath: [any CodingKey] { decoder.codingPath }

    func decodeNil() -> Bool { decoder.value == .null }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.decodeValue(T.self) }
}

private struct SuperKey: CodingKey {
    var stringValue: String { "super" }
    var intValue: Int? { nil }
    init() {}
    init?(stringValue: String) { nil }
    init?(intValue: Int) { nil }
}

private struct IndexKey: CodingKey {
    let index: Int
    var stringValue: String { "Index \(index)" }
    var intValue: Int? { index }
    init(index: Int) { self.index = index }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.index = intValue }
}
