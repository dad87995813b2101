#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One blocking Redis connection: a byte stream (plaintext or TLS) we own, our RESP encoder for
/// requests, hiredis's reader for replies.
///
/// Not Sendable and not thread-safe: created, used and freed by exactly one thread (a
/// RedisClient's owned thread), because every call may block on the socket. After any I/O or
/// protocol failure the stream is out of step, so the connection marks itself broken and the
/// owner must discard it.
final class RedisConnection {
    /// `host:port` or `unix:/path`, for messages.
    let endpoint: String
    private let stream: any ByteStream
    private let reader = RESPReader()
    /// The request being written; kept between calls so its capacity is reused.
    private var output: [UInt8] = []
    /// Where received bytes land before hiredis's reader copies them.
    private let input: UnsafeMutableRawBufferPointer
    /// Set after the first transport failure; every later call fails fast.
    private(set) var isBroken = false
    /// The read timeout in force (nil = none), so the socket is only touched when it changes.
    private(set) var readTimeout: Duration?
    private var readTimeoutInstalled = false
    /// Whether any reply byte ever arrived: a connection closed before that, on its very first
    /// request, is what a plaintext client sees from a TLS port.
    private(set) var hasReceivedBytes = false
    /// The server's id for this connection (`CLIENT ID`), learnt in the handshake.
    var clientID: Int?

    /// Largest request buffer kept between calls; a bigger one (a 10 MB payload) is released.
    private static let keptOutputCapacity = 1 << 20
    private static let inputSize = 16 * 1024

    init(stream: any ByteStream, endpoint: String) {
        self.stream = stream
        self.endpoint = endpoint
        self.input = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.inputSize, alignment: 16)
    }

    deinit {
        input.deallocate()
    }

    /// Installs the socket timeout for the next reads/writes; nil means wait forever (needed for
    /// `BLPOP key 0`).
    func setReadTimeout(_ timeout: Duration?) throws(RedisError) {
        guard !isBroken else { throw .connectionClosed(endpoint, detail: "connection already failed") }
        if readTimeoutInstalled && timeout == readTimeout { return }
        do {
            try stream.setTimeout(timeout)
        } catch {
            throw fail(error)
        }
        readTimeout = timeout
        readTimeoutInstalled = true
    }

    /// True when the server already closed this idle connection (restart, idle timeout, CLIENT
    /// KILL). Checked before sending, without blocking, so a dead connection is replaced *before*
    /// a command is written to it: then nothing was sent and reconnecting is safe. Unsolicited
    /// bytes also count: the stream is out of step.
    var peerHasClosed: Bool {
        isBroken || reader.hasUnconsumedBytes || stream.peerHasClosed
    }

    /// Writes all commands in one go, then reads exactly one reply per command, so N commands
    /// cost one round trip. Error replies stay in place: only transport and protocol failures throw.
    func pipeline(_ commands: [RedisCommand]) throws(RedisError) -> [RedisReply] {
        if commands.isEmpty {
            guard !isBroken else { throw .connectionClosed(endpoint, detail: "connection already failed") }
            return []
        }
        try write(commands)
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        while replies.count < commands.count {
            replies.append(try readReply())
        }
        return replies
    }

    /// Writes commands without reading their replies (a subscribed connection's `PING`).
    func write(_ commands: [RedisCommand]) throws(RedisError) {
        guard !isBroken else { throw .connectionClosed(endpoint, detail: "connection already failed") }
        // Refused before anything is written, so later replies stay aligned.
        // A closure, not a key path: the key path was projected at run time for every command (6 % of
        // the dashboard overview's CPU, which pipelines 300 commands per view).
        if commands.contains(where: { $0.arguments.isEmpty }) { throw .protocolError("cannot send an empty command (no command name)") }
        output.removeAll(keepingCapacity: true)
        RESPEncoder.encode(commands, into: &output)
        let written = output.withUnsafeBytes { bytes in Result { () throws(StreamFailure) in try stream.write(bytes) } }
        if output.capacity > Self.keptOutputCapacity { output = [] }
        if case .failure(let failure) = written { throw fail(failure) }
    }

    /// The next reply that arrives within `timeout` (a message pushed to a subscribed
    /// connection), nil when nothing started arriving in that time. Once bytes arrive the rest of
    /// the reply is read under the ordinary read timeout.
    func nextPushedReply(waitingUpTo timeout: Duration) throws(RedisError) -> RedisReply? {
        guard !isBroken else { throw .connectionClosed(endpoint, detail: "connection already failed") }
        if !reader.hasUnconsumedBytes && !stream.waitReadable(timeout) { return nil }
        return try readReply()
    }

    /// One whole reply: what the reader already holds, else bytes read from the stream until it has one.
    private func readReply() throws(RedisError) -> RedisReply {
        while true {
            do {
                if let reply = try reader.next() { return reply }
            } catch {
                isBroken = true
                throw protocolFailure(error.message)
            }
            let count: Int
            do {
                count = try stream.read(into: input)
            } catch {
                throw fail(error)
            }
            hasReceivedBytes = true
            guard reader.feed(UnsafeRawBufferPointer(rebasing: input[..<count])) else {
                isBroken = true
                throw .protocolError("hiredis could not buffer a reply from \(endpoint) (out of memory?)")
            }
        }
    }

    /// Marks the connection broken and phrases the stream's failure.
    private func fail(_ failure: StreamFailure) -> RedisError {
        isBroken = true
        switch failure {
        case .timedOut:
            return .commandTimedOut(endpoint, after: readTimeout)
        case .closed:
            return .connectionClosed(endpoint, detail: "the server closed the connection")
        case .system(let code):
            return .connectionClosed(endpoint, detail: String(cString: strerror(code)))
        case .tls(let error):
            return error
        }
    }

    private func protocolFailure(_ message: String) -> RedisError {
        // A TLS record (handshake 0x16, alert 0x15) where a RESP type byte belongs.
        if message.contains("\"\\x16\"") || message.contains("\"\\x15\"") {
            return .tls(endpoint, "the server answered with TLS: is this a TLS port? use rediss://")
        }
        return .protocolError("\(message) from \(endpoint) (is that port really a Redis server?)")
    }
}
