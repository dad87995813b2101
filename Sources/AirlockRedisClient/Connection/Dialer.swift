/// Opens connections the way a configuration says: TCP or a unix socket, plaintext or TLS,
/// straight to the configured server or to the master the sentinels name.
///
/// Not Sendable: it lives on a client's owned thread (inside its ConnectionOwner), where
/// connecting may block; its TLS context and sentinel order are that thread's alone.
final class Dialer {
    let configuration: RedisConfiguration
    /// The process's `+switch-master` listener for these sentinels (nil without sentinels).
    let watcher: SentinelWatcher?
    private var tlsContext: TLSContext?
    private var sentinels: SentinelResolver?
    /// The announcement already tried, so a stale one is tried once, not after every failure.
    private var triedAnnouncement: Int?

    init(configuration: RedisConfiguration, watcher: SentinelWatcher?) {
        self.configuration = configuration
        self.watcher = watcher
        self.sentinels = configuration.sentinel.map(SentinelResolver.init)
    }

    /// What the connection reaches: the configured server, or (with sentinels) the master's name.
    var masterName: String? { configuration.sentinel?.masterName }

    /// A connected stream to the server this configuration means, not yet handshaken. With
    /// sentinels, each call asks them afresh: after a failover the next connect finds the new master.
    func dial() throws(RedisError) -> RedisConnection {
        if var sentinels {
            // Right after a switch, a sentinel asked next may not have heard of it yet, while the
            // old master still says it is one: go where the announcement said, once (ROLE checks it).
            if let announced = watcher?.announcement, announced.epoch != triedAnnouncement {
                triedAnnouncement = announced.epoch
                if let connection = try? open(host: announced.host, port: announced.port) { return connection }
            }
            let master = try sentinels.masterAddress(using: self)
            self.sentinels = sentinels
            return try open(host: master.host, port: master.port)
        }
        if let path = configuration.unixSocketPath {
            let endpoint = "unix:\(path)"
            let socket = try Socket.connect(unixPath: path, timeout: configuration.connectTimeout, endpoint: endpoint)
            return RedisConnection(stream: PlainStream(socket: socket), endpoint: endpoint)
        }
        return try open(host: configuration.host, port: configuration.port)
    }

    /// A TCP connection to `host:port`, TLS when the configuration says so.
    func open(host: String, port: Int) throws(RedisError) -> RedisConnection {
        let endpoint = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let timeout = configuration.connectTimeout
        let socket = try Socket.connect(host: host, port: port, timeout: timeout, endpoint: endpoint)
        guard let settings = configuration.tls else {
            return RedisConnection(stream: PlainStream(socket: socket), endpoint: endpoint)
        }
        let context: TLSContext
        if let tlsContext {
            context = tlsContext
        } else {
            context = try TLSContext(settings, endpoint: endpoint)
            tlsContext = context
        }
        let stream = try TLSStream(socket: socket, context: context, host: host, port: port, endpoint: endpoint, timeout: timeout)
        return RedisConnection(stream: stream, endpoint: endpoint)
    }

    /// A fresh plaintext connection closed before its first reply is what a TLS port does to a
    /// plaintext client (it resets the connection without a byte). When the port completes a
    /// TLS handshake, say exactly that instead of "connection closed", which would be retried.
    ///
    /// Over TLS, the same symptom is a server that refused the session after the handshake (TLS
    /// 1.3 checks the client certificate last): its alert raced the first request, and the reset
    /// that request caused discarded it. Asking again without writing anything hears the alert.
    func diagnose(_ error: RedisError, on connection: RedisConnection) -> RedisError {
        guard error.kind == .connectionClosed, !connection.hasReceivedBytes else { return error }
        let (host, port) = Self.hostAndPort(connection.endpoint)
        guard let host else { return error }
        if configuration.tls != nil {
            guard let tlsContext else { return error }
            return TLSStream.serverVerdict(context: tlsContext, host: host, port: port, endpoint: connection.endpoint, timeout: configuration.connectTimeout) ?? error
        }
        guard PortProbe.completesTLSHandshake(host: host, port: port, timeout: configuration.connectTimeout) else { return error }
        return .tls(connection.endpoint, "the server closed the connection without a reply, and it speaks TLS: is this a TLS port? use rediss://")
    }

    /// `host:port` or `[v6]:port` split apart; a nil host when there is no port.
    static func hostAndPort(_ endpoint: String) -> (String?, Int) {
        guard let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...]) else { return (nil, 0) }
        var host = endpoint[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return (String(host), port)
    }
}
