public import Logging

/// An async Redis client backed by one blocking hiredis connection on a thread it owns.
///
/// Why a thread: hiredis is blocking, and Swift's cooperative pool has only as many
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
        try await run { owner, _ throws(RedisError) in
            _ = try owner.connected()
        }
    }

    /// Sends one command. Error replies are thrown as ``RedisError/server(_:)``.
    /// Blocking commands (BLPOP, BLMOVE, XREAD BLOCK...) automatically get a read
    /// timeout one second longer than their own.
    public func send(_ args: [[UInt8]]) async throws(RedisError) -> RedisReply {
        try await run { owner, _ throws(RedisError) in
            try owner.execute(args).throwingServerError()
        }
    }

    /// Like ``send(_:)-([[UInt8]])`` but with an explicit read timeout for this call only
    /// (e.g. a slow `SCRIPT LOAD` or a command that blocks in a way we do not recognise).
    public func send(_ args: [[UInt8]], timeout: Duration) async throws(RedisError) -> RedisReply {
        try await run { owner, _ throws(RedisError) in
            try owner.execute(args, timeout: timeout).throwingServerError()
        }
    }

    /// String convenience for ad-hoc commands: `try await client.send("GET", key)`.
    public func send(_ args: String...) async throws(RedisError) -> RedisReply {
        try await send(args.map { Array($0.utf8) })
    }

    /// Sends all commands in one round trip. Error replies are returned in place
    /// (not thrown) so MULTI/EXEC callers can see which step failed and read EXEC's result.
    public func pipeline(_ commands: [[[UInt8]]]) async throws(RedisError) -> [RedisReply] {
        try await run { owner, _ throws(RedisError) in
            try owner.executePipeline(commands)
        }
    }

    /// Runs a Lua script with EVALSHA, transparently re-sending the source once if the
    /// server answers NOSCRIPT (cache flushed or server restarted). Script errors are thrown.
    public func evalScript(_ script: RedisScript, keys: [[UInt8]], args: [[UInt8]]) async throws(RedisError) -> RedisReply {
        try await run { owner, _ throws(RedisError) in
            try owner.evalScript(script, keys: keys, args: args).throwingServerError()
        }
    }

    /// Runs `body` on the client's own thread with synchronous access to the
    /// connection: for multi-step work without a thread hop per command, and for
    /// blocking loops that must not occupy the cooperative pool. Other calls on this
    /// client wait until `body` returns.
    public func withConnection<T: Sendable>(
        _ body: @Sendable (RedisConnectionHandle) throws(RedisError) -> T
    ) async throws(RedisError) -> T {
        // The body is only used while we are suspended below, and the owned thread
        // drops it (BodySlot.take) before resuming us, so it never actually escapes.
        try await withoutActuallyEscaping(body) { (escapable) async throws(RedisError) -> T in
            let slot = BodySlot(escapable)
            return try await self.run { owner, control throws(RedisError) -> T in
                try slot.take()(RedisConnectionHandle(owner: owner, control: control))
            }
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

    /// Hands `work` to the owned thread and suspends until it has run there.
    /// Cancellation does not interrupt a running command (hiredis cannot), but is
    /// visible to `withConnection` bodies through ``RedisConnectionHandle/isCancelled``.
    private func run<T: Sendable>(
        _ work: @escaping @Sendable (ConnectionOwner, JobControl) throws(RedisError) -> T
    ) async throws(RedisError) -> T {
        let control = JobControl(thread: thread)
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, RedisError>, Never>) in
                let job: ConnectionJob = { owner in
                    guard let owner else {
                        return { continuation.resume(returning: .failure(.notConnected)) }
                    }
                    let result = Result { () throws(RedisError) -> T in try work(owner, control) }
                    return { continuation.resume(returning: result) }
                }
                if !thread.submit(job) {
                    continuation.resume(returning: .failure(.notConnected))
                }
            }
        } onCancel: {
            control.cancel()
        }
        return try result.get()
    }
}

/// Holds a `withConnection` body until the owned thread runs it, then lets go, so no
/// reference outlives the `withoutActuallyEscaping` scope however long the job
/// closure itself lingers. `@unchecked Sendable` is safe: it is filled before the job
/// is queued (the queue's lock orders that write before the thread's read) and only
/// the owned thread takes from it, once.
private final class BodySlot<T>: @unchecked Sendable {
    typealias Body = @Sendable (RedisConnectionHandle) throws(RedisError) -> T
    private var body: Body?

    init(_ body: @escaping Body) {
        self.body = body
    }

    func take() -> Body {
        defer { body = nil }
        return body!
    }
}
