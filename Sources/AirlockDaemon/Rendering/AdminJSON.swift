import Airlock
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// JSON documents with a fixed key order, so the admin schemas read the same on every run.
enum AdminJSON {
    case value(JSONValue)
    case object([(String, AdminJSON)])
    case array([AdminJSON])

    static func string(_ text: String?) -> AdminJSON { .value(text.map(JSONValue.string) ?? .null) }
    static func int<I: BinaryInteger>(_ number: I?) -> AdminJSON { .value(number.map { .int(Int($0)) } ?? .null) }
    static func bool(_ flag: Bool) -> AdminJSON { .value(.bool(flag)) }

    /// A rate or duration rounded to 3 decimals, so output does not carry floating-point noise.
    static func number(_ number: Double?) -> AdminJSON {
        guard let number, number.isFinite else { return .value(.null) }
        return .value(.double((number * 1000).rounded() / 1000))
    }

    /// Compact, one line.
    var text: String {
        var out: [UInt8] = []
        write(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private func write(into out: inout [UInt8]) {
        switch self {
        case .value(let value): JSONWriter.write(value, into: &out, sortKeys: true)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                element.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (index, (key, value)) in members.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONWriter.writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                value.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Indented with two spaces; object keys in `order` first, the rest sorted.
    static func pretty(_ value: JSONValue, order: [String] = []) -> String {
        var out = ""
        pretty(value, order: order, indent: "", into: &out)
        return out
    }

    private static func pretty(_ value: JSONValue, order: [String], indent: String, into out: inout String) {
        let inner = indent + "  "
        switch value {
        case .array(let elements) where !elements.isEmpty:
            out += "[\n"
            for (index, element) in elements.enumerated() {
                out += inner
                pretty(element, order: [], indent: inner, into: &out)
                out += index == elements.count - 1 ? "\n" : ",\n"
            }
            out += indent + "]"
        case .object(let members) where !members.isEmpty:
            let first = order.filter { members[$0] != nil }
            let rest = members.keys.filter { !first.contains($0) }.sorted()
            let keys = first + rest
            out += "{\n"
            for (index, key) in keys.enumerated() {
                var name: [UInt8] = []
                JSONWriter.writeString(key, into: &name)
                out += inner + String(decoding: name, as: UTF8.self) + ": "
                pretty(members[key]!, order: [], indent: inner, into: &out)
                out += index == keys.count - 1 ? "\n" : ",\n"
            }
            out += indent + "}"
        default:
            var bytes: [UInt8] = []
            JSONWriter.write(value, into: &bytes, sortKeys: true)
            out += String(decoding: bytes, as: UTF8.self)
        }
    }

    /// `2025-05-01T12:00:00.123Z` for a millisecond timestamp; `null` for none, or for one outside
    /// the wire range (years 1970–9999), which no date can show.
    static func isoDate(milliseconds: Int64?) -> AdminJSON {
        guard let milliseconds, acceptedEpochMilliseconds.contains(milliseconds) else { return .value(.null) }
        return .string(isoText(milliseconds: milliseconds))
    }

    static func isoText(milliseconds: Int64) -> String {
        // Whole seconds from the formatter, milliseconds from the integer: no floating-point rounding.
        let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
        let fraction = Int(milliseconds - seconds * 1000)
        let text = Date(timeIntervalSince1970: Double(seconds)).formatted(Date.ISO8601FormatStyle())
        let digits = String(fraction)
        return String(text.dropLast()) + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }
}
