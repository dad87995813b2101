public import Airlock
public import AirlockRedis
import Logging
import Synchronization
public import Vapor

extension Application {
    /// The application's airlock settings: its executor (`app.airlock.useRedis(url:)`) and its
    /// embedded worker (`app.airlock.runWorker(tasks:)`).
    public var airlock: ApplicationAirlock { ApplicationAirlock(application: self) }
}

/// What `app.airlock` gives an application's `configure`.
///
/// ```swift
/// try app.airlock.useRedis(url: Environment.get("AIRLOCK_REDIS_URL") ?? "redis://127.0.0.1:6379/0")
/// app.middleware.use(AirlockMiddleware())     // request scopes dispatch through that executor
/// ```
public struct ApplicationAirlock: Sendable {
    /// The application this configures.
    public let application: Application

    /// What `app.airlock` holds, shared by every copy of the accessor (`app.airlock` is a new
    /// value each time). A class behind a lock: requests read it concurrently.
    final class State: Sendable {
        struct Values {
            var executor: (any Executor)?
            var redis: RedisExecutor?
        }
        let values = Mutex(Values())
    }

    private struct StateKey: StorageKey {
        typealias Value = State
    }

    /// The state for this application, created by the first call that configures something
    /// (`use(executor:)`, `useRedis`), which runs in `configure`, before requests.
    private var state: State {
        if let state = existing { return state }
        let state = State()
        application.storage[StateKey.self] = state
        return state
    }

    /// The state if anything was configured; reads never create it, so requests never write
    /// to the application's storage.
    private var existing: State? { application.storage[StateKey.self] }

    /// The executor request scopes use when ``AirlockMiddleware`` is not given one; `nil` (the
    /// default) leaves it to `Airlock.configuration`.
    public var executor: (any Executor)? {
        existing?.values.withLock { $0.executor }
    }

    /// The Redis executor ``useRedis(url:namespace:defaultQueue:global:)`` made, if it was called.
    public var redis: RedisExecutor? {
        existing?.values.withLock { $0.redis }
    }

    /// Makes `executor` the application's: request scopes dispatch through it.
    /// - Parameter global: also make it the process-wide default (`Airlock.configure(executor:)`)
    ///   for scopes outside requests (commands, your own `Airlock.scope { … }`). Leave it `false`
    ///   when several applications share a process, as tests do.
    public func use(executor: any Executor, global: Bool = false) throws {
        if global { try Airlock.configure(executor: executor) }
        state.values.withLock { $0.executor = executor }
    }

    /// Makes a ``RedisExecutor`` for `url` the application's executor (and, with `global`, the
    /// process-wide default), and closes its Redis connection when the application shuts down.
    ///
    /// The embedded worker (``runWorker(tasks:redis:configure:)``) reads the same server and
    /// namespace unless told otherwise.
    /// - Parameters:
    ///   - url: `redis://[user:password@]host[:port][/db]` (see `RedisConfiguration(url:)`).
    ///   - namespace: the key prefix shared with the workers (default `airlock`).
    ///   - defaultQueue: the queue of intents that name none.
    ///   - global: also `Airlock.configure(executor:)` with it (default `true`: one application
    ///     per process). Tests that run several applications at once pass `false`.
    /// - Returns: the executor, for code that wants to read the queues itself.
    /// - Throws: `RedisError` for a URL that does not parse; `ConfigurationError`.
    @discardableResult
    public func useRedis(url: String, namespace: String = "airlock", defaultQueue: String = "default", global: Bool = true) throws -> RedisExecutor {
        let client = RedisClient(configuration: try RedisConfiguration(url: url), name: "airlock-producer", logger: application.logger)
        let executor = RedisExecutor(client: client, namespace: namespace, defaultQueue: defaultQueue, logger: application.logger)
        try use(executor: executor, global: global)
        state.values.withLock { $0.redis = executor }
        // Each call opens a connection of its own; each is closed at shutdown.
        application.lifecycle.use(RedisConnectionCloser(client: client))
        return executor
    }
}
