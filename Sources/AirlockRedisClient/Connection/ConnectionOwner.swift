import Airlock
import Logging
import Metrics
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The state of one RedisClient that lives on its owned thread: the connection, the reconnect
/// bookkeeping and the connection-state log.
///
/// Not Sendable on purpose: only the owned thread ever touches it, which is what
/// lets it block on sockets and sleep through backoff without any locking.
final class ConnectionOwner {
    let configuration: RedisConfiguration
    let logger: Logger
    /// Name sent with CLIENT SETNAME (spaces are not allowed there, so replaced).
    let clientName: String?

    private var connection: RedisConnection?
    /// Opens connections (TCP/unix, plaintext/TLS, through sentinels); owns the TLS context.
    private let dialer: Dialer
    /// The sentinels' switch count when the connection was made: a newer one drops it.
    private var connectedEpoch = 0
    private var released = false
    /// Consecutive failed connect attempts; drives the backoff before the next one.
    private var failedAttempts = 0
    private var lastAttempt: ContinuousClock.Instant?
    private var link: Link = .neverConnected
    private var everConnected = false
    /// The server-side id of the connection that failed after a request was written to it. The
    /// next connection kills it (`CLIENT KILL ID`) before anything else, so a request still in
    /// transit on it (a partition, the kernel retransmitting) can never run after we moved on.
    private var lostClientID: Int?

    /// What the log last said, so state changes are logged once, not per attempt.
    private enum Link: Equatable {
        case neverConnected
        case up
        case down(RedisError.Kind)
    }

    init(configuration: RedisConfiguration, name: String?, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.dialer = Dialer(configuration: configuration, watcher: SentinelWatcher.acquire(configuration, logger: logger))
        let rawName = configuration.clientName ?? name
        self.clientName = rawName.map { String($0.map { $0 == " " || $0 == "\n" ? "-" : $0 }) }
    }

    /// Returns the live connection, (re)connecting first if needed. Consecutive failures
    /// are spaced by the configured backoff; the first attempt after a working
    /// connection was lost happens immediately.
    @discardableResult
    func connected() throws(RedisError) -> RedisConnection {
        if let connection {
            if let watcher = dialer.watcher, watcher.epoch != connectedEpoch {
                // The sentinels moved the master: leave the old one before writing to it. Nothing
                // was sent, so reconnecting at once is safe (the watcher logged the switch).
                self.connection = nil
                failedAttempts = 0
            } else if !connection.peerHasClosed {
                return connection
            } else {
                dropConnection(because: .connectionClosed(connection.endpoint, detail: "the server closed the idle connection"))
            }
        }
        if failedAttempts > 0, let lastAttempt {
            let wait = configuration.reconnectBackoff.delay(attempt: failedAttempts - 1)
            let remaining = wait - lastAttempt.duration(to: .now)
            if remaining > .zero { Self.sleep(remaining) }
        }
        lastAttempt = .now
        let epoch = dialer.watcher?.epoch ?? 0
        do {
            let fresh = try dialer.dial()
            try fresh.setReadTimeout(configuration.commandTimeout)
            try handshake(fresh)
            connection = fresh
            connectedEpoch = epoch
            failedAttempts = 0
            if link != .up {
                logger.info(everConnected ? "Reconnected to Redis" : "Connected to Redis")
            }
            // `airlock_redis_reconnects_total` (AirlockMetrics in AirlockWorker documents it).
            if everConnected { Counter(label: "airlock_redis_reconnects_total", dimensions: [("client", clientName ?? "unnamed")]).increment() }
            link = .up
            everConnected = true
            return fresh
        } catch {
            failedAttempts += 1
            // The error is thrown to the caller, who reports it; logging it loudly here
            // too would print every misconfiguration twice.
            if link != .down(error.kind) {
                logger.debug("Cannot connect to Redis: \(SafeText.escape(error.description))")
                link = .down(error.kind)
            }
            throw error
        }
    }

