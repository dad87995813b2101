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

/// The state of one RedisClient that lives on its owned thread: the hiredis
/// connection, the reconnect bookkeeping and the connection-state log.
///
/// Not Sendable on purpose: only the owned thread ever touches it, which is what
/// lets it block on sockets and sleep through backoff without any locking.
final class ConnectionOwner {
    let configuration: RedisConfiguration
    let logger: Logger
    /// Name sent with CLIENT SETNAME (spaces are not allowed there, so replaced).
    let clientName: String?

    private var connection: HiredisConnection?
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
        let rawName = configuration.clientName ?? name
        self.clientName = rawName.map { String($0.map { $0 == " " || $0 == "\n" ? "-" : $0 }) }
    }

    /// Returns the live connection, (re)connecting first if needed. Consecutive failures
    /// are spaced by the configured backoff; the first attempt after a working
    /// connection was lost happens immediately.
    @discardableResult
    func connected() throws(RedisError) -> HiredisConnection {
        if let connection {
            if !connection.peerHasClosed { return connection }
            dropConnection(because: .connectionClosed(connection.endpoint, detail: "the server closed the idle connection"))
        }
        if failedAttempts > 0, let lastAttempt {
            let wait = configuration.reconnectBackoff.delay(attempt: failedAttempts - 1)
            let remaining = wait - lastAttempt.duration(to: .now)
            if remaining > .zero { Self.sleep(remaining) }
        }
        lastAttempt = .now
        do {
            let fresh = try HiredisConnection(configuration: configuration)
            try fresh.setReadTimeout(configuration.commandTimeout)
            try handshake(fresh)
            connection = fresh
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
        let connection = try connected()
        do {
            try connection.setReadTimeout(timeout ?? Self.readTimeout(for: commands, commandTimeout: configuration.commandTimeout))
        } catch {
            dropConnection(because: error)
            throw error
        }
        do {
            return try connection.pipeline(commands.map(\.arguments))
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
    func evaluate(_ calls: [RedisScript.Call]) throws(RedisError) -> [RedisReply] {
        var replies = try executePipeline(calls.map(\.evalsha))
        let missing = replies.indices.filter { replies[$0].errorMessage?.hasPrefix("NOSCRIPT") == true }
        guard !missing.isEmpty else { return replies }
        var loads: [RedisCommand] = []
        var seen = Set<String>()
        for index in missing where seen.insert(calls[index].script.sha1).inserted { loads.append(calls[index].script.load) }
        let again = try executePipeline(loads + missing.map { calls[$0].evalsha })
        if let failure = again.prefix(loads.count).first(where: { $0.errorMessage != nil })?.errorMessage {
            throw .server(failure)
        }
        for (index, reply) in zip(missing, again.dropFirst(loads.count)) { replies[index] = reply }
        return replies
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
    private func handshake(_ connection: HiredisConnection) throws(RedisError) {
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

        let replies = try connection.pipeline(commands.map(\.arguments))
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
    }

    private static func sleep(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR {
            request = remaining
        }
    }
}
