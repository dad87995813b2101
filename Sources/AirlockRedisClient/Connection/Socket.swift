#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A connected stream socket (TCP or unix), opened and used by one connection thread only.
///
/// Connecting is non-blocking with `poll` for the connect timeout; afterwards the socket is
/// blocking, with `SO_RCVTIMEO`/`SO_SNDTIMEO` as the read/write timeout — one `recv` per reply on
/// the hot path, as hiredis did, and the timeouts hold for TLS too (OpenSSL reads through the fd).
final class Socket {
    /// The file descriptor; closed when the socket is released.
    let fd: Int32

    private init(fd: Int32) {
        self.fd = fd
    }

    deinit {
        close(fd)
    }

    // MARK: Connecting

    /// Resolves `host` (getaddrinfo: names, IPv4 and IPv6) and connects to the first address that
    /// accepts within `timeout`. A name that does not resolve is `.unreachable`; a refusal
    /// `.connectionRefused`; no answer in time `.timedOut`.
    static func connect(host: String, port: Int, timeout: Duration, endpoint: String) throws(RedisError) -> Socket {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_protocol = Int32(IPPROTO_TCP)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            let detail = status == EAI_SYSTEM ? String(cString: strerror(errno)) : String(cString: gai_strerror(status))
            throw .unreachable(endpoint, detail: detail)
        }
        defer { freeaddrinfo(list) }
        let deadline = ContinuousClock.now + timeout
        var lastError: Int32 = ECONNREFUSED
        var cursor: UnsafeMutablePointer<addrinfo>? = list
        while let info = cursor {
            cursor = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            if fd < 0 {
                lastError = errno
                continue
            }
            let outcome = connectNonBlocking(fd, info.pointee.ai_addr, info.pointee.ai_addrlen, deadline: deadline)
            if outcome == 0 {
                var one: Int32 = 1
                // Requests are written whole; Nagle would only delay the next pipeline.
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return Socket(fd: fd)
            }
            close(fd)
            lastError = outcome
            if outcome == ETIMEDOUT { break }
        }
        throw connectError(lastError, endpoint: endpoint, timeout: timeout)
    }

    /// Connects to a unix socket; its connect honours `SO_SNDTIMEO`, so it is done blocking.
    static func connect(unixPath: String, timeout: Duration, endpoint: String) throws(RedisError) -> Socket {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(unixPath.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else {
            throw .connectionRefused(endpoint, detail: "the socket path is longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw .connectionRefused(endpoint, detail: String(cString: strerror(errno))) }
        let socket = Socket(fd: fd)
        _ = socket.setTimeout(timeout)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { systemConnect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if result != 0 {
            let code = errno
            throw connectError(code == EAGAIN || code == EINPROGRESS ? ETIMEDOUT : code, endpoint: endpoint, timeout: timeout)
        }
        return socket
    }

    /// 0 when connected, else the errno (ETIMEDOUT when the deadline passed).
    private static func connectNonBlocking(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: socklen_t, deadline: ContinuousClock.Instant) -> Int32 {
        let flags = fcntl(fd, F_GETFL, 0)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        if systemConnect(fd, address, length) != 0 {
            guard errno == EINPROGRESS || errno == EINTR else { return errno }
            var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            while true {
                let remaining = ContinuousClock.now.duration(to: deadline)
                guard remaining > .zero else { return ETIMEDOUT }
                let ready = poll(&descriptor, 1, milliseconds(remaining))
                if ready > 0 { break }
                if ready == 0 { return ETIMEDOUT }
                if errno != EINTR { return errno }
            }
            var failure: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &size) == 0 else { return errno }
            if failure != 0 { return failure }
        }
        _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
        return 0
    }

    private static func connectError(_ code: Int32, endpoint: String, timeout: Duration) -> RedisError {
        let detail = String(cString: strerror(code))
        switch code {
        case ETIMEDOUT, EINPROGRESS, EAGAIN: return .connectTimedOut(endpoint, after: timeout)
        case ECONNREFUSED, ENOENT, ECONNRESET: return .connectionRefused(endpoint, detail: detail)
        default: return .unreachable(endpoint, detail: detail)
        }
    }

    /// A poll timeout in whole milliseconds, never rounding a positive wait down to 0 (no wait).
    static func milliseconds(_ duration: Duration) -> Int32 {
        let millis = duration.wholeMillisecondsForRedis
        if millis <= 0 { return duration > .zero ? 1 : 0 }
        return Int32(clamping: millis)
    }

    // MARK: I/O

    /// Installs the read and write timeout; nil waits forever. Returns false (errno set) on failure.
    func setTimeout(_ timeout: Duration?) -> Bool {
        var value = Self.makeTimeval(timeout ?? .zero)
        let size = socklen_t(MemoryLayout<timeval>.size)
        return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, size) == 0
            && setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, size) == 0
    }

    /// Switches `O_NONBLOCK`, for a look at the socket that must not wait.
    func setNonBlocking(_ on: Bool) {
        let flags = fcntl(fd, F_GETFL, 0)
        _ = fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK)
    }

    /// Whether something (data, EOF, an error) is waiting to be read, without waiting.
    var isReadable: Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) > 0
    }

    /// Waits up to `timeout` for something to read.
    func waitReadable(_ timeout: Duration) -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, Self.milliseconds(timeout)) > 0
    }

    /// The kernel's view: has the peer hung up, or sent something unasked? One `poll`, and a
    /// `MSG_PEEK` only when the socket is readable.
    var peerHasClosedOrSentData: Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, 0) > 0 else { return false }
        if descriptor.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 { return true }
        var byte: UInt8 = 0
        let peeked = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if peeked < 0 { return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR }
        return true
    }

    /// One `recv`: bytes read, 0 at EOF, -1 with errno set.
    func receive(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        while true {
            let count = recv(fd, buffer.baseAddress, buffer.count, 0)
            if count < 0 && errno == EINTR { continue }
            return count
        }
    }

    /// Sends every byte; on failure returns the errno (EAGAIN when the write timeout passed).
    func sendAll(_ bytes: UnsafeRawBufferPointer) -> Int32? {
        var offset = 0
        while offset < bytes.count {
            let sent = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if sent < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += sent
        }
        return nil
    }

    private static func makeTimeval(_ duration: Duration) -> timeval {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 { return timeval(tv_sec: 0, tv_usec: 0) }
        var micros = attoseconds / 1_000_000_000_000
        // A zero timeval means "no timeout" to the kernel; never round a tiny timeout down to it.
        if seconds == 0 && micros == 0 && attoseconds > 0 { micros = 1 }
        return timeval(tv_sec: Int(seconds), tv_usec: Int(micros))
    }
}

