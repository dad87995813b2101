#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The bytes of one connection, in and out: a plain socket or TLS over one. Used by one
/// connection thread only; every call may block, bounded by the installed timeout.
protocol ByteStream: AnyObject {
    /// Sends every byte of `bytes`.
    func write(_ bytes: UnsafeRawBufferPointer) throws(StreamFailure)
    /// Receives at least one byte (never 0: the end of the stream throws ``StreamFailure/closed``).
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StreamFailure) -> Int
    /// Installs the read/write timeout; nil waits forever.
    func setTimeout(_ timeout: Duration?) throws(StreamFailure)
    /// Without blocking: has the peer closed the stream, or sent something nobody asked for?
    var peerHasClosed: Bool { get }
    /// Waits up to `timeout` for something to read (pushed messages on a subscribed connection).
    func waitReadable(_ timeout: Duration) -> Bool
}

/// Why a stream operation failed, before it is phrased as a ``RedisError`` by the connection
/// (which knows the endpoint and whether anything had been received yet).
enum StreamFailure: Error {
    /// The read or write timeout passed.
    case timedOut
    /// The peer closed the stream (EOF, or a TLS close_notify).
    case closed
    /// The system call failed with this errno (reset, broken pipe…).
    case system(Int32)
    /// A TLS failure, already a complete error.
    case tls(RedisError)
}

/// A plaintext stream: the socket itself.
final class PlainStream: ByteStream {
    private let socket: Socket

    init(socket: Socket) {
        self.socket = socket
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(StreamFailure) {
        if let code = socket.sendAll(bytes) { throw Self.failure(code) }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StreamFailure) -> Int {
        let count = socket.receive(into: buffer)
        if count > 0 { return count }
        if count == 0 { throw .closed }
        throw Self.failure(errno)
    }

    func setTimeout(_ timeout: Duration?) throws(StreamFailure) {
        if !socket.setTimeout(timeout) { throw .system(errno) }
    }

    var peerHasClosed: Bool { socket.peerHasClosedOrSentData }

    func waitReadable(_ timeout: Duration) -> Bool { socket.waitReadable(timeout) }

    static func failure(_ code: Int32) -> StreamFailure {
        code == EAGAIN || code == EWOULDBLOCK || code == ETIMEDOUT ? .timedOut : .system(code)
    }
}
