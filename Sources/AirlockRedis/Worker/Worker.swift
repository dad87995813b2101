import Airlock
import Foundation
public import Logging
import Synchronization

/// Runs registered tasks from Redis queues: at least once, blocking when idle, recovering the
/// jobs of crashed workers.
///
/// ```swift
/// var tasks = TaskRegistry()
/// tasks.register(SendConfirmationEmail.self)
/// let worker = Worker(configuration: WorkerConfiguration(redis: try RedisConfiguration(url: url)), registry: tasks)
/// try await worker.run()            // returns after shutdown()
/// ```
///
/// A job is taken and recorded as this worker's in one atomic step, and acknowledged only after
/// its task has finished (succeeded, retry scheduled, or dead-lettered). See `docs/PROTOCOL.md`.
public final class Worker: Sendable {
    /// The settings in force.
    public let configuration: WorkerConfiguration
    /// This worker's id: its in-flight lists and heartbeat are named after it.
    public let id: String
    private let registry: TaskRegistry
    private let logger: Logger
    /// Carries follow-up jobs and the diagnostic tasks' writes.
    private let producerClient: RedisClient
    private let lifecycle = Mutex(Lifecycle())

    private struct Lifecycle {
        var stopRequested = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        var fatal: RedisError?
    }

    /// Creates a worker. The diagnostic tasks (`airlock.ping`, `airlock.echo`, `airlock.sleep`,
    /// `airlock.fail`, `airlock.record`) are added unless `registry` already has those names.
    public init(configuration: WorkerConfiguration, registry: TaskRegistry, logger: Logger = Logger(label: "airlock.worker")) {
        self.configuration = configuration
        let host = ProcessInfo.processInfo.hostName
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        self.id = "\(configuration.name ?? host)-\(getpid())-\(suffix)"
        self.producerClient = RedisClient(configuration: configuration.redis, name: "airlock-followups", logger: logger)
        var registry = registry
        registry.registerDiagnostics(keys: configuration.keys, client: producerClient)
        self.registry = registry
        var logger = logger
        logger[metadataKey: "worker"] = "\(id)"
        self.logger = logger
    }

