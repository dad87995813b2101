// The only file that touches hiredis. Everything above it speaks RedisReply /
// RedisError, so swapping the C library never ripples through the project.
import CHiredis
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One blocking hiredis connection (`redisContext*`).
///
/// Not Sendable and not thread-safe: it is created, used and freed by exactly one
/// thread (a RedisClient's owned thread), because every call may block on the socket.
/// After any I/O failure the context is unusable (hiredis keeps no resync state),
/// so the connection marks itself broken and the owner must discard it.
final class HiredisConnection {
    /// `host:port` or `unix:/path`, for messages.
    let endpoint: String
    private let context: UnsafeMutablePointer<redisContext>
    /// Set after the first transport failure; every later call fails fast.
    private(set) var isBroken = false
    /// The socket read/write timeout currently installed (nil = none), so we only
    /// call setsockopt when a call needs a different one.
    private(set) var readTimeout: Duration?
    /// The server's id for this connection (`CLIENT ID`), learnt in the handshake.
    var clientID: Int?
    /// False until we installed a timeout ourselves: hiredis may leave the connect
    /// timeout on the socket, so "nil" is not known to be in force yet.
    private var readTimeoutInstalled = false

    /// Connects over TCP or a unix socket, as the configuration says.
    convenience init(configuration: RedisConfiguration) throws(RedisError) {
        if let path = configuration.unixSocketPath {
            try self.init(unixSocketPath: path, connectTimeout: configuration.connectTimeout)
        } else {
            try self.init(host: configuration.host, port: configuration.port, connectTimeout: configuration.connectTimeout)
        }
    }

    init(host: String, port: Int, connectTimeout: Duration) throws(RedisError) {
        endpoint = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let tv = Self.makeTimeval(connectTimeout)
        context = try Self.checkConnect(redisConnectWithTimeout(host, Int32(clamping: port), tv), endpoint, connectTimeout)
    }

    init(unixSocketPath: String, connectTimeout: Duration) throws(RedisError) {
        endpoint = "unix:\(unixSocketPath)"
        let tv = Self.makeTimeval(connectTimeout)
        context = try Self.checkConnect(redisConnectUnixWithTimeout(unixSocketPath, tv), endpoint, connectTimeout)
    }

    deinit {
        redisFree(context)
    }

    /// Installs the socket timeout for the next reads/writes; nil means wait forever
    /// (needed for `BLPOP key 0`). hiredis allows this at any time on a blocking context.
    func setReadTimeout(_ timeout: Duration?) throws(RedisError) {
        guard !isBroken else { throw .connectionClosed(endpoint, detail: "connection already failed") }
        if readTimeoutInstalled && timeout == readTimeout { return }
        if redisSetTimeout(context, Self.makeTimeval(timeout ?? .zero)) != REDIS_OK {
            throw fail(errno)
        }
        readTimeout = timeout
        readTimeoutInstalled = true
    }

