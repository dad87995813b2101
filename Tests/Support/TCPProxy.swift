import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An in-process TCP proxy between a client under test and a server (usually redis-server), which
/// the test can partition silently: no RST, no FIN, bytes simply stop arriving.
///
/// It listens on 127.0.0.1 at ``port`` and opens one upstream connection per accepted client.
/// One thread of its own pumps every pair through non-blocking sockets and `poll`, so nothing ever
/// blocks Swift's cooperative pool; the controls only flip state under a lock and return at once
/// (the thread acts on them within one poll interval, 10 ms).
///
/// ```swift
/// let proxy = try TCPProxy(targetPort: server.port)
/// proxy.stall(.existingConnections)   // requests written now are held, replies too
/// // … the client times out and reconnects (a new connection flows) …
/// proxy.release()                     // the held requests reach the server, late
/// ```
public final class TCPProxy: Sendable {
    /// Which connections ``stall(_:)`` partitions.
    public enum Scope: Sendable {
        /// Only the connections open now; connections made later flow normally (a client that
        /// reconnected while its old request is still in transit).
        case existingConnections
        /// The open connections and every connection made until ``release()`` or ``heal()``.
        case allConnections
    }

    /// What ``release()`` did with the bytes it held.
    public struct Release: Sendable, Equatable {
        /// Bytes sent on to a server side that was still open: the late delivery.
        public var delivered = 0
        /// Bytes discarded because the server had already closed that connection (e.g. `CLIENT KILL`).
        public var dropped = 0
    }

    /// One partitioned connection, as ``stalledConnections`` reports it.
    public struct Stalled: Sendable, Equatable {
        /// Bytes its client sent that the partition holds.
        public var heldBytes: Int
        /// Its client closed the connection (the close is held too).
        public var clientClosed: Bool
        /// The server closed it (e.g. `CLIENT KILL`): what is held can never reach the server.
        public var serverClosed: Bool
    }

    /// The loopback port clients connect to.
    public let port: Int
    private let core: Core

    /// Starts listening on a free loopback port and forwarding to `targetHost:targetPort`
    /// (`targetHost` is a numeric IPv4 address).
    public init(targetPort: Int, targetHost: String = "127.0.0.1") throws {
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = in_port_t(UInt16(targetPort)).bigEndian
        guard inet_pton(AF_INET, targetHost, &target.sin_addr) == 1 else {
            throw RedisServerError("TCPProxy: \(targetHost) is not a numeric IPv4 address")
        }
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw RedisServerError("TCPProxy: socket() failed: \(String(cString: strerror(errno)))") }
        var address = Probe.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 64) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard listening, Core.makeNonBlocking(listener) else {
            let reason = String(cString: strerror(errno))
            closeDescriptor(listener)
            throw RedisServerError("TCPProxy: cannot listen on loopback: \(reason)")
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        core = Core(listener: listener, target: target)
        let core = self.core
        let thread = Thread { core.pump() }
        thread.name = "tcp-proxy-\(port)"
        thread.start()
    }

    deinit { core.state.withLock { $0.stopping = true } }

    /// Partitions the connections `scope` names: from now on the bytes their clients send are held,
    /// in order, and nothing the server sends reaches them — a client's close (FIN) is held too.
    public func stall(_ scope: Scope = .allConnections) {
        core.state.withLock { state in
            for index in state.pairs.indices { state.pairs[index].stalled = true }
            if scope == .allConnections { state.stallNew = true }
        }
    }

    /// Ends the partition with the late delivery: every held byte goes to the server in the order
    /// it was sent (then a held close), and all connections, old and new, flow normally again.
    @discardableResult
    public func release() -> Release {
        core.state.withLock { state in
            var release = Release()
            for index in state.pairs.indices where state.pairs[index].stalled {
                let held = state.pairs[index].toUpstream.count
                if state.pairs[index].upstreamDone { release.dropped += held } else { release.delivered += held }
                state.pairs[index].stalled = false
            }
            state.stallNew = false
            return release
        }
    }

    /// Ends the partition without the late delivery, as when TCP gives up retransmitting: held bytes
    /// are discarded and the partitioned connections closed on both sides; new connections flow.
    public func heal() {
        core.state.withLock { state in
            for index in state.pairs.indices where state.pairs[index].stalled {
                state.pairs[index].reset = true
                state.pairs[index].stalled = false
            }
            state.stallNew = false
        }
    }

    /// Client connections the proxy carries now, each with its own connection to the server.
    public var connectionCount: Int { core.state.withLock { $0.pairs.count } }
    /// Client connections accepted since the proxy started.
    public var acceptedCount: Int { core.state.withLock { $0.accepted } }
    /// The partitioned connections now, oldest first.
    public var stalledConnections: [Stalled] {
        core.state.withLock { state in
            state.pairs.filter(\.stalled).map {
                Stalled(heldBytes: $0.toUpstream.count, clientClosed: $0.clientDone, serverClosed: $0.upstreamDone)
            }
        }
    }

    /// Stops accepting and closes every socket (the proxy's thread does so within one poll interval).
    public func close() { core.state.withLock { $0.stopping = true } }
}

