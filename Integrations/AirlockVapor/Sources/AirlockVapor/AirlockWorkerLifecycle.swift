// Everything that embeds an Airlock worker in a Vapor application lives in this file, behind two
// names: `app.airlock.runWorker(tasks:redis:configure:)` and `EmbeddedWorker`. Vapor 4 has its own
// lifecycle (LifecycleHandler) rather than swift-service-lifecycle's ServiceGroup, so the worker —
// a `Service` — runs in a task of its own between didBoot and shutdown, and is stopped with its
// graceful `shutdown()`, exactly what a ServiceGroup would do on SIGTERM.
public import AirlockRedis
import Logging
import Synchronization
import Vapor

extension ApplicationAirlock {
    /// Runs an Airlock worker inside the application, from boot to shutdown, executing `tasks`.
    ///
    /// The worker starts when the application boots (`app.execute()`, or the first test request
    /// of VaporTesting) and stops gracefully when it shuts down (`app.asyncShutdown()`): fetching
    /// stops, running tasks get `shutdownTimeout` to finish, unstarted jobs go back to Redis.
    /// It starts for every command the application runs, `migrate` included; call this on the
    /// serving path only if that matters.
    ///
    /// Tasks reach the application's services through the closures they are registered with:
    ///
    /// ```swift
    /// var tasks = TaskRegistry()
    /// tasks.register("orders.send_confirmation") { arguments, context in
    ///     guard let id = arguments.kwargs["orderID"]?.intValue,
    ///           let order = try await Order.find(id, on: app.db) else { throw PermanentFailure("no such order") }
    ///     try await mailer.send(confirmationFor: order)                   // captured like app
    /// }
    /// try app.airlock.runWorker(tasks: tasks)
    /// ```
    ///
    /// - Parameters:
    ///   - tasks: what the worker can run.
    ///   - redis: the server to take jobs from; default: the one given to
    ///     ``ApplicationAirlock/useRedis(url:namespace:defaultQueue:global:)``, whose namespace and
    ///     default queue the worker then uses too.
    ///   - configure: adjusts the rest (queues, concurrency, retries, shutdown timeout…).
    /// - Returns: the worker, to inspect; the application owns its lifecycle.
    /// - Throws: ``EmbeddedWorkerError`` when no Redis server is known.
    @discardableResult
    public func runWorker(
        tasks: TaskRegistry,
        redis: RedisConfiguration? = nil,
        configure: (inout WorkerConfiguration) -> Void = { _ in }
    ) throws -> EmbeddedWorker {
        let executor = self.redis
        guard let server = redis ?? executor?.client.configuration else {
            throw EmbeddedWorkerError(
                "app.airlock.runWorker(tasks:) needs a Redis server: call app.airlock.useRedis(url:) first, or pass redis:.")
        }
        var source = RedisJobSource.Configuration(redis: server)
        var configuration = WorkerConfiguration()
        if redis == nil, let executor {
            source.namespace = executor.keys.namespace
            configuration.queues = [executor.defaultQueue]
        }
        configure(&configuration)
        let logger = application.logger
        let worker = Worker(
            source: RedisJobSource(configuration: source, logger: logger), configuration: configuration, registry: tasks, logger: logger)
        let embedded = EmbeddedWorker(worker, namespace: source.namespace, logger: logger)
        application.lifecycle.use(EmbeddedWorkerLifecycle(worker: embedded))
        return embedded
    }
}

/// An Airlock worker running inside a Vapor application (see
/// ``ApplicationAirlock/runWorker(tasks:redis:configure:)``).
public final class EmbeddedWorker: Sendable {
    /// The worker's id: its in-flight list and heartbeat in Redis are named after it.
    public var id: String { worker.id }
    /// The settings it runs with.
    public var configuration: WorkerConfiguration { worker.configuration }
    /// The Redis key prefix it reads (the executor's, unless `redis:` was given).
    public let namespace: String

    private let worker: Worker
    private let logger: Logger
    private struct State {
        var run: Task<Void, Never>?
        var failure: (any Error)?
    }
    private let state = Mutex(State())

    init(_ worker: Worker, namespace: String, logger: Logger) {
        self.worker = worker
        self.namespace = namespace
        self.logger = logger
    }

    /// Whether it has started and not yet stopped.
    public var isRunning: Bool { state.withLock { $0.run != nil } }

    /// Why it stopped on its own (refused credentials, a missing permission), if it did. The
    /// application keeps serving; the error is also logged at `critical`.
    public var failure: (any Error)? { state.withLock { $0.failure } }

    /// Starts the worker in a task of its own, once.
    func start() {
        state.withLock { state in
            guard state.run == nil else { return }
            state.run = Task { [worker, logger] in
                do {
                    try await worker.run()
                } catch {
                    logger.critical("airlock: the embedded worker stopped", metadata: ["error": "\(error)"])
                    self.state.withLock { $0.failure = error }
                }
            }
        }
    }

    /// Asks the worker to stop and waits until it has (running tasks finish or time out,
    /// unstarted jobs go back to Redis).
    func stop() async {
        worker.shutdown()
        let run = state.withLock { state in
            defer { state.run = nil }
            return state.run
        }
        await run?.value
    }

    /// Asks the worker to stop without waiting (for Vapor's blocking shutdown).
    func requestStop() {
        worker.shutdown()
    }
}

/// Starts the embedded worker when the application has booted and stops it at shutdown.
struct EmbeddedWorkerLifecycle: LifecycleHandler {
    let worker: EmbeddedWorker

    // VaporTesting boots with the blocking `boot()`, `app.execute()` with the async one; starting
    // a task works from both, so the blocking hook does it and the async one inherits it.
    func didBoot(_ application: Application) throws {
        worker.start()
    }

    func shutdownAsync(_ application: Application) async {
        await worker.stop()
    }

    func shutdown(_ application: Application) {
        worker.requestStop()
    }
}

/// The embedded worker cannot be set up as asked; the message says what to do.
public struct EmbeddedWorkerError: Error, CustomStringConvertible, Sendable {
    /// What is missing and how to provide it.
    public let description: String
    init(_ description: String) { self.description = description }
}
