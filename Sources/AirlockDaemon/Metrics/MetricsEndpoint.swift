public import Airlock
import AirlockRedisClient
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import Logging
public import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A tiny HTTP/1.1 server for one resource: `GET /metrics`, the Prometheus text exposition.
///
/// It runs on one thread of its own with blocking POSIX sockets — never on Swift's cooperative
/// pool — and answers one connection at a time, closing each after the response (Prometheus
/// scrapes one request per connection, and a scrape is a few milliseconds). A request is read up
/// to ``maxRequestBytes`` and for at most ``requestTimeout``; anything else is answered and
/// closed: another path 404, another method 405, an oversized head 431, bytes that are not an
/// HTTP/1.x request 400. A client that sends nothing is closed when its time is up. Nothing a
/// client sends can stop the endpoint.
///
/// The socket is bound when the endpoint is created (so a port in use fails at once); serving
/// starts in ``run()``, a swift-service-lifecycle `Service` that stops at graceful shutdown.
public final class MetricsEndpoint: Service, Sendable {
    /// The address asked for.
    public let address: ListenAddress
    /// The port actually bound (differs from the address's when that was 0).
    public let port: Int
    /// Largest request head read; a longer one is answered 431.
    public static let maxRequestBytes = 8192
    /// Longest a client may take to send its request head.
    public static let requestTimeout: Duration = .seconds(5)

    private let listener: Int32
    private let exposition: @Sendable () -> [UInt8]
    private let logger: Logger
    private let state = Mutex(ServingState())

    private struct ServingState {
        var started = false
        var stopping = false
        var exited = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    /// Binds `address`; `exposition` produces the body of each `GET /metrics` (it runs on the
    /// endpoint's thread, so it may block briefly, e.g. on the registry's lock).
    /// - Throws: ``MetricsEndpointError`` when the address cannot be resolved or bound.
    public init(address: ListenAddress, logger: Logger = Logger(label: "airlock.metrics"), exposition: @escaping @Sendable () -> [UInt8]) throws {
        self.address = address
        self.exposition = exposition
        self.logger = logger
        (listener, port) = try Self.bind(address)
    }

    deinit {
        let closed = state.withLock { $0.started }
        // A started endpoint closes its socket when its thread ends.
        if !closed { close(listener) }
    }

    /// Serves until graceful shutdown or cancellation, then stops accepting and returns once the
    /// endpoint's thread has ended.
    public func run() async throws {
        let startNow = state.withLock { state -> Bool in
            defer { state.started = true }
            return !state.started
        }
        guard startNow else { throw MetricsEndpointError(.alreadyRunning, "the metrics endpoint on \(address) is already running; create another to serve again") }
        logger.notice("serving metrics", metadata: ["url": "http://\(address.displayHost):\(port)/metrics"])
        OwnedThread.start(name: "airlock-metrics") { [self] in
            serve()
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                state.exited = true
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
        try? await gracefulShutdown()
        stop()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let exited = state.withLock { state -> Bool in
                if !state.exited { state.waiter = continuation }
                return state.exited
            }
            if exited { continuation.resume() }
        }
    }

    /// Stops accepting; the thread ends within one poll interval.
    private func stop() {
        state.withLock { $0.stopping = true }
        // Wakes a blocked accept at once on Linux; elsewhere the poll interval does.
        shutdown(listener, Int32(SHUT_RDWR))
    }

    // MARK: The thread

    private func serve() {
        defer { close(listener) }
        var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        while !state.withLock({ $0.stopping }) {
            // A bounded wait, so a stop is seen even where shutdown() does not wake accept().
            let ready = poll(&poller, 1, 250)
            if ready <= 0 { continue }
            let client = accept(listener, nil, nil)
            if client < 0 {
                // Out of descriptors: give the process a moment instead of spinning.
                if errno == EMFILE || errno == ENFILE { usleep(50_000) }
                continue
            }
            handle(client)
        }
    }