    /// Runs one command and returns its reply, error replies included.
    func execute(_ command: RedisCommand, timeout: Duration? = nil) throws(RedisError) -> RedisReply {
        try executePipeline([command], timeout: timeout)[0]
    }

    /// Runs commands in one round trip; error replies stay in place. A transport
    /// failure drops the connection (the next call reconnects) and is rethrown: the
    /// commands are never re-sent here, since they may already have been applied.
    func executePipeline(_ commands: [RedisCommand], timeout: Duration? = nil) throws(RedisError) -> [RedisReply] {
        let replies = try send(commands, timeout: timeout)
        guard let masterName = dialer.masterName, replies.contains(where: Self.isDemotion) else { return replies }
        // The node the sentinels named was demoted (a failover, or a partitioned master rejoining
        // as a replica): nothing more goes to it, and the next connect asks the sentinels again.
        let endpoint = connection?.endpoint ?? configuration.endpointDescription
        dropConnection(because: .notMaster(endpoint, masterName: masterName, role: "replica (it answered READONLY)"))
        // Every command was refused, so none ran: sending them once more, to the new master, is safe.
        guard replies.allSatisfy({ $0.errorMessage != nil }) else { return replies }
        return try send(commands, timeout: timeout)
    }

    /// A reply that means "this node is no longer the master": writes refused on a replica, or a
    /// blocking command released because the node became one.
    private static func isDemotion(_ reply: RedisReply) -> Bool {
        guard let message = reply.errorMessage else { return false }
        return message.hasPrefix("READONLY") || message.hasPrefix("UNBLOCKED")
    }

    private func send(_ commands: [RedisCommand], timeout: Duration?) throws(RedisError) -> [RedisReply] {
        let connection = try connected()
        do {
            try connection.setReadTimeout(timeout ?? Self.readTimeout(for: commands, commandTimeout: configuration.commandTimeout))
        } catch {
            dropConnection(because: error)
            throw error
        }
        do {
            return try connection.pipeline(commands)
        } catch {
            guard connection.isBroken else { throw error } // rejected before writing
            lostClientID = connection.clientID ?? lostClientID
            dropConnection(because: error)
            throw error.afterSending()
        }
    }

    /// Runs script calls in one round trip (`EVALSHA` each). Calls the server answers `NOSCRIPT`
    /// did not run — its script cache was flushed, or it restarted — so each missing script is
    /// loaded once and just those calls are sent again, in a second round trip. The one place
    /// scripts are run: every caller gets the reload for free.
    ///
    /// With `wait`, that command (`WAIT n ms`) ends each round trip, on the same connection right
    /// after the writes, and the weaker of its replies is returned: when a reconnect came between
    /// the two round trips, the second `WAIT` cannot vouch for the first round trip's writes.
    func evaluate(_ calls: [RedisScript.Call], then wait: RedisCommand? = nil) throws(RedisError) -> (replies: [RedisReply], wait: RedisReply?) {
        let trailer = wait.map { [$0] } ?? []
        var replies = try executePipeline(calls.map(\.evalsha) + trailer)
        var waited = wait == nil ? nil : replies.removeLast()
        let missing = replies.indices.filter { replies[$0].errorMessage?.hasPrefix("NOSCRIPT") == true }
        guard !missing.isEmpty else { return (replies, waited) }
        var loads: [RedisCommand] = []
        var seen = Set<String>()
        for index in missing where seen.insert(calls[index].script.sha1).inserted { loads.append(calls[index].script.load) }
        var again = try executePipeline(loads + missing.map { calls[$0].evalsha } + trailer)
        if wait != nil { waited = Self.weaker(waited, again.removeLast()) }
        if let failure = again.prefix(loads.count).first(where: { $0.errorMessage != nil })?.errorMessage {
            throw .server(failure)
        }
        for (index, reply) in zip(missing, again.dropFirst(loads.count)) { replies[index] = reply }
        return (replies, waited)
    }

    /// Of two `WAIT` replies, the one that vouches for less: an error, else the smaller count.
    static func weaker(_ first: RedisReply?, _ second: RedisReply) -> RedisReply {
        guard let first else { return second }
        if case .integer(let a) = first, case .integer(let b) = second { return .integer(min(a, b)) }
        return first.errorMessage != nil ? first : second
    }

