import Airlock
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import Logging
public import Metrics
public import ServiceLifecycle
import Synchronization

/// Runs registered tasks from a ``JobSource``: at least once, waiting without polling when idle,
/// recovering the jobs of crashed workers.
///
/// ```swift
/// var tasks = TaskRegistry()
/// tasks.register(SendConfirmationEmail.self)
/// let source = try RedisJobSource(url: "redis://127.0.0.1:6379/0")       // import AirlockRedis
/// let worker = Worker(source: source, configuration: WorkerConfiguration(queues: ["default"]), registry: tasks)
/// try await worker.run()            // returns after shutdown()
/// ```
///
/// A job is taken and recorded as this worker's in one atomic step of the source, and settled
/// only after its task has finished (succeeded, retry scheduled, or dead-lettered). A worker can
/// be run again after ``run()`` returned.
///
/// A worker is a swift-service-lifecycle `Service`: put it in an application's `ServiceGroup`
/// beside the web server, and the group's graceful shutdown (SIGTERM) becomes ``shutdown()`` —
/// running tasks finish within ``WorkerConfiguration/shutdownTimeout``, unstarted jobs go back to
/// their queue, and ``run()`` returns. Cancelling the task that runs it does the same.
///
/// ```swift
/// let group = ServiceGroup(services: [webServer, worker], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
/// try await group.run()
/// ```
public final class Worker: Service, Sendable {
    /// The settings in force.
    public let configuration: WorkerConfiguration
    /// Where the jobs come from.
    public let source: any JobSource
    /// This worker's id: its held jobs and heartbeat are named after it.
    public let id: String
    private let registry: TaskRegistry
    private let logger: Logger
    private let metricsFactory: (any MetricsFactory)?
    private let lifecycle = Mutex(Lifecycle())

    private struct Lifecycle {
        var stopRequested = false
        /// The stop under way is a restart in place (the source's queues changed), unless
        /// ``shutdown()`` came too.
        var reopenRequested = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        var fatal: (any Error)?
    }

    /// Creates a worker. The diagnostic tasks (`airlock.ping`, `airlock.echo`, `airlock.sleep`,
    /// `airlock.fail`, `airlock.record`) are added unless `registry` already has those names.
    /// - Parameter metricsFactory: where the worker's metrics (``AirlockMetrics``) go; `nil` means
    ///   swift-metrics' bootstrapped factory at the start of each run (a no-op until the
    ///   application bootstraps one).
    public init(
        source: any JobSource, configuration: WorkerConfiguration, registry: TaskRegistry, logger: Logger = Logger(label: "airlock.worker"),
        metricsFactory: (any MetricsFactory)? = nil
    ) {
        self.source = source
        self.metricsFactory = metricsFactory
        self.configuration = configuration
        let host = ProcessInfo.processInfo.hostName
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        self.id = "\(configuration.name ?? host)-\(getpid())-\(suffix)"
        var registry = registry
        registry.registerDiagnostics { token in try await source.recordDiagnostic(token) }
        self.registry = registry
        var logger = logger
        logger[metadataKey: "worker"] = "\(id)"
        self.logger = logger
    }

    /// Asks the worker to stop: fetching stops at once, running tasks get
    /// ``WorkerConfiguration/shutdownTimeout`` to finish, and jobs that never started go back to
    /// the front of their queue. ``run()`` returns when that is done.
    public func shutdown() {
        stop(reopening: false)
    }

    /// The source's queues changed: stop as ``shutdown()`` does, then open the source again and
    /// go on (a partitioned queue's new partitions get their fetch lanes, promoters and sweeps).
    private func reopen() {
        logger.notice("the queues behind this worker's changed (more partitions); restarting in place to consume them all")
        stop(reopening: true)
    }

