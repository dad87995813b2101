/// Parses JSON text into ``JSONValue``, defensively: it is the first thing that touches bytes a
/// stranger pushed onto a queue.
///
/// Nesting deeper than ``maximumDepth`` and invalid UTF-8 are rejected with a ``JSONParseError``
/// rather than exhausting the stack or producing replacement characters.
public struct JSONParser {
    /// The deepest nesting accepted.
    public static let maximumDepth = 512

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var depth = 0

    private init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// Parses one JSON document that spans all of `bytes` (surrounding white space allowed).
    public static func parse(_ bytes: some Collection<UInt8>) throws(JSONParseError) -> JSONValue {
        try document(Array(bytes)) { parser throws(JSONParseError) in try parser.parseValue() }
    }

    /// Parses a document that must be a JSON object, handing each member to `body` in document
    /// order without building a dictionary of the top level (the envelope decoder's hot path).
    /// A repeated key is handed over each time it appears.
    public static func forEachMember(
        of bytes: [UInt8], _ body: (String, JSONValue) throws(JSONParseError) -> Void
    ) throws(JSONParseError) {
        try document(bytes) { parser throws(JSONParseError) in
            try parser.parseMembers(classifying: nil) { key, value throws(JSONParseError) in
                switch key {
                case .other(let name): try body(name, value)
                case .known: preconditionFailure("no key is known without a classifier")
                }
            }
        }
    }

    /// A member's key as ``forEachMember(of:classifying:_:)`` hands it over: the number the
    /// classifier gave it, or its text when the classifier knows no such key.
    package enum MemberKey {
        /// A key the classifier recognised, by the number it answered.
        case known(Int)
        /// Any other key, unescaped.
        case other(String)
    }

    /// ``forEachMember(of:_:)`` for a reader that knows most keys in advance (the envelope
    /// decoder): `classify` sees each key's UTF-8 bytes and answers a number for the keys it
    /// knows, so those never become strings. A key written with escapes is unescaped first.
    package static func forEachMember(
        of bytes: [UInt8], classifying classify: (UnsafeBufferPointer<UInt8>) -> Int?,
        _ body: (MemberKey, JSONValue) throws(JSONParseError) -> Void
    ) throws(JSONParseError) {
        // Optional closures escape; this one never outlives the call.
        try withoutActuallyEscaping(classify) { classify throws(JSONParseError) in
            try document(bytes) { parser throws(JSONParseError) in try parser.parseMembers(classifying: classify, body) }
        }
    }

    /// Runs `read` over the whole of `bytes`: white space around the value, nothing after it.
    private static func document<R>(
        _ bytes: [UInt8], _ read: (inout JSONParser) throws(JSONParseError) -> R
    ) throws(JSONParseError) -> R {
        do {
            return try bytes.withUnsafeBufferPointer { buffer in
                var parser = JSONParser(buffer)
                parser.skipWhitespace()
                let value = try read(&parser)
                parser.skipWhitespace()
                guard parser.index == buffer.count else { throw parser.error("unexpected text after the JSON value") }
                return value
            }
        } catch let error as JSONParseError {
            throw error
        } catch {
            throw JSONParseError(message: "\(error)", offset: 0)
        }
    }

    private func error(_ message: String) -> JSONParseError { JSONParseError(message: message, offset: index) }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private mutating func parseValue() throws(JSONParseError) -> JSONValue {
        guard index < bytes.count else { throw error("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default:
            // Printable ASCII as itself; anything else as hex, so reasons and logs stay clean text.
            let byte = bytes[index]
            let shown = (0x21...0x7E).contains(byte) ? "'\(Unicode.Scalar(byte))'" : "byte 0x\(String(byte, radix: 16, uppercase: true))"
            throw error("unexpected character \(shown)")
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw error("unexpected end of input") }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] {
            throw error("invalid literal")
        }
        index += count
    }

    private mutating func nest() throws(JSONParseError) {
        depth += 1
        if depth > Self.maximumDepth { throw error("nesting deeper than \(Self.maximumDepth) levels") }
    }

