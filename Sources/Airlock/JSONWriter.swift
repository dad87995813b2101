/// Serialises ``JSONValue`` trees straight into bytes.
///
/// The Redis transport builds every envelope on the hot path; writing bytes directly avoids the
/// intermediate objects Foundation's encoder allocates.
public enum JSONWriter {
    /// Appends the JSON text of `value` to `out`.
    /// - Parameter sortKeys: sort object keys, for output that is stable across runs.
    public static func write(_ value: JSONValue, into out: inout [UInt8], sortKeys: Bool = false) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .double(let d): writeDouble(d, into: &out)
        case .string(let s): writeString(s, into: &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (index, element) in a.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                write(element, into: &out, sortKeys: sortKeys)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            var first = true
            func member(_ key: String, _ value: JSONValue) {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(value, into: &out, sortKeys: sortKeys)
            }
            if sortKeys {
                for key in o.keys.sorted() { member(key, o[key]!) }
            } else {
                for (key, value) in o { member(key, value) }
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Appends a JSON number; non-finite doubles have no JSON form and become `null`.
    public static func writeDouble(_ d: Double, into out: inout [UInt8]) {
        guard d.isFinite else {
            out.append(contentsOf: "null".utf8)
            return
        }
        if d.rounded() == d && abs(d) < 1e15 {
            // Keep a decimal point so the value reads back as a double, not an integer.
            out.append(contentsOf: String(Int(d)).utf8)
            out.append(contentsOf: ".0".utf8)
        } else {
            out.append(contentsOf: d.description.utf8)
        }
    }

    /// Appends `s` as a quoted JSON string, escaping what JSON requires.
    public static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
            case 0x0A: out.append(contentsOf: [92, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [92, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [92, UInt8(ascii: "t")])
            case 0x00..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
