/// A decoded RESP2 reply, owning its bytes so it can leave the connection thread.
///
/// Bulk strings stay `[UInt8]` because job payloads are arbitrary bytes. Two sets of accessors:
/// the throwing ones (``integer()``, ``bulk()``, ``elements()``, …) are what code that knows the
/// reply's shape uses — a reply of another shape is a ``RedisError`` naming what was expected, never
/// a silent default; the optional ones (``int``, ``string``, …) are for inspecting replies whose
/// shape varies.
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

extension RedisReply {
    // MARK: Typed accessors

    /// The integer of an integer reply; anything else is a protocol error.
    public func integer() throws(RedisError) -> Int {
        if case .integer(let value) = self { return value }
        throw .unexpectedReply(self, expected: "an integer")
    }

    /// An integer reply, or a bulk string holding a decimal integer (a counter read with GET or HGET).
    public func decimal() throws(RedisError) -> Int {
        if let value = int { return value }
        throw .unexpectedReply(self, expected: "an integer or a decimal string")
    }

    /// The bytes of a bulk reply; anything else (including null) is a protocol error.
    public func bulk() throws(RedisError) -> [UInt8] {
        if case .bulk(let bytes) = self { return bytes }
        throw .unexpectedReply(self, expected: "a bulk string")
    }

    /// The bytes of a bulk reply, or `nil` for a null reply.
    public func optionalBulk() throws(RedisError) -> [UInt8]? {
        switch self {
        case .bulk(let bytes): return bytes
        case .null: return nil
        default: throw .unexpectedReply(self, expected: "a bulk string or null")
        }
    }

    /// The text of a bulk or status reply (UTF-8, lossy).
    public func text() throws(RedisError) -> String {
        if let text = string { return text }
        throw .unexpectedReply(self, expected: "a string")
    }

    /// The elements of an array reply; anything else (including null) is a protocol error.
    public func elements() throws(RedisError) -> [RedisReply] {
        if case .array(let elements) = self { return elements }
        throw .unexpectedReply(self, expected: "an array")
    }

    /// The elements of an array reply, or `nil` for a null reply.
    public func optionalElements() throws(RedisError) -> [RedisReply]? {
        switch self {
        case .array(let elements): return elements
        case .null: return nil
        default: throw .unexpectedReply(self, expected: "an array or null")
        }
    }

    /// An array of bulk strings (`LRANGE`, `SMEMBERS`).
    public func bulks() throws(RedisError) -> [[UInt8]] {
        var result: [[UInt8]] = []
        for element in try elements() { result.append(try element.bulk()) }
        return result
    }

    /// An array of strings, decoded as UTF-8.
    public func strings() throws(RedisError) -> [String] {
        var result: [String] = []
        for element in try elements() { result.append(try element.text()) }
        return result
    }

    /// A flat field/value array (`HGETALL`) as a dictionary of strings.
    public func fields() throws(RedisError) -> [String: String] {
        let items = try elements()
        guard items.count.isMultiple(of: 2) else { throw .unexpectedReply(self, expected: "field/value pairs") }
        var result: [String: String] = [:]
        for index in stride(from: 0, to: items.count, by: 2) {
            result[try items[index].text()] = try items[index + 1].text()
        }
        return result
    }

    /// The reply itself, or the error reply thrown as ``RedisError/server(_:)``.
    public func throwingServerError() throws(RedisError) -> RedisReply {
        if case .error(let message) = self { throw .server(message) }
        return self
    }
}