    private func handle(_ client: Int32) {
        defer { close(client) }
        Self.configure(client)
        let response: Response
        switch readHead(client) {
        case .head(let head): response = respond(to: head)
        case .tooLarge: response = .status(431, "Request Header Fields Too Large", "the request head is over \(Self.maxRequestBytes) bytes")
        case .incomplete(let sawBytes):
            // A connection that sent nothing (a port check) gets no answer; a truncated request does.
            guard sawBytes else { return }
            response = .status(400, "Bad Request", "incomplete HTTP request")
        }
        Self.send(response.bytes, to: client)
        // Half-close, then read what the client still sends (a body we ignored), so the kernel
        // does not reset the connection before the client has read the response.
        shutdown(client, Int32(SHUT_WR))
        var scratch = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<16 where recv(client, &scratch, scratch.count, 0) > 0 {}
    }

    private enum Head {
        case head([UInt8])
        case tooLarge
        case incomplete(sawBytes: Bool)
    }

    /// Reads up to the blank line that ends the head, within the size and time limits.
    private func readHead(_ client: Int32) -> Head {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 2048)
        let deadline = ContinuousClock.now + Self.requestTimeout
        while ContinuousClock.now < deadline {
            let count = recv(client, &chunk, chunk.count, 0)
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                break // the receive timeout, or the client went away
            }
            let searchFrom = max(0, buffer.count - 3)
            buffer.append(contentsOf: chunk[0..<count])
            if let end = Self.endOfHead(buffer, from: searchFrom) { return end <= Self.maxRequestBytes ? .head(Array(buffer[..<end])) : .tooLarge }
            if buffer.count > Self.maxRequestBytes { return .tooLarge }
        }
        return .incomplete(sawBytes: !buffer.isEmpty)
    }

    /// The index just past `\r\n\r\n` (or a bare `\n\n`), searching from `start`.
    private static func endOfHead(_ bytes: [UInt8], from start: Int) -> Int? {
        var index = start
        while index < bytes.count {
            if bytes[index] == 0x0A {
                if index + 1 < bytes.count, bytes[index + 1] == 0x0A { return index + 2 }
                if index + 2 < bytes.count, bytes[index + 1] == 0x0D, bytes[index + 2] == 0x0A { return index + 3 }
            }
            index += 1
        }
        return nil
    }

    private func respond(to head: [UInt8]) -> Response {
        let lineEnd = head.firstIndex(where: { $0 == 0x0D || $0 == 0x0A }) ?? head.endIndex
        let parts = head[..<lineEnd].split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, let method = String(validating: parts[0], as: UTF8.self), let target = String(validating: parts[1], as: UTF8.self),
              let version = String(validating: parts[2], as: UTF8.self), version == "HTTP/1.1" || version == "HTTP/1.0",
              !method.isEmpty, method.utf8.allSatisfy({ (0x41...0x5A).contains($0) }), target.hasPrefix("/")
        else { return .status(400, "Bad Request", "not an HTTP/1.x request") }
        guard method == "GET" || method == "HEAD" else {
            return .status(405, "Method Not Allowed", "only GET and HEAD are served", extraHeaders: "Allow: GET, HEAD\r\n")
        }
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? target
        guard path == "/metrics" else { return .status(404, "Not Found", "the only resource here is /metrics") }
        return Response(code: 200, reason: "OK", contentType: "text/plain; version=0.0.4; charset=utf-8",
                        body: exposition(), includeBody: method == "GET")
    }

    private struct Response {
        let code: Int
        let reason: String
        let contentType: String
        let body: [UInt8]
        var includeBody = true
        var extraHeaders = ""

        static func status(_ code: Int, _ reason: String, _ message: String, extraHeaders: String = "") -> Response {
            Response(code: code, reason: reason, contentType: "text/plain; charset=utf-8", body: Array((message + "\n").utf8), extraHeaders: extraHeaders)
        }

        var bytes: [UInt8] {
            let head = "HTTP/1.1 \(code) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n\(extraHeaders)Connection: close\r\n\r\n"
            return Array(head.utf8) + (includeBody ? body : [])
        }
    }

    // MARK: Sockets

    private static func configure(_ client: Int32) {
        // Each read and write waits at most a second: a stalled client costs the next scrape
        // that long, never the endpoint.
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        #if canImport(Darwin)
        var one: Int32 = 1
        setsockopt(client, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif
    }

    private static func send(_ bytes: [UInt8], to client: Int32) {
        #if canImport(Glibc)
        // A client that closed early must not kill the daemon with SIGPIPE.
        let flags = Int32(MSG_NOSIGNAL)
        #else
        let flags: Int32 = 0
        #endif
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { raw in
                sendBytes(client, raw.baseAddress!.advanced(by: offset), bytes.count - offset, flags)
            }
            if sent < 0 && errno == EINTR { continue }
            if sent <= 0 { return }
            offset += sent
        }
    }

    private static func bind(_ address: ListenAddress) throws -> (Int32, Int) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var results: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(address.host.isEmpty ? nil : address.host, String(address.port), &hints, &results)
        guard status == 0, let first = results else {
            throw MetricsEndpointError(.unresolvable, "cannot resolve the metrics address \(address): \(String(cString: gai_strerror(status))); give a numeric address such as 127.0.0.1:9464")
        }
        defer { freeaddrinfo(results) }
        var lastError = "no usable address"
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            guard fd >= 0 else {
                lastError = String(cString: strerror(errno))
                continue
            }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            guard bindSocket(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0, listen(fd, 16) == 0 else {
                lastError = String(cString: strerror(errno))
                close(fd)
                continue
            }
            var bound = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let port = withUnsafeMutablePointer(to: &bound) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            } == 0 ? Self.port(of: bound) : address.port
            return (fd, port)
        }
        throw MetricsEndpointError(.cannotListen, "cannot listen for metrics on \(address): \(lastError) (is another process using the port?)")
    }

    private static func port(of storage: sockaddr_storage) -> Int {
        var storage = storage
        let family = Int32(storage.ss_family)
        return withUnsafePointer(to: &storage) { pointer in
            switch family {
            case AF_INET: pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            case AF_INET6: pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            default: 0
            }
        }
    }
}

