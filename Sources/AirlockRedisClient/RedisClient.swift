public import Logging

/// An async Redis client backed by one blocking connection (plaintext or TLS, direct or through
/// sentinels) on a thread it owns.
///
/// Why a thread: its socket I/O blocks, and Swift's cooperative pool has only as many
/// threads as cores, so a single `BLPOP` on it could stall every task in the process.
/// Each client therefore owns one OS thread; async calls queue work for it and
/// suspend until it answers. Calls on one client run strictly in order (one
/// connection); use several clients for parallelism.
///
/// The connection is opened lazily on first use. When it breaks (refused, EOF,
/// timeout) the failing call throws and the connection is dropped; the *next* call
/// reconnects, spacing repeated failures with ``RedisConfiguration/reconnectBackoff``.
/// A failed command is never re-sent automatically, because it may already have
/// been applied: the caller decides.
public final class RedisClient: Sendable {
    /// The configuration this client connects with.
    public let configuration: RedisConfiguration
    /// Name used for logs, the thread, and CLIENT SETNAME (unless the configuration names one).
    public let name: String?
    private let thread: ConnectionThread

    /// Starts the client's thread; no connection is made until the first call or ``connect()``.
    public init(configuration: RedisConfiguration, name: String? = nil, logger: Logger = Logger(label: "airlock.redis")) {
        self.configuration = configuration
        self.name = name
        var logger = logger
        logger[metadataKey: "redis.url"] = "\(configuration.redactedURL)"
        if let name { logger[metadataKey: "redis.client"] = "\(name)" }
        self.thread = ConnectionThread(configuration: configuration, name: name, logger: logger)
    }

    deinit {
        thread.shutdown(final: nil)
    }

    /// Connects now (AUTH, SELECT, CLIENT SETNAME) instead of on first use, so
    /// misconfiguration (wrong password, no server) is reported at startup.
    /// Does nothing if already connected.
    public func connect() async throws(RedisError) {
        try await run { owner throws(RedisError) in
            try owner.connect()
        }
    }

    /// Sends one command. Error replies are thrown as ``RedisError/server(_:)``. A blocking
    /// command (``RedisCommand/blmove(_:_:from:to:timeout:)`` and friends) gets a read timeout one
    /// second longer than its own.
    public func send(_ command: RedisCommand) async throws(RedisError) -> RedisReply {
        try await run { owner throws(RedisError) in
            try owner.execute(command, timeout: nil).throwingServerError()
        }
    }

    /// Like ``send(_:)`` with an explicit read timeout for this call only (a slow `SCRIPT LOAD`,
    /// a `DEBUG SLEEP` in a test).
    public func send(_ command: RedisCommand, timeout: Duration) async throws(RedisError) -> RedisReply {
        try await run { owner throws(RedisError) in
            try owner.execute(command, timeout: timeout).throwingServerError()
        }
    }

    /// Sends a non-blocking command given as raw argument bytes (the first is its name).
    public func send(_ arguments: [[UInt8]]) async throws(RedisError) -> RedisReply {
        try await send(RedisCommand(arguments: arguments))
    }

    /// String convenience for ad-hoc, non-blocking commands: `try await client.send("GET", key)`.
    public func send(_ arguments: String...) async throws(RedisError) -> RedisReply {
        try await send(RedisCommand(arguments: arguments.map { Array($0.utf8) }))
    }

    /// Sends all commands in one round trip. Error replies are returned in place (not thrown),
    /// so `MULTI`/`EXEC` callers can see which step failed and read `EXEC`'s result.
    public func pipeline(_ commands: [RedisCommand]) async throws(RedisError) -> [RedisReply] {
        try await run { owner throws(RedisError) in
            try owner.executePipeline(commands, timeout: nil)
        }
    }

    /// ``pipeline(_:)-([RedisCommand])`` for non-blocking commands given as raw argument bytes.
    public func pipeline(_ commands: [[[UInt8]]]) async throws(RedisError) -> [RedisReply] {
        try await pipeline(commands.map { RedisCommand(arguments: $0) })
    }

    /// Runs a Lua script (`EVALSHA`; loaded and re-sent once when the server answers `NOSCRIPT`
    /// because its cache was flushed or it restarted). The script's error is thrown.
    public func evalScript(_ script: RedisScript, keys: [[UInt8]], args: [[UInt8]]) async throws(RedisError) -> RedisReply {
        try await evaluate([script.call(keys: keys, arguments: args)])[0].throwingServerError()
    }

    /// Runs script calls in one round trip (plus one to reload scripts the server forgot: a
    /// call answered `NOSCRIPT` did not run, so only those are sent again). Error replies are
    /// returned in place, one per call.
    public func evaluate(_ calls: [RedisScript.Call]) async throws(RedisError) -> [RedisReply] {
        guard !calls.isEmpty else { return [] }
        return try await run { owner throws(RedisError) in
            try owner.evaluate(calls, then: nil).replies
        }
    }

    /// ``evaluate(_:)`` followed by `WAIT` on the same connection, in the same round trip, so the
    /// `WAIT` covers exactly these writes: the script replies in place, and `WAIT`'s reply (the
    /// number of replicas that received them, or an error reply). When scripts had to be reloaded
    /// (a second round trip, perhaps on a new connection), each round trip ends with a `WAIT` and
    /// the weaker answer is returned.
    public func evaluate(_ calls: [RedisScript.Call], replication: RedisReplication) async throws(RedisError) -> (replies: [RedisReply], wait: RedisReply) {
        guard !calls.isEmpty else { return ([], .integer(0)) }
        return try await run { owner throws(RedisError) in
            let (replies, wait) = try owner.evaluate(calls, then: replication.command)
            return (replies, wait ?? .integer(0))
        }
    }

    /// Finishes queued calls, closes the connection and stops the thread. Later calls
    /// throw ``RedisError/notConnected``. Safe to call more than once.
    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let final: ConnectionJob = { owner in
                owner?.close()
                return { continuation.resume() }
            }
            if !thread.shutdown(final: final) {
                continuation.resume()
            }
        }
    }

    /// Hands `work` to the owned thread and suspends until it has run there. Cancelling the
    /// calling task does not interrupt a command already sent (a blocking read cannot be): the call
    /// finishes, bounded by its read timeout.
    private func run<T: Sendable>(
        _ work: @escaping @Sendable (any CommandRunner) throws(RedisError) -> T
    ) async throws(RedisError) -> T {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, RedisError>, Never>) in
            let job: ConnectionJob = { owner in
                guard let owner else {
                    return { continuation.resume(returning: .failure(.notConnected)) }
                }
                let result = Result { () throws(RedisError) -> T in try work(owner) }
                return { continuation.resume(returning: result) }
            }
            if !thread.submit(job) {
                continuation.resume(returning: .failure(.notConnected))
            }
        }
        return try result.get()
    }
}