    private mutating func parseArray() throws(JSONParseError) -> JSONValue {
        try nest()
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            skipWhitespace()
            guard index < bytes.count else { throw error("unterminated array") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; break }
            throw error("expected ',' or ']' in array")
        }
        depth -= 1
        return .array(elements)
    }

    private mutating func parseObject() throws(JSONParseError) -> JSONValue {
        var members: [String: JSONValue] = [:]
        try parseMembers(classifying: nil) { key, value in
            if case .other(let name) = key { members[name] = value }
        }
        return .object(members)
    }

    /// Reads an object (the cursor is on its `{`), handing each member to `body` in document order.
    private mutating func parseMembers(
        classifying classify: ((UnsafeBufferPointer<UInt8>) -> Int?)?, _ body: (MemberKey, JSONValue) throws(JSONParseError) -> Void
    ) throws(JSONParseError) {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { throw error("expected a JSON object") }
        try nest()
        index += 1
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a string key in object") }
            let key = try parseKey(classify)
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':' after object key") }
            index += 1
            skipWhitespace()
            try body(key, try parseValue())
            skipWhitespace()
            guard index < bytes.count else { throw error("unterminated object") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; break }
            throw error("expected ',' or '}' in object")
        }
        depth -= 1
    }

    /// A key (the cursor is on its opening quote). With a classifier, a key without escapes is
    /// classified from its bytes in place and made a string only when the classifier does not know
    /// it; a key with escapes is unescaped first, then classified.
    private mutating func parseKey(_ classify: ((UnsafeBufferPointer<UInt8>) -> Int?)?) throws(JSONParseError) -> MemberKey {
        guard let classify else { return .other(try parseString()) }
        let run = try scanUnescaped()
        if run.closed {
            if let known = classify(run.bytes) { return .known(known) }
            return .other(try text(run.bytes, ascii: run.ascii))
        }
        var key = try parseEscapes(after: run.bytes)
        return key.withUTF8({ classify($0) }).map(MemberKey.known) ?? .other(key)
    }

    private mutating func parseString() throws(JSONParseError) -> String {
        let run = try scanUnescaped()
        return run.closed ? try text(run.bytes, ascii: run.ascii) : try parseEscapes(after: run.bytes)
    }

    /// Reads a string's opening quote (the cursor is on it) and its bytes up to the closing quote
    /// or the first escape. `closed`: the closing quote came first and the cursor is past it, so
    /// `bytes` is the whole string; otherwise the cursor is on the escape (or at the end), for
    /// ``parseEscapes(after:)``. `ascii`: no byte of `bytes` is above 0x7F.
    private mutating func scanUnescaped() throws(JSONParseError) -> (bytes: UnsafeBufferPointer<UInt8>, ascii: Bool, closed: Bool) {
        index += 1
        let start = index
        var ascii = true
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return (UnsafeBufferPointer(rebasing: bytes[start..<index - 1]), ascii, true)
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error("unescaped control character in string") }
            if byte >= 0x80 { ascii = false }
            index += 1
        }
        return (UnsafeBufferPointer(rebasing: bytes[start..<index]), ascii, false)
    }

    /// The string whose bytes, between its quotes, had no escapes: pure ASCII (ids, names,
    /// timestamps) needs no UTF-8 validation.
    private func text(_ slice: UnsafeBufferPointer<UInt8>, ascii: Bool) throws(JSONParseError) -> String {
        if ascii { return String(decoding: slice, as: Unicode.ASCII.self) }
        guard let string = String(validating: slice, as: UTF8.self) else { throw error("invalid UTF-8 in string") }
        return string
    }

    /// The rest of a string with escapes (the cursor is on the first one), after the `unescaped`
    /// bytes before it.
    private mutating func parseEscapes(after unescaped: UnsafeBufferPointer<UInt8>) throws(JSONParseError) -> String {
        var scratch = Array(unescaped)
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                guard let string = String(validating: scratch, as: UTF8.self) else { throw error("invalid UTF-8 in string") }
                return string
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw error("unterminated escape") }
                let escaped = bytes[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "\""): scratch.append(0x22)
                case UInt8(ascii: "\\"): scratch.append(0x5C)
                case UInt8(ascii: "/"): scratch.append(0x2F)
                case UInt8(ascii: "b"): scratch.append(0x08)
                case UInt8(ascii: "f"): scratch.append(0x0C)
                case UInt8(ascii: "n"): scratch.append(0x0A)
                case UInt8(ascii: "r"): scratch.append(0x0D)
                case UInt8(ascii: "t"): scratch.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                            throw error("unpaired surrogate in string")
                        }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw error("invalid surrogate pair in string") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw error("unpaired surrogate in string")
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw error("invalid unicode escape") }
                    scratch.append(contentsOf: String(Character(unicode)).utf8)
                default: throw error("invalid escape in string")
                }
            default:
                if byte < 0x20 { throw error("unescaped control character in string") }
                scratch.append(byte)
                index += 1
            }
        }
        throw error("unterminated string")
    }

    private mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("truncated unicode escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error("invalid hex digit in unicode escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    private mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = index
        var isInteger = true
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else { throw error("invalid number") }
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): index += 1
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "+"), UInt8(ascii: "-"):
                isInteger = false
                index += 1
            default:
                break
            }
            if index < bytes.count, !Self.isNumberByte(bytes[index]) { break }
        }
        if isInteger, let int = Self.integer(UnsafeBufferPointer(rebasing: bytes[start..<index])) { return .int(int) }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let double = Double(text), double.isFinite else { throw error("invalid number '\(text)'") }
        return .double(double)
    }

    /// The value of an optional `-` and decimal digits (what `Int(String)` reads, without making
    /// the string: every envelope has several); nil when it does not fit an `Int`.
    private static func integer(_ digits: UnsafeBufferPointer<UInt8>) -> Int? {
        let negative = digits.first == UInt8(ascii: "-")
        var value = 0
        for byte in digits.dropFirst(negative ? 1 : 0) {
            let digit = Int(byte &- UInt8(ascii: "0"))
            // Accumulated negatively, so Int.min fits.
            let (times10, overflowed) = value.multipliedReportingOverflow(by: 10)
            let (next, overflowedAgain) = times10.subtractingReportingOverflow(digit)
            if overflowed || overflowedAgain { return nil }
            value = next
        }
        if negative { return value }
        let (positive, overflowed) = (0).subtractingReportingOverflow(value)
        return overflowed ? nil : positive
    }

    private static func isNumberByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"),
            UInt8(ascii: "+"), UInt8(ascii: "-"): true
        default: false
        }
    }
}

/// JSON text that could not be parsed; says what and where.
public struct JSONParseError: AirlockError, Equatable {
    /// What is wrong.
    public let message: String
    /// Byte offset where it went wrong.
    public let offset: Int
    /// `invalid JSON at byte N: message`.
    public var description: String { "invalid JSON at byte \(offset): \(message)" }
}
