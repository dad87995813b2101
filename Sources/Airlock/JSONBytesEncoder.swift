#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Encodes a typed task (any `Encodable`) straight to JSON bytes, as `JSONEncoder()` with its
/// default options would — the same values for every type, `Data` as Base64, `URL` as its
/// absolute string, `Decimal` as a number, `Date` as seconds since 2001 (`deferredToDate`), a
/// non-finite number refused — at a fraction of its cost: a typed intent is encoded once per
/// enqueue, and `JSONEncoder` was a quarter of a producer's CPU.
///
/// Objects keep their keys in the order they were first encoded; a key encoded twice keeps its
/// last value, as in `JSONEncoder`.
package enum JSONBytesEncoder {
    /// The JSON text of `value`.
    /// - Throws: `EncodingError.invalidValue` for a non-finite floating-point number or a value
    ///   that encodes nothing; whatever the value's own `encode(to:)` throws.
    package static func encode(_ value: some Encodable) throws -> [UInt8] {
        guard let root = try TreeEncoder.encoded(value, at: []) else {
            throw EncodingError.invalidValue(value, EncodingError.Context(codingPath: [], debugDescription: "Top-level \(type(of: value)) did not encode any values."))
        }
        var out: [UInt8] = []
        out.reserveCapacity(64)
        root.write(into: &out)
        return out
    }
}

/// One encoded value. Containers are objects, so a container handed out earlier (a nested
/// one, or one asked for twice) keeps writing into the same place.
private enum Slot {
    case literal(JSONValue)
    case number([UInt8])
    case object(ObjectStorage)
    case array(ArrayStorage)
    /// A `superEncoder`'s value, read when the tree is written.
    case deferred(TreeEncoder)

    func write(into out: inout [UInt8]) {
        switch self {
        case .literal(let value): JSONWriter.write(value, into: &out)
        case .number(let digits): out.append(contentsOf: digits)
        case .object(let object):
            out.append(UInt8(ascii: "{"))
            for (index, key) in object.keys.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONWriter.writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                object.values[key]!.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        case .array(let array):
            out.append(UInt8(ascii: "["))
            for (index, element) in array.elements.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                element.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .deferred(let encoder):
            // An encoder that was handed out and never used encodes an empty object, as JSONEncoder's does.
            (encoder.slot ?? .object(ObjectStorage())).write(into: &out)
        }
    }
}

private final class ObjectStorage {
    var keys: [String] = []
    var values: [String: Slot] = [:]

    func set(_ slot: Slot, for key: String) {
        if values.updateValue(slot, forKey: key) == nil { keys.append(key) }
    }
}

private final class ArrayStorage {
    var elements: [Slot] = []
}

/// The `Encoder` a value encodes itself into; holds the one value it was given.
private final class TreeEncoder: Encoder {
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    var slot: Slot?