    /// Asks the worker to stop: fetching stops at once, running tasks get
    /// ``WorkerConfiguration/shutdownTimeout`` to finish, and jobs that never started go back to
    /// the front of their queue. ``run()`` returns when that is done.
    public func shutdown() {
        let waiters = lifecycle.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.stopRequested = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Connects, then processes jobs until ``shutdown()`` (or cancellation of the calling task).
    /// - Throws: ``WorkerConfigurationError`` for settings that cannot work; ``RedisError`` when
    ///   Redis refuses the credentials or a command the worker needs (`NOPERM`), at start or later —
    ///   fatal configuration errors, never retried in a loop. An unreachable Redis is waited for.
    public func run() async throws {
        try configuration.validate()
        let configuration = self.configuration
        let id = self.id
        let logger = self.logger
        let keys = configuration.keys
        let fatal: @Sendable (RedisError) -> Void = { [self] error in
            lifecycle.withLock { $0.fatal = $0.fatal ?? error }
            shutdown()
        }
        let connectionState = ConnectionState(logger: logger, backoff: configuration.redis.reconnectBackoff, onFatal: fatal)
        let control = RedisClient(configuration: configuration.redis, name: "airlock-worker", logger: logger)
        let settleClient = RedisClient(configuration: configuration.redis, name: "airlock-settle", logger: logger)
        defer {
            let clients = [control, settleClient, producerClient]
            Task { for client in clients { await client.close() } }
        }
        guard try await connect(control, connectionState: connectionState) else { return }
        await warnWithoutAppendOnlyFile(control)

        let routes = configuration.routes
        let sources = routes.flatMap { route in route.fetchKeys.map { (route, $0) } }
        let buffer = WorkBuffer(capacity: configuration.concurrency + configuration.prefetch, queueCount: sources.count)
        let finisher = Finisher(
            client: settleClient, keys: keys, worker: id, deadLetterCap: configuration.deadLetterCap, connectionState: connectionState,
            written: { buffer.release($0) })
        let followUps = RedisExecutor(client: producerClient, namespace: configuration.namespace, defaultQueue: configuration.queues.first ?? "default", origin: id)
        let reconciler = Reconciler(keys: keys, worker: id, buffer: buffer, finisher: finisher, logger: logger)
        let runner = JobRunner(registry: registry, configuration: configuration, followUps: followUps, logger: logger, metrics: JobMetrics(queues: configuration.queues))
        let liveness = Liveness(
            worker: id, keys: keys, client: control, configuration: configuration,
            info: [
                "id": id, "host": ProcessInfo.processInfo.hostName, "pid": String(getpid()),
                "queues": configuration.queues.joined(separator: ","), "concurrency": String(configuration.concurrency),
                "started_at": String(epochMilliseconds()), "version": AirlockVersion.current,
                "protocol": configuration.wireProtocol.rawValue,
            ],
            held: { buffer.heldCount },
            reaped: {
                // Each requeue removes the job from the in-flight list and pushes it back only if it
                // is still there: jobs the reaper returned are skipped, jobs fetched since go back.
                let unstarted = buffer.takeUnstarted()
                for job in unstarted.reversed() { finisher.submit(.init(job: job, outcome: .requeue)) }
                logger.warning("gave up unstarted jobs after being reaped", metadata: ["jobs": "\(unstarted.count)"])
            },
            connectionState: connectionState, logger: logger)
        try await liveness.beat()
        // Recover what crashed workers left behind before taking new work.
        try await liveness.reapOnce()
        logger.notice("worker started", metadata: [
            "queues": "\(configuration.queues.joined(separator: ","))", "concurrency": "\(configuration.concurrency)",
            "prefetch": "\(configuration.prefetch)", "redis": "\(configuration.redis.redactedURL)",
        ])

        await withTaskGroup(of: Void.self) { background in
            background.addTask { await finisher.run() }
            background.addTask { await liveness.heartbeat() }
            background.addTask { await liveness.reap() }
            background.addTask { await reconciler.sweepUntilCancelled(routes, using: control, every: configuration.orphanSweepInterval, connectionState: connectionState) }
            for route in routes {
                background.addTask {
                    await Promoter(
                        route: route, keys: keys, client: control, configuration: configuration, connectionState: connectionState,
                        logger: logger
                    ).run()
                }
            }

            await withTaskGroup(of: Void.self) { work in
                for (index, (route, readyKey)) in sources.enumerated() {
                    work.addTask {
                        await Fetcher(
                            queueIndex: index, route: route, readyKey: readyKey, worker: id, keys: keys, configuration: configuration,
                            buffer: buffer, connectionState: connectionState, reconciler: reconciler, logger: logger
                        ).run()
                    }
                }
                let slots = TaskSlots(buffer: buffer, runner: runner, finisher: finisher)
                for _ in 0..<configuration.concurrency {
                    work.addTask { await slots.run() }
                }
                await withTaskCancellationHandler {
                    await waitForShutdownRequest()
                } onCancel: {
                    shutdown()
                }
                await stop(buffer: buffer, finisher: finisher, slots: slots, work: &work)
            }

            // Settlements still owed reach Redis now; if Redis stays away, stop waiting after a
            // while: what was not settled stays in the in-flight lists for a reaper.
            let drained = await withTaskGroup(of: Bool.self) { race in
                race.addTask { await finisher.drain(); return true }
                race.addTask {
                    try? await Task.sleep(for: max(configuration.shutdownTimeout, .seconds(5)))
                    return false
                }
                let first = await race.next() ?? false
                race.cancelAll()
                return first
            }
            if !drained { logger.error("Redis did not take the last acknowledgements; a reaper will recover those jobs") }
            background.cancelAll()
        }
        // Everything this worker held is settled or returned; anything still in its in-flight
        // lists came from a fetch whose reply was lost, and goes back now. Only a worker whose
        // lists are verifiably empty unregisters; otherwise a reaper finishes the job later.
        var swept = buffer.heldCount == 0
        for route in routes where swept {
            do {
                try await reconciler.reconcile(route, using: control, everything: true)
            } catch {
                swept = false
            }
        }
        if swept {
            await liveness.deregister()
        }
        if let fatal = lifecycle.withLock({ $0.fatal }) {
            logger.critical("worker stopped: \(SafeText.escape(fatal.description))")
            throw fatal
        }
        logger.notice("worker stopped cleanly")
    }

    /// Waits for Redis at start (a daemon may start before Redis does); returns false when shut
    /// down while waiting. Wrong credentials and other non-connection errors are thrown at once.
    private func connect(_ client: RedisClient, connectionState: ConnectionState) async throws -> Bool {
        var failures = 0
        while !lifecycle.withLock({ $0.stopRequested }) {
            do {
                try await client.connect()
                connectionState.recovered("start")
                return true
            } catch {
                guard error.isConnectionProblem, !error.isConfigurationProblem else { throw error }
                connectionState.failed("start", error)
                failures += 1
                await connectionState.backoff(attempt: failures)
            }
        }
        return false
    }

    /// With Redis's stock RDB-only persistence a crash of Redis loses every job acknowledged since
    /// the last snapshot (docs/OPERATIONS.md, "Persistence"); say so once at start when Redis shows
    /// it. An ACL without INFO, or a managed Redis that hides it, gets no warning.
    private func warnWithoutAppendOnlyFile(_ client: RedisClient) async {
        guard let info = try? await client.send([Array("INFO".utf8), Array("persistence".utf8)]).string else { return }
        if Self.appendOnlyDisabled(info: info) {
            logger.warning("Redis has no append-only file (appendonly no): if Redis crashes, jobs acknowledged since its last snapshot are lost; use appendonly yes (see docs/OPERATIONS.md, Persistence)",
                           metadata: ["redis": "\(configuration.redis.redactedURL)"])
        }
    }

    /// Whether an `INFO persistence` reply says the AOF is off.
    static func appendOnlyDisabled(info: String) -> Bool {
        info.split(whereSeparator: \.isNewline).contains { $0.trimmingCharacters(in: .whitespaces) == "aof_enabled:0" }
    }

    private func waitForShutdownRequest() async {
        await withCheckedContinuation { continuation in
            let stopNow = lifecycle.withLock { state -> Bool in
                if state.stopRequested { return true }
                state.waiters.append(continuation)
                return false
            }
            if stopNow { continuation.resume() }
        }
    }

    /// The graceful part of shutdown: no new fetches, unstarted jobs back to the front of their
    /// queue, running tasks given the shutdown timeout, then cancelled and returned too.
    private func stop(buffer: WorkBuffer, finisher: Finisher, slots: TaskSlots, work: inout TaskGroup<Void>) async {
        logger.notice("shutting down: no new jobs; waiting for running tasks", metadata: ["timeout": "\(configuration.shutdownTimeout)"])
        buffer.stopFetching()
        let returned = buffer.closeAndTakeUnstarted()
        // Each is pushed onto the consuming end: newest first, so the oldest ends up taken first.
        for job in returned.reversed() { finisher.submit(.init(job: job, outcome: .requeue)) }
        if !returned.isEmpty { logger.info("returned unstarted jobs to their queues", metadata: ["jobs": "\(returned.count)"]) }

        // Running tasks get until the deadline; then they are cancelled and their jobs returned.
        let deadline = ContinuousClock.now + configuration.shutdownTimeout
        let timer = Task {
            try? await Task.sleep(until: deadline, clock: .continuous)
            if !Task.isCancelled { slots.expire() }
        }
        while await work.next() != nil {}
        timer.cancel()
        // A fetcher blocked in Redis when fetching stopped may have delivered a job since.
        let late = buffer.closeAndTakeUnstarted()
        for job in late.reversed() { finisher.submit(.init(job: job, outcome: .requeue)) }
    }
}
