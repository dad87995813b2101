// The only file that touches hiredis. Since the socket moved to our own code (plaintext and TLS
// alike), hiredis does what it does best here: parsing RESP replies (`redisReader`), the parser
// every C Redis client trusts. Everything above speaks RedisReply / RedisError.
import CHiredis

/// hiredis's incremental reply parser: bytes in (``feed(_:)``), whole replies out (``next()``).
///
/// Not Sendable: created, fed and freed by the one connection thread that owns it.
final class RESPReader {
    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        guard let reader = redisReaderCreate() else { fatalError("hiredis could not allocate a reply reader (out of memory)") }
        self.reader = reader
    }

    deinit {
        redisReaderFree(reader)
    }

    /// Appends received bytes; false only when hiredis is out of memory or already failed.
    func feed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return true }
        return redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count) == REDIS_OK
    }

    /// The next complete reply, or nil when more bytes are needed. Throws the parser's message
    /// when the bytes are not RESP (the stream cannot be resynchronised after that).
    func next() throws(ReaderFailure) -> RedisReply? {
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else {
            throw ReaderFailure(message: errorString)
        }
        guard let raw else { return nil }
        let reply = Self.convert(raw.assumingMemoryBound(to: redisReply.self))
        freeReplyObject(raw)
        return reply
    }

    /// Bytes received but not yet returned as a reply: between requests there must be none, or
    /// the server sent something nobody asked for and the replies would no longer line up.
    var hasUnconsumedBytes: Bool {
        reader.pointee.len > reader.pointee.pos || reader.pointee.ridx >= 0
    }

    /// What the parser said, e.g. `Protocol error, got "H" as reply type byte`.
    struct ReaderFailure: Error {
        let message: String
    }

    private var errorString: String {
        withUnsafeBytes(of: &reader.pointee.errstr) { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            let length = bytes.firstIndex(of: 0) ?? bytes.count
            return String(decoding: bytes[..<length], as: UTF8.self)
        }
    }

    /// Deep-copies a hiredis reply tree into Swift values (the caller frees the C tree).
    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            return .bulk(bytes(r.str, r.len))
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: bytes(r.str, r.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: bytes(r.str, r.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int(r.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisReply] = []
            elements.reserveCapacity(r.elements)
            for index in 0..<r.elements {
                if let element = r.element[index] {
                    elements.append(convert(element))
                } else {
                    elements.append(.null)
                }
            }
            return .array(elements)
        default:
            return .null
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ length: Int) -> [UInt8] {
        guard let pointer, length > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: length))
    }
}