/// The proxy's state and its thread's loop. Only that thread opens, reads, writes and closes sockets;
/// the controls change flags and buffers under the same lock, so a descriptor is never closed while
/// another thread polls it.
private final class Core: Sendable {
    struct Pair {
        let client: Int32
        let upstream: Int32
        var stalled: Bool
        var toUpstream: [UInt8] = []
        var toClient: [UInt8] = []
        var clientDone = false
        var upstreamDone = false
        var upstreamShut = false
        var reset = false

        var finished: Bool { reset || (!stalled && upstreamDone && (clientDone || toClient.isEmpty)) }
    }

    struct State {
        var pairs: [Pair] = []
        var stallNew = false
        var stopping = false
        var accepted = 0
    }

    let state = Mutex(State())
    let listener: Int32
    let target: sockaddr_in

    init(listener: Int32, target: sockaddr_in) {
        self.listener = listener
        self.target = target
    }

    func pump() {
        while true {
            var descriptors = state.withLock { state -> [pollfd] in
                var descriptors = [pollfd(fd: state.stopping ? -1 : listener, events: Int16(POLLIN), revents: 0)]
                for pair in state.pairs {
                    let writeClient = !pair.stalled && !pair.toClient.isEmpty ? POLLOUT : 0
                    let writeUpstream = !pair.stalled && !pair.toUpstream.isEmpty ? POLLOUT : 0
                    descriptors.append(pollfd(fd: pair.clientDone ? -1 : pair.client, events: Int16(POLLIN | writeClient), revents: 0))
                    descriptors.append(pollfd(fd: pair.upstreamDone ? -1 : pair.upstream, events: Int16(POLLIN | writeUpstream), revents: 0))
                }
                return descriptors
            }
            _ = poll(&descriptors, nfds_t(descriptors.count), 10)
            let stop = state.withLock { state -> Bool in
                if state.stopping {
                    for pair in state.pairs { Self.closeBoth(pair) }
                    state.pairs = []
                    return true
                }
                acceptAll(&state)
                for index in state.pairs.indices { Self.service(&state.pairs[index]) }
                for pair in state.pairs where pair.finished { Self.closeBoth(pair) }
                state.pairs.removeAll { $0.finished }
                return false
            }
            if stop { break }
        }
        closeDescriptor(listener)
    }

    private func acceptAll(_ state: inout State) {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            state.accepted += 1
            var address = target
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            let connected = upstream >= 0 && withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            } == 0
            guard connected, Self.makeNonBlocking(client), Self.makeNonBlocking(upstream) else {
                // The server is down: the client sees its connection closed, as it would without us.
                closeDescriptor(client)
                if upstream >= 0 { closeDescriptor(upstream) }
                continue
            }
            var on: Int32 = 1
            for fd in [client, upstream] { setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size)) }
            state.pairs.append(Pair(client: client, upstream: upstream, stalled: state.stallNew))
        }
    }

    /// Moves what can move without blocking. A stalled pair still reads both sides (so it notices a
    /// close) but holds everything; what arrives for a side that is gone is discarded.
    private static func service(_ pair: inout Pair) {
        if pair.reset { return }
        if !pair.clientDone {
            pair.clientDone = !read(pair.client, into: &pair.toUpstream)
            if pair.upstreamDone && !pair.stalled { pair.toUpstream = [] }
        }
        if !pair.upstreamDone {
            pair.upstreamDone = !read(pair.upstream, into: &pair.toClient)
        }
        if pair.clientDone { pair.toClient = [] }
        guard !pair.stalled else { return }
        if pair.upstreamDone {
            pair.toUpstream = []
        } else {
            if !write(pair.upstream, from: &pair.toUpstream) { pair.upstreamDone = true }
            if pair.clientDone && pair.toUpstream.isEmpty && !pair.upstreamShut {
                shutdown(pair.upstream, Int32(SHUT_WR))   // forward the client's close
                pair.upstreamShut = true
            }
        }
        if !pair.clientDone && !write(pair.client, from: &pair.toClient) {
            pair.clientDone = true
            pair.toClient = []
        }
    }

    /// Appends everything readable now; false once the peer closed or failed.
    private static func read(_ fd: Int32, into buffer: inout [UInt8]) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = recv(fd, &chunk, chunk.count, Int32(MSG_DONTWAIT))
            if count > 0 {
                buffer += chunk[..<count]
            } else if count == 0 {
                return false
            } else {
                return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
            }
        }
    }

    /// Writes as much of `buffer` as the socket takes now; false when the peer is gone.
    private static func write(_ fd: Int32, from buffer: inout [UInt8]) -> Bool {
        while !buffer.isEmpty {
            let count = send(fd, buffer, buffer.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            if count > 0 {
                buffer.removeFirst(count)
            } else {
                return count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            }
        }
        return true
    }

    private static func closeBoth(_ pair: Pair) {
        closeDescriptor(pair.client)
        closeDescriptor(pair.upstream)
    }

    static func makeNonBlocking(_ fd: Int32) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0
    }
}

/// `close(2)`, reachable from types that have a `close()` of their own.
private func closeDescriptor(_ fd: Int32) {
    _ = close(fd)
}