    /// The read timeout a call needs: blocking commands get their own timeout plus a second of
    /// slack (never less than the normal command timeout); `nil` = no timeout.
    static func readTimeout(for commands: [RedisCommand], commandTimeout: Duration?) -> Duration? {
        guard let commandTimeout else { return nil }
        var needed = commandTimeout
        for command in commands {
            switch command.blocking {
            case .no: continue
            case .forever: return nil
            case .upTo(let limit): needed = max(needed, limit + .seconds(1))
            }
        }
        return needed
    }

    /// Drops the connection for good (client closing).
    func close() {
        if connection != nil { logger.debug("Closed Redis connection") }
        connection = nil
        if !released {
            released = true
            dialer.watcher?.release()
        }
    }

    private func dropConnection(because error: RedisError) {
        connection = nil
        failedAttempts = 0
        if link == .up {
            logger.warning("Lost connection to Redis: \(SafeText.escape(error.description))")
            link = .down(error.kind)
        }
    }

    /// AUTH, SELECT, CLIENT SETNAME and CLIENT ID in one round trip — plus CLIENT KILL of the
    /// previous connection when it failed mid-request — so `connect()` always proves the server
    /// answers (and surfaces NOAUTH early).
    private func handshake(_ connection: RedisConnection) throws(RedisError) {
        var commands: [RedisCommand] = []
        if let password = configuration.password {
            commands.append(configuration.username.map { RedisCommand("AUTH", $0, password) } ?? RedisCommand("AUTH", password))
        }
        if configuration.database != 0 {
            commands.append(RedisCommand("SELECT", configuration.database))
        }
        if let clientName, !clientName.isEmpty {
            commands.append(RedisCommand("CLIENT", "SETNAME", clientName))
        }
        let required = commands.count
        // Optional steps: an ACL may forbid them, which costs only the late-request protection.
        commands.append(RedisCommand("CLIENT", "ID"))
        if let lostClientID {
            commands.append(RedisCommand("CLIENT", "KILL", "ID", lostClientID))
        }
        // Through sentinels: their answer may predate a failover, so the node must say it is the master.
        if dialer.masterName != nil { commands.append(RedisCommand("ROLE")) }

        let replies: [RedisReply]
        do {
            replies = try connection.pipeline(commands)
        } catch {
            throw dialer.diagnose(error, on: connection)
        }
        for (index, reply) in replies.prefix(required).enumerated() {
            guard case .error(let message) = reply else { continue }
            let isAuthReply = index == 0 && configuration.password != nil
            if isAuthReply || message.hasPrefix("WRONGPASS") || message.hasPrefix("NOAUTH") {
                throw .authenticationFailed(user: configuration.username, serverMessage: message)
            }
            throw .server(message)
        }
        if case .error(let message) = replies[required], message.hasPrefix("NOAUTH") {
            throw .authenticationFailed(user: configuration.username, serverMessage: message)
        }
        connection.clientID = replies[required].int
        if let lostClientID {
            let killed = replies[required + 1]
            if let message = killed.errorMessage {
                logger.debug("Could not kill the connection that failed mid-request (a late request on it may still run; the orphan sweep returns what it strands)",
                             metadata: ["client_id": "\(lostClientID)", "error": "\(SafeText.escape(message))"])
            } else if killed.int == 1 {
                logger.debug("Killed the connection that failed mid-request", metadata: ["client_id": "\(lostClientID)"])
            }
            self.lostClientID = nil
        }
        if let masterName = dialer.masterName, let role = replies.last {
            if let message = role.errorMessage { throw .server(message) }
            let name = role.array?.first?.string ?? "\(role)"
            guard name == "master" else { throw .notMaster(connection.endpoint, masterName: masterName, role: name) }
        }
    }

    /// Sleeps the owned thread (never a pool thread), resuming after signals.
    static func sleep(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR {
            request = remaining
        }
    }
}