    private func stop(reopening: Bool) {
        let waiters = lifecycle.withLock { state -> [CheckedContinuation<Void, Never>] in
            // A shutdown wins over a restart, before or after it.
            state.reopenRequested = reopening && (state.reopenRequested || !state.stopRequested)
            state.stopRequested = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Opens the source, then processes jobs until ``shutdown()`` (or cancellation of the calling task).
    /// - Throws: ``WorkerConfigurationError`` for settings that cannot work; the source's error
    ///   when it refuses the worker for good (for Redis: wrong credentials, a missing ACL
    ///   permission), at start or later — never retried in a loop. An unreachable source is waited for.
    public func run() async throws {
        try await withGracefulShutdownHandler {
            while try await runUntilShutdown() {}
        } onGracefulShutdown: { [self] in
            shutdown()
        }
    }

    /// One run, from opening the source to closing it; true when it stopped to restart in place.
    private func runUntilShutdown() async throws -> Bool {
        try configuration.validate()
        let schedules = configuration.runsSchedules ? registry.schedules : []
        if !schedules.isEmpty && !source.supportsSchedules {
            throw WorkerConfigurationError("\(source) cannot run periodic jobs; run the schedules on a worker of an Airlock-protocol Redis queue, or set runsSchedules to false")
        }
        defer { lifecycle.withLock { $0 = Lifecycle() } }   // ready to run again
        let health = SourceHealth(source: source, logger: logger, backoff: configuration.sourceBackoff) { [self] error in
            lifecycle.withLock { $0.fatal = $0.fatal ?? error }
            shutdown()
        }
        guard try await open(health) else { return false }

        // A partitioned queue is consumed as its partitions, each a queue to the engine; their
        // lanes share one rank, so they take turns instead of the first starving the others.
        var expanded: [String] = []
        var lanes: [FetchLane] = []
        var ranks: [Int] = []
        for configured in configuration.queues {
            let partitions = source.partitions(of: configured)
            expanded += partitions
            let shared = (ranks.last ?? -1) + 1
            for partition in partitions {
                for lane in source.lanes(for: partition) {
                    ranks.append(partitions.count > 1 ? shared : (ranks.last ?? -1) + 1)
                    lanes.append(lane)
                }
            }
        }
        let queues = expanded
        let buffer = WorkBuffer(capacity: configuration.concurrency + configuration.prefetch, ranks: ranks)
        let settler = Settler(source: source, health: health, written: { buffer.release($0) })
        let reconciler = Reconciler(source: source, buffer: buffer, settler: settler, logger: logger)
        let metrics = WorkerMetrics(
            factory: metricsFactory ?? MetricsSystem.factory, queues: queues, tasks: registry.names,
            concurrency: configuration.concurrency)
        let runner = JobRunner(
            registry: registry, configuration: configuration, codec: source.codec, followUps: source.followUpExecutor(origin: id),
            logger: logger, metrics: metrics)
        let slots = TaskSlots(buffer: buffer, runner: runner, settler: settler)
        let liveness = Liveness(
            source: source, configuration: configuration, metrics: metrics, held: { buffer.heldCount },
            reaped: { [logger] in Self.giveUpUnstarted(buffer, settler, logger) },
            cancel: { [logger] ids in Self.cancel(ids, buffer, slots, settler, logger) }, queuesChanged: { [self] in reopen() },
            health: health, logger: logger)
        // Recover what crashed workers left behind before taking new work.
        do { try await liveness.reapOnce() } catch { if health.failed("reaper", error) { throw error } }
        logger.notice("worker started", metadata: [
            "queues": "\(queues.map(SafeText.escape).joined(separator: ","))", "concurrency": "\(configuration.concurrency)",
            "prefetch": "\(configuration.prefetch)", "source": "\(source)",
        ])

        await withTaskGroup(of: Void.self) { background in
            background.addTask { await settler.run() }
            background.addTask { await liveness.heartbeat() }
            background.addTask { await liveness.reap() }
            background.addTask { await reconciler.sweepUntilCancelled(queues, every: self.configuration.orphanSweepInterval, health: health) }
            for queue in queues {
                background.addTask { await Promoter(queue: queue, source: self.source, health: health).run() }
            }
            if !schedules.isEmpty {
                background.addTask { await Scheduler(schedules: schedules, source: self.source, health: health, origin: self.id, logger: self.logger).run() }
            }
            await withTaskGroup(of: Void.self) { work in
                for (index, lane) in lanes.enumerated() {
                    let fetcher = Fetcher(
                        laneIndex: index, lane: lane,
                        claimsWhileIdle: Fetcher.claimsWhileIdle(lane: index, ranks: ranks, prefetch: configuration.prefetch),
                        source: source, configuration: configuration,
                        buffer: buffer, health: health, reconciler: reconciler)
                    work.addTask { await fetcher.run() }
                }
                for _ in 0..<configuration.concurrency { work.addTask { await slots.run() } }
                await withTaskCancellationHandler { await waitForShutdownRequest() } onCancel: { shutdown() }
                await stop(buffer: buffer, settler: settler, slots: slots, work: &work)
            }
            await drainSettlements(settler)
            background.cancelAll()
        }
        // Everything this worker held is settled or returned; anything the source still holds for
        // it came from a fetch whose reply was lost, and goes back now. Only a worker that
        // verifiably holds nothing deregisters; otherwise a reaper finishes the job later.
        var clean = buffer.heldCount == 0
        for queue in queues where clean {
            guard let lane = source.lanes(for: queue).first else { continue }
            do { try await reconciler.reconcile(lane, everything: true) } catch { clean = false }
        }
        await source.close(clean: clean)
        if let fatal = lifecycle.withLock({ $0.fatal }) {
            logger.critical("worker stopped: \(SafeText.escape("\(fatal)"))")
            throw fatal
        }
        if lifecycle.withLock({ $0.reopenRequested }) {
            logger.notice("worker stopped to restart in place")
            return true
        }
        logger.notice("worker stopped cleanly")
        return false
    }

    /// Opens the source, waiting for it at start (a daemon may start before Redis does); false
    /// when shut down while waiting. A fatal error is thrown at once.
    private func open(_ health: SourceHealth) async throws -> Bool {
        let registration = WorkerRegistration(
            id: id, queues: configuration.queues, heartbeatTTL: configuration.heartbeatTTL,
            description: [
                "id": id, "host": ProcessInfo.processInfo.hostName, "pid": String(getpid()),
                "queues": configuration.queues.joined(separator: ","), "concurrency": String(configuration.concurrency),
                "started_at": String(epochMilliseconds()), "version": AirlockVersion.current, "protocol": source.codec.name,
            ])
        var failures = 0
        while !lifecycle.withLock({ $0.stopRequested }) && !Task.isCancelled {
            do {
                try await source.open(registration)
                health.recovered("start")
                return true
            } catch {
                if source.classify(error) == .fatal {
                    await source.close(clean: false)
                    throw error
                }
                health.failed("start", error)
                failures += 1
                await health.backoff(attempt: failures)
            }
        }
        // Stopped before the source ever opened: release whatever the attempts left open.
        await source.close(clean: false)
        return false
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
    private func stop(buffer: WorkBuffer, settler: Settler, slots: TaskSlots, work: inout TaskGroup<Void>) async {
        logger.notice("shutting down: no new jobs; waiting for running tasks", metadata: ["timeout": "\(configuration.shutdownTimeout)"])
        buffer.stopFetching()
        let returned = buffer.closeAndTakeUnstarted()
        // Each is pushed onto the consuming end: newest first, so the oldest ends up taken first.
        for job in returned.reversed() { settler.submit(Settlement(job: job.fetched, outcome: .requeue)) }
        if !returned.isEmpty { logger.info("returned unstarted jobs to their queues", metadata: ["jobs": "\(returned.count)"]) }

        // Running tasks get until the deadline; then they are cancelled and their jobs returned.
        let deadline = ContinuousClock.now + configuration.shutdownTimeout
        let timer = Task {
            try? await Task.sleep(until: deadline, clock: .continuous)
            if !Task.isCancelled { slots.expire() }
        }
        while await work.next() != nil {}
        timer.cancel()
        // A fetcher waiting in the source when fetching stopped may have delivered a job since.
        let late = buffer.closeAndTakeUnstarted()
        for job in late.reversed() { settler.submit(Settlement(job: job.fetched, outcome: .requeue)) }
    }

    /// Settlements still owed reach the source now; if it stays away, stop waiting after a while:
    /// what was not settled stays held for a reaper.
    private func drainSettlements(_ settler: Settler) async {
        let drained = await withTaskGroup(of: Bool.self) { race in
            race.addTask { await settler.drain(); return true }
            race.addTask {
                try? await Task.sleep(for: max(self.configuration.shutdownTimeout, .seconds(5)))
                return false
            }
            let first = await race.next() ?? false
            race.cancelAll()
            return first
        }
        if !drained { logger.error("the job source did not take the last settlements; a reaper will recover those jobs") }
    }

    /// An operator cancelled these jobs: those not started are settled as cancelled now, running
    /// ones have their task cancelled (cooperatively: a task that ignores cancellation finishes).
    private static func cancel(_ ids: [String], _ buffer: WorkBuffer, _ slots: TaskSlots, _ settler: Settler, _ logger: Logger) {
        let wanted = Set(ids)
        let matches: (Job) -> Bool = { job in DecodedJob.readableID(of: job.raw).map(wanted.contains) ?? false }
        let unstarted = buffer.takeUnstarted(where: matches)
        for job in unstarted {
            var settlement = Settlement(job: job.fetched, outcome: .cancelled)
            settlement.batch = BatchCount(raw: job.raw)
            settler.submit(settlement)
        }
        let running = buffer.runningTickets(where: matches)
        slots.cancel(tickets: running)
        logger.notice("cancelled jobs at an operator's request", metadata: [
            "jobs": "\(ids.map(SafeText.escape).joined(separator: ","))", "unstarted": "\(unstarted.count)", "running": "\(running.count)",
        ])
    }

    /// A reaped worker's unstarted jobs: each requeue removes the job from what the source holds
    /// for it and returns it only if it is still there, so jobs the reaper returned are skipped and
    /// jobs fetched since go back.
    private static func giveUpUnstarted(_ buffer: WorkBuffer, _ settler: Settler, _ logger: Logger) {
        let unstarted = buffer.takeUnstarted()
        for job in unstarted.reversed() { settler.submit(Settlement(job: job.fetched, outcome: .requeue)) }
        logger.warning("gave up unstarted jobs after being reaped", metadata: ["jobs": "\(unstarted.count)"])
    }
}