/// Where the metrics endpoint listens: `HOST:PORT`, `[IPv6]:PORT`, or `:PORT` for every interface.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// The host name or numeric address; empty for every interface.
    public let host: String
    /// The TCP port; 0 picks a free one.
    public let port: Int

    /// Parses `HOST:PORT`; `nil` when it is not of that form or the port is not 0–65535.
    public init?(_ text: String) {
        var host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
            guard !host.isEmpty else { return nil }
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return nil } // an IPv6 address needs brackets
        }
        host = host.drop(while: { $0 == " " })
        guard let port = Int(portText), (0...65535).contains(port), !portText.hasPrefix("+"),
              host.allSatisfy({ !$0.isWhitespace && $0 != "/" }) else { return nil }
        self.host = String(host)
        self.port = port
    }

    /// The host as a URL shows it (brackets around IPv6, `0.0.0.0` for every interface).
    public var displayHost: String { host.isEmpty ? "0.0.0.0" : (host.contains(":") ? "[\(host)]" : host) }

    /// `HOST:PORT`.
    public var description: String { "\(displayHost):\(port)" }
}

/// The metrics endpoint cannot serve; the message says what to change.
public struct MetricsEndpointError: AirlockError {
    /// The kind of problem, stable for code that branches on it.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Code: String, Sendable, Hashable { case unresolvable, cannotListen, alreadyRunning }
        fileprivate let code: Code
        /// The host name does not resolve.
        public static let unresolvable = Kind(code: .unresolvable)
        /// The address cannot be bound (in use, not local, no permission).
        public static let cannotListen = Kind(code: .cannotListen)
        /// ``MetricsEndpoint/run()`` was called a second time.
        public static let alreadyRunning = Kind(code: .alreadyRunning)
        /// The kind's name.
        public var description: String { code.rawValue }
    }

    /// The kind of problem.
    public let kind: Kind
    /// What went wrong and what to do, in one line.
    public let description: String

    init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}

#if canImport(Glibc)
private let sendBytes = Glibc.send
private let bindSocket = Glibc.bind
#elseif canImport(Darwin)
private let sendBytes = Darwin.send
private let bindSocket = Darwin.bind
#endif