/// The C `connect(2)`, under a name `Socket.connect` does not shadow.
private func systemConnect(_ fd: Int32, _ address: UnsafePointer<sockaddr>?, _ length: socklen_t) -> Int32 {
    connect(fd, address, length)
}

/// Asks a port which protocol it speaks, to turn an obscure failure into a precise error.
enum PortProbe {
    /// Whether `host:port` answers a plaintext `PING` the way Redis does (`+PONG`, or an error
    /// reply such as `-NOAUTH`). Used when a TLS handshake failed: it tells "plaintext port" apart.
    static func answersPlaintextRedis(host: String, port: Int, timeout: Duration) -> Bool {
        guard let socket = try? Socket.connect(host: host, port: port, timeout: timeout, endpoint: host) else { return false }
        _ = socket.setTimeout(timeout)
        let ping = Array("PING\r\n".utf8)
        guard ping.withUnsafeBytes({ socket.sendAll($0) }) == nil else { return false }
        var reply = [UInt8](repeating: 0, count: 64)
        let count = reply.withUnsafeMutableBytes { socket.receive(into: $0) }
        guard count >= 3 else { return false }
        return (reply[0] == UInt8(ascii: "+") || reply[0] == UInt8(ascii: "-")) && reply[..<count].contains(UInt8(ascii: "\r"))
    }
}