    init(codingPath: [any CodingKey]) {
        self.codingPath = codingPath
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let storage: ObjectStorage
        if case .object(let existing) = slot {
            storage = existing
        } else {
            storage = ObjectStorage()
            slot = .object(storage)
        }
        return KeyedEncodingContainer(KeyedContainer<Key>(storage: storage, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let storage: ArrayStorage
        if case .array(let existing) = slot {
            storage = existing
        } else {
            storage = ArrayStorage()
            slot = .array(storage)
        }
        return UnkeyedContainer(storage: storage, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { SingleValueContainer(encoder: self) }

    /// The slot of `value` when it is a scalar or a type `JSONEncoder` writes in a form of its
    /// own, else `nil` (the value encodes itself, into a child encoder).
    /// Types are compared, not cast: a value of the user's own type (the usual child) costs a
    /// comparison of type metadata per case, where a failed dynamic cast is a runtime call.
    static func slot<T: Encodable>(for value: T, at path: [any CodingKey]) throws -> Slot? {
        let type = T.self
        if type == String.self { return .literal(.string(value as! String)) }
        if type == Int.self { return integer(value as! Int) }
        if type == Bool.self { return .literal(.bool(value as! Bool)) }
        if type == Double.self { return try floating(value as! Double, value: value, at: path) }
        if type == Data.self { return .literal(.string((value as! Data).base64EncodedString())) }
        if type == URL.self { return .literal(.string((value as! URL).absoluteString)) }
        if type == Decimal.self {
            let decimal = value as! Decimal
            guard decimal.isFinite else { throw invalid(value, "Decimal.nan is not valid JSON", at: path) }
            return .number(Array(decimal.description.utf8))
        }
        if type == Float.self { return try floating(value as! Float, value: value, at: path) }
        if type == Int64.self { return integer(value as! Int64) }
        if type == Int32.self { return integer(value as! Int32) }
        if type == Int16.self { return integer(value as! Int16) }
        if type == Int8.self { return integer(value as! Int8) }
        if type == UInt.self { return integer(value as! UInt) }
        if type == UInt64.self { return integer(value as! UInt64) }
        if type == UInt32.self { return integer(value as! UInt32) }
        if type == UInt16.self { return integer(value as! UInt16) }
        if type == UInt8.self { return integer(value as! UInt8) }
        if type == Int128.self { return integer(value as! Int128) }
        if type == UInt128.self { return integer(value as! UInt128) }
        return nil
    }

    /// `value`'s slot: scalars and the types `JSONEncoder` writes its own way directly, anything
    /// else encoded into an encoder of its own; `nil` when it encodes nothing at all.
    static func encoded(_ value: some Encodable, at path: [any CodingKey]) throws -> Slot? {
        if let slot = try slot(for: value, at: path) { return slot }
        let encoder = TreeEncoder(codingPath: path)
        try value.encode(to: encoder)
        return encoder.slot
    }

    /// A child's value: a child that encodes nothing is an empty object, as with JSONEncoder
    /// (only the top-level value is refused for it).
    static func child(_ value: some Encodable, at path: [any CodingKey]) throws -> Slot {
        try encoded(value, at: path) ?? .object(ObjectStorage())
    }

    static func integer(_ value: some BinaryInteger) -> Slot {
        var digits: [UInt8] = []
        JSONWriter.writeInteger(value, into: &digits)
        return .number(digits)
    }

    /// The shortest form that reads back as the same value — a `Float`'s own (a `Double` made
    /// from it would print every digit of its binary value) — with a whole number's `.0` left
    /// out, as `JSONEncoder` writes it.
    static func floating<F: BinaryFloatingPoint & LosslessStringConvertible>(_ number: F, value: Any, at path: [any CodingKey]) throws -> Slot {
        guard number.isFinite else {
            throw invalid(value, "Unable to encode \(number) directly in JSON.", at: path)
        }
        var text = Array(number.description.utf8)
        if text.count > 2, text[text.count - 2] == UInt8(ascii: "."), text[text.count - 1] == UInt8(ascii: "0") { text.removeLast(2) }
        return .number(text)
    }

    static func invalid(_ value: Any, _ message: String, at path: [any CodingKey]) -> EncodingError {
        EncodingError.invalidValue(value, EncodingError.Context(codingPath: path, debugDescription: message))
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let storage: ObjectStorage
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws { storage.set(.literal(.null), for: key.stringValue) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { storage.set(.literal(.bool(value)), for: key.stringValue) }
    mutating func encode(_ value: String, forKey key: Key) throws { storage.set(.literal(.string(value)), for: key.stringValue) }
    mutating func encode(_ value: Int, forKey key: Key) throws { storage.set(TreeEncoder.integer(value), for: key.stringValue) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        storage.set(try TreeEncoder.child(value, at: codingPath + [key]), for: key.stringValue)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let nested = ObjectStorage()
        storage.set(.object(nested), for: key.stringValue)
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(storage: nested, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested = ArrayStorage()
        storage.set(.array(nested), for: key.stringValue)
        return UnkeyedContainer(storage: nested, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder { superEncoder(named: "super", key: CodingKeyName("super")) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { superEncoder(named: key.stringValue, key: key) }

    private func superEncoder(named name: String, key: any CodingKey) -> any Encoder {
        let encoder = TreeEncoder(codingPath: codingPath + [key])
        storage.set(.deferred(encoder), for: name)
        return encoder
    }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let storage: ArrayStorage
    let codingPath: [any CodingKey]
    var count: Int { storage.elements.count }

    private var nextPath: [any CodingKey] { codingPath + [CodingKeyName(index: storage.elements.count)] }

    mutating func encodeNil() throws { storage.elements.append(.literal(.null)) }
    mutating func encode(_ value: Bool) throws { storage.elements.append(.literal(.bool(value))) }
    mutating func encode(_ value: String) throws { storage.elements.append(.literal(.string(value))) }
    mutating func encode(_ value: Int) throws { storage.elements.append(TreeEncoder.integer(value)) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        storage.elements.append(try TreeEncoder.child(value, at: nextPath))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let path = nextPath
        let nested = ObjectStorage()
        storage.elements.append(.object(nested))
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(storage: nested, codingPath: path))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let path = nextPath
        let nested = ArrayStorage()
        storage.elements.append(.array(nested))
        return UnkeyedContainer(storage: nested, codingPath: path)
    }

    mutating func superEncoder() -> any Encoder {
        let encoder = TreeEncoder(codingPath: nextPath)
        storage.elements.append(.deferred(encoder))
        return encoder
    }
}

private struct SingleValueContainer: SingleValueEncodingContainer {
    let encoder: TreeEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    mutating func encodeNil() throws { encoder.slot = .literal(.null) }
    mutating func encode(_ value: Bool) throws { encoder.slot = .literal(.bool(value)) }
    mutating func encode(_ value: String) throws { encoder.slot = .literal(.string(value)) }
    mutating func encode(_ value: Int) throws { encoder.slot = TreeEncoder.integer(value) }
    mutating func encode<T: Encodable>(_ value: T) throws { encoder.slot = try TreeEncoder.child(value, at: codingPath) }
}

/// A coding key made up here: `super`, or an array index.
private struct CodingKeyName: CodingKey {
    let stringValue: String
    let intValue: Int?

    init(_ string: String) {
        stringValue = string
        intValue = nil
    }

    init(index: Int) {
        stringValue = "Index \(index)"
        intValue = index
    }

    init?(stringValue: String) { self.init(stringValue) }
    init?(intValue: Int) { self.init(index: intValue) }
}
