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
        case .int(let i): writeInteger(i, into: &out)
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

    /// Appends an integer's decimal digits, without making a `String` of them first (inlinable, so
    /// it is specialised for the caller's integer type across modules).
    @inlinable
    public static func writeInteger(_ value: some BinaryInteger, into out: inout [UInt8]) {
        // 40 digits hold any 128-bit magnitude; wider integers take the String path.
        guard value.bitWidth <= 128 else {
            out.append(contentsOf: String(value).utf8)
            return
        }
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 40) { digits in
            var start = digits.count
            repeat {
                let (quotient, remainder) = magnitude.quotientAndRemainder(dividingBy: 10)
                start -= 1
                digits[start] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: remainder)
                magnitude = quotient
            } while magnitude != 0
            out.append(contentsOf: UnsafeBufferPointer(rebasing: digits[start...]))
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

    /// Appends `s` as a quoted JSON string, escaping what JSON requires and, beyond that, every
    /// character a terminal or log viewer would act on (DEL, C1 controls, line and paragraph
    /// separators, bidirectional overrides), so JSON output is safe to print as it is.
    public static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        if let done = s.utf8.withContiguousStorageIfAvailable({ writeEscaped($0, into: &out) }) {
            _ = done
        } else {
            Array(s.utf8).withUnsafeBufferPointer { writeEscaped($0, into: &out) }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private static func writeEscaped(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        var index = 0
        var runStart = 0
        let count = bytes.count
        // Bytes that never need escaping are copied a run at a time: a 256 KiB payload is one
        // append, not 256 Ki of them.
        func flushRun() {
            if runStart < index { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index])) }
        }
        while index < count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x00..<0x20, 0x7F:
                flushRun()
                out.append(92)
                switch byte {
                case UInt8(ascii: "\""): out.append(34)
                case UInt8(ascii: "\\"): out.append(92)
                case 0x0A: out.append(UInt8(ascii: "n"))
                case 0x0D: out.append(UInt8(ascii: "r"))
                case 0x09: out.append(UInt8(ascii: "t"))
                default: writeHexEscape(UInt16(byte), into: &out)
                }
                index += 1
                runStart = index
            case 0xC2 where index + 1 < count && (0x80...0x9F).contains(bytes[index + 1]):
                // C1 controls (U+0080–U+009F), e.g. CSI U+009B.
                flushRun()
                writeUnicodeEscape(UInt16(bytes[index + 1]), into: &out)
                index += 2
                runStart = index
            case 0xE2 where index + 2 < count && isInvisible(bytes[index + 1], bytes[index + 2]):
                // U+200E/F, U+2028–U+202E, U+2066–U+2069: line separators and bidi controls.
                flushRun()
                let second = bytes[index + 1], third = bytes[index + 2]
                writeUnicodeEscape(0x2000 | UInt16(second & 0x0F) << 6 | UInt16(third & 0x3F), into: &out)
                index += 3
                runStart = index
            default:
                index += 1
            }
        }
        flushRun()
    }

    private static func isInvisible(_ second: UInt8, _ third: UInt8) -> Bool {
        (second == 0x80 && ((0xA8...0xAE).contains(third) || third == 0x8E || third == 0x8F))
            || (second == 0x81 && (0xA6...0xA9).contains(third))
    }

    private static func writeUnicodeEscape(_ code: UInt16, into out: inout [UInt8]) {
        out.append(92)
        writeHexEscape(code, into: &out)
    }

    /// `uXXXX`, after the backslash.
    private static func writeHexEscape(_ code: UInt16, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "u"))
        for shift in stride(from: 12, through: 0, by: -4) {
            out.append(hexDigits[Int((code >> UInt16(shift)) & 0xF)])
        }
    }
}
