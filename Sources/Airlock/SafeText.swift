/// Makes text that came from outside (a job's task name, id, arguments, an error a task threw, a
/// queue or worker name read from Redis) safe to print on a terminal or write to a log line.
///
/// Every control character — C0 (including newline and tab, so one value can never forge a second
/// log line or table row), DEL and C1 (U+0080–U+009F, which many terminals read as CSI and friends)
/// — and every invisible character that reorders or splits lines (bidirectional overrides and
/// isolates, U+2028/U+2029) is replaced by a visible escape: `\x1b`, `\n`, `\u{202e}`. Everything
/// else, including non-ASCII letters, is kept, so the text stays readable.
///
/// This is the one escaping function of the project: the CLI runs every job-carried string through
/// it, the worker runs job-carried log metadata through it, and the daemon's log handler runs every
/// line through it as a last line of defence.
public enum SafeText {
    /// `text` with every control and line-reordering character replaced by a visible escape.
    public static func escape(_ text: some StringProtocol) -> String {
        // Fast path: most text is printable ASCII and comes back unchanged.
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return String(text) }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            if let escaped = escape(scalar) {
                out += escaped
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Whether `text` would come back from ``escape(_:)`` unchanged.
    public static func isSafe(_ text: some StringProtocol) -> Bool {
        text.unicodeScalars.allSatisfy { escape($0) == nil }
    }

    private static func escape(_ scalar: Unicode.Scalar) -> String? {
        switch scalar.value {
        case 0x0A: return "\\n"
        case 0x0D: return "\\r"
        case 0x09: return "\\t"
        case 0x00..<0x20, 0x7F...0x9F: return "\\x" + hex(scalar.value, width: 2)
        case 0x200E, 0x200F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069:
            return "\\u{" + hex(scalar.value, width: 4) + "}"
        default: return nil
        }
    }

    private static func hex(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
