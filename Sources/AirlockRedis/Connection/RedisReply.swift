/// A decoded RESP2 reply, owning its bytes so it can leave the connection thread.
///
/// Bulk strings stay `[UInt8]` because job payloads are arbitrary bytes; the
/// conveniences below decode only when the caller asks.
public enum RedisReply: Sendable, Hashable {
    /// A bulk string, binary safe.
    case bulk([UInt8])
    /// A simple status such as `OK` or `QUEUED` (without the leading `+`).
    case status(String)
    /// An integer reply (`:42`).
    case integer(Int)
    /// A nil bulk or nil array (missing key, BLPOP timeout, aborted EXEC).
    case null
    /// An error reply (`-ERR ...`). Returned in place inside pipelines so MULTI/EXEC
    /// callers can inspect each step; single-command APIs throw it as ``RedisError/server(_:)``.
    case error(String)
    /// A multi-bulk reply; elements may themselves be any reply.
    case array([RedisReply])

    /// The text of a bulk (decoded as UTF-8, lossy) or status reply; nil for other kinds.
    public var string: String? {
        switch self {
        case .bulk(let bytes): String(decoding: bytes, as: UTF8.self)
        case .status(let text): text
        default: nil
        }
    }

    /// An integer reply, or a bulk string holding a decimal integer (as GET on a counter returns).
    public var int: Int? {
        switch self {
        case .integer(let value): value
        case .bulk(let bytes): Int(String(decoding: bytes, as: UTF8.self))
        default: nil
        }
    }

    /// The elements of an array reply; nil for other kinds (including ``null``).
    public var array: [RedisReply]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// True for nil replies, which Redis uses for "absent" rather than an error.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The raw bytes of a bulk reply, or the UTF-8 of a status reply.
    public var bytes: [UInt8]? {
        switch self {
        case .bulk(let bytes): bytes
        case .status(let text): Array(text.utf8)
        default: nil
        }
    }

    /// The error text of an error reply, so pipeline callers can check a step without a `switch`.
    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }
}

extension RedisReply: CustomStringConvertible {
    /// A redis-cli-like rendering for logs and test failures.
    public var description: String {
        switch self {
        case .bulk(let bytes):
            if let text = String(validating: bytes, as: UTF8.self) { return "\"\(text)\"" }
            return "<\(bytes.count) bytes>"
        case .status(let text): return text
        case .integer(let value): return "(integer) \(value)"
        case .null: return "(nil)"
        case .error(let message): return "(error) \(message)"
        case .array(let elements): return "[" + elements.map(\.description).joined(separator: ", ") + "]"
        }
    }
}