    /// True when the server already closed this idle connection (restart, idle
    /// timeout, CLIENT KILL). Checked before sending, without blocking, so a dead
    /// connection is replaced *before* a command is written to it: then nothing was
    /// sent and reconnecting is safe. Unsolicited bytes also count: the stream is out of sync.
    var peerHasClosed: Bool {
        if isBroken { return true }
        let fd = context.pointee.fd
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, 0) > 0 else { return false }
        if descriptor.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 { return true }
        var byte: UInt8 = 0
        let peeked = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if peeked < 0 { return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR }
        return true
    }

    /// Sends one command and waits for its reply. Error replies are returned, not thrown:
    /// only transport and protocol failures throw.
    func command(_ args: [[UInt8]]) throws(RedisError) -> RedisReply {
        try pipeline([args])[0]
    }

    /// Writes all commands in one go, then reads exactly one reply per command, so N
    /// commands cost one round trip. Error replies stay in place.
    func pipeline(_ commands: [[[UInt8]]]) throws(RedisError) -> [RedisReply] {
        guard !isBroken else { throw .connectionClosed(endpoint, detail: "connection already failed") }
        if commands.isEmpty { return [] }
        // Validate before appending anything: a half-appended pipeline would stay in
        // hiredis' output buffer and misalign every later reply.
        if commands.contains(where: \.isEmpty) { throw .protocolError("cannot send an empty command (no command name)") }
        for args in commands {
            let status = Self.withArgv(args) { argc, argv, lengths in
                redisAppendCommandArgv(context, argc, argv, lengths)
            }
            if status != REDIS_OK { throw fail(errno) }
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            if redisGetReply(context, &raw) != REDIS_OK || raw == nil {
                throw fail(errno)
            }
            let reply = raw!.assumingMemoryBound(to: redisReply.self)
            replies.append(Self.convert(reply))
            freeReplyObject(raw)
        }
        return replies
    }

    // MARK: - Errors

    /// Marks the context broken and translates hiredis' error into a RedisError.
    /// `savedErrno` must be read right after the failing call, before anything else can clobber it.
    private func fail(_ savedErrno: Int32) -> RedisError {
        isBroken = true
        let detail = Self.errorString(context)
        switch context.pointee.err {
        case REDIS_ERR_IO:
            if savedErrno == EAGAIN || savedErrno == EWOULDBLOCK || savedErrno == ETIMEDOUT || detail.contains("temporarily unavailable") {
                return .commandTimedOut(endpoint, after: readTimeout)
            }
            return .connectionClosed(endpoint, detail: detail)
        case REDIS_ERR_EOF:
            return .connectionClosed(endpoint, detail: "the server closed the connection")
        case REDIS_ERR_PROTOCOL:
            return .protocolError("\(detail) from \(endpoint) (is that port really a Redis server?)")
        default:
            return .connectionClosed(endpoint, detail: detail.isEmpty ? "unknown hiredis error" : detail)
        }
    }

    private static func checkConnect(
        _ context: UnsafeMutablePointer<redisContext>?, _ endpoint: String, _ timeout: Duration
    ) throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        let savedErrno = errno
        guard let context else {
            throw .connectionRefused(endpoint, detail: "hiredis could not allocate a context")
        }
        guard context.pointee.err != 0 else { return context }
        let detail = errorString(context)
        let code = context.pointee.err
        redisFree(context)
        if code == REDIS_ERR_IO {
            switch savedErrno {
            case ETIMEDOUT, EINPROGRESS, EAGAIN:
                throw .connectTimedOut(endpoint, after: timeout)
            case ECONNREFUSED, ENOENT, ECONNRESET:
                throw .connectionRefused(endpoint, detail: detail)
            default:
                if detail.contains("timed out") { throw .connectTimedOut(endpoint, after: timeout) }
                if detail.contains("refused") { throw .connectionRefused(endpoint, detail: detail) }
            }
        }
        throw .unreachable(endpoint, detail: detail)
    }

    private static func errorString(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: &context.pointee.errstr) { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            let length = bytes.firstIndex(of: 0) ?? bytes.count
            return String(decoding: bytes[..<length], as: UTF8.self)
        }
    }

    // MARK: - Marshalling

    private static func makeTimeval(_ duration: Duration) -> timeval {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 { return timeval(tv_sec: 0, tv_usec: 0) }
        var micros = attoseconds / 1_000_000_000_000
        // A zero timeval means "no timeout" to the kernel; never round a tiny timeout down to it.
        if seconds == 0 && micros == 0 && attoseconds > 0 { micros = 1 }
        return timeval(tv_sec: Int(seconds), tv_usec: Int(micros))
    }

    /// Lays all arguments out in one buffer and hands hiredis pointer/length arrays
    /// into it; hiredis copies them into its output buffer before returning.
    private static func withArgv<R>(
        _ args: [[UInt8]],
        _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
    ) -> R {
        var flat: [UInt8] = []
        flat.reserveCapacity(args.reduce(1) { $0 + $1.count })
        var offsets: [Int] = []
        var lengths: [Int] = []
        offsets.reserveCapacity(args.count)
        lengths.reserveCapacity(args.count)
        for arg in args {
            offsets.append(flat.count)
            lengths.append(arg.count)
            flat.append(contentsOf: arg)
        }
        flat.append(0) // keeps baseAddress non-nil even when every argument is empty
        return flat.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!)
            var argv: [UnsafePointer<CChar>?] = offsets.map { (base + $0).assumingMemoryBound(to: CChar.self) }
            return argv.withUnsafeMutableBufferPointer { argvBuffer in
                lengths.withUnsafeBufferPointer { lengthBuffer in
                    body(Int32(args.count), argvBuffer.baseAddress!, lengthBuffer.baseAddress!)
                }
            }
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
