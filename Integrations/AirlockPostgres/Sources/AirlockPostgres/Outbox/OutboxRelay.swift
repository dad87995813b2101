public import Airlock
public import AirlockRedis
import AirlockRedisClient
import AirlockWorker
import Foundation
public import Logging
public import PostgresNIO
public import ServiceLifecycle
import Synchronization

/// Delivers the outbox rows whose fast path did not finish — Redis was down, slow, or the process
/// died between `COMMIT` and the send — and deletes them: a `Service`, embedded in an application's
/// `ServiceGroup` or run by `airlock-outbox relay`.
///
/// Each pass claims a batch of one namespace's rows older than the grace period with
/// `SELECT … FOR UPDATE SKIP LOCKED` (so several relays share the work without waiting for each
/// other), sends them to Redis in one atomic script, deduplicated by job id (so a row the fast path
/// already delivered is not queued twice), and deletes them in the transaction that claimed them.
/// It wakes on `NOTIFY airlock_outbox` (the table's insert trigger) and on a timer, backs off while
/// Redis is down, and parks the rows Redis refuses for their content — or that are too old for the
/// deduplication window to protect — with the error, so they never block the others. When a full
/// batch shows a backlog it refreshes the table's statistics (`ANALYZE`, at most every
/// `analyzeInterval`), since plans made while the table was empty sort and scan a backlog.
///
/// Graceful shutdown finishes the batch in hand and returns.
public final class OutboxRelay: Service, Sendable, CustomStringConvertible {
    /// How a relay paces itself.
    public struct Configuration: Sendable {
        /// Rows claimed per pass (one Redis script, one DELETE).
        public var batchSize: Int = 1_000
        /// Rows younger than this are left to their fast path.
        public var gracePeriod: Duration = .seconds(2)
        /// How often the relay looks when no `NOTIFY` arrives.
        public var pollInterval: Duration = .seconds(1)
        /// How often the relay publishes the outbox's depth to Redis (for `airlock-workerd stats`).
        public var reportInterval: Duration = .seconds(5)
        /// A row older than the deduplication window (the executor's `idempotencyTTL`) minus this
        /// margin is parked instead of sent: Redis may have forgotten that it was delivered.
        public var deduplicationMargin: Duration = .seconds(3_600)
        /// Spacing of retries while Redis or PostgreSQL fails.
        public var backoff: Backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(5))
        /// Whether to `LISTEN` for the insert trigger's `NOTIFY` (one pooled connection held).
        public var listens: Bool = true
        /// The shortest time between two `ANALYZE airlock_outbox` runs of this relay, which it runs
        /// when a full batch shows a backlog: the table is mostly empty, so PostgreSQL's statistics
        /// (and the plans cached from them) describe an empty table when an outage fills it, and the
        /// claim then sorts the whole backlog and the DELETE scans it, per batch, until autovacuum
        /// analyzes it (a minute or more later). `nil` leaves the statistics to autovacuum.
        public var analyzeInterval: Duration? = .seconds(300)

        /// The defaults: batches of 1000, 2 s grace, 1 s poll, reports every 5 s, a 1 h margin.
        public init() {}
    }

    /// Where rows go (its namespace selects the rows; its `idempotencyTTL` is the deduplication window).
    public let executor: RedisExecutor
    /// Where the outbox table is.
    public let postgres: PostgresClient
    /// The pacing.
    public let configuration: Configuration
    /// This relay's id in its reports (`<host>-<pid>-<random>`).
    public let id: String
    private let logger: Logger
    private let doorbell = Doorbell()
    private let stopping = Flag()
    private let counters = Mutex(Counters())

    private struct Counters {
        var delivered = 0
        var parked = 0
        var lastError: String?
    }

    /// A relay for `executor`'s namespace.
    /// - Throws: ``OutboxError`` (`.invalidConfiguration`) for settings that cannot work.
    public init(executor: RedisExecutor, postgres: PostgresClient, configuration: Configuration = Configuration(),
                logger: Logger = Logger(label: "airlock.outbox.relay")) throws(OutboxError) {
        guard configuration.batchSize >= 1 else { throw OutboxError(.invalidConfiguration, "batchSize must be at least 1") }
        guard configuration.deduplicationMargin >= .zero, configuration.deduplicationMargin < executor.idempotencyTTL else {
            throw OutboxError(.invalidConfiguration,
                "the deduplication margin (\(configuration.deduplicationMargin)) must be shorter than the executor's idempotencyTTL "
                    + "(\(executor.idempotencyTTL)), the deduplication window; lengthen the TTL or shorten the margin")
        }
        guard configuration.gracePeriod >= .zero, configuration.pollInterval > .zero, configuration.reportInterval > .zero else {
            throw OutboxError(.invalidConfiguration, "gracePeriod must not be negative, pollInterval and reportInterval must be positive")
        }
        self.executor = executor
        self.postgres = postgres
        self.configuration = configuration
        self.id = "\(ProcessInfo.processInfo.hostName)-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        var logger = logger
        logger[metadataKey: "relay"] = "\(id)"
        self.logger = logger
    }

    /// `OutboxRelay(<id>, namespace: …)`.
    public var description: String { "OutboxRelay(\(id), namespace: \(executor.keys.namespace))" }

    /// Rows this relay delivered (queued, or found already queued) since it was created.
    public var delivered: Int { counters.withLock { $0.delivered } }
    /// Rows this relay parked since it was created.
    public var parked: Int { counters.withLock { $0.parked } }

    /// Delivers until graceful shutdown or cancellation; the batch in hand is finished first.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withTaskGroup(of: Void.self) { group in
                    if configuration.listens { group.addTask { await self.listen() } }
                    await deliverUntilStopped()
                    group.cancelAll()
                }
            } onCancel: {
                stop()
            }
        } onGracefulShutdown: {
            self.stop()
        }
    }

    private func stop() {
        stopping.set()
        doorbell.ring()
    }

    // MARK: The loop

    /// What one pass did.
    enum Pass: Equatable {
        /// Claimed `count` rows (delivered or parked); a full batch means more may wait.
        case handled(count: Int, full: Bool)
        /// Redis did not take the batch: back off.
        case redisFailed
    }

    private func deliverUntilStopped() async {
        var failures = 0
        var nextReport = ContinuousClock.now
        var lastAnalyze: ContinuousClock.Instant?
        while !stopping.isSet {
            var pass: Pass?
            do {
                pass = try await deliverOnce()
            } catch {
                counters.withLock { $0.lastError = error.description }
                logger.warning("outbox relay: PostgreSQL failed; retrying", metadata: ["error": "\(error)"])
            }
            if ContinuousClock.now >= nextReport {
                await report()
                nextReport = ContinuousClock.now + configuration.reportInterval
            }
            switch pass {
            case .handled(_, full: true)?:
                failures = 0
                if let interval = configuration.analyzeInterval, lastAnalyze.map({ ContinuousClock.now - $0 >= interval }) ?? true {
                    lastAnalyze = ContinuousClock.now
                    await analyze()
                }
                continue
            case .handled?:
                failures = 0
                // A NOTIFY means rows were just committed: their fast path gets the grace period first.
                if await doorbell.wait(upTo: configuration.pollInterval), !stopping.isSet {
                    await pause(configuration.gracePeriod)
                }
            case .redisFailed?, nil:
                failures += 1
                await pause(configuration.backoff.delay(attempt: failures))
            }
        }
    }

    /// Refreshes the table's statistics, so the claim walks its index in order and the DELETE
    /// looks rows up by id instead of sorting or scanning the backlog (measured on a 100k-row
    /// backlog: ~500 ms per 1000-row batch before, a few ms after). `SKIP_LOCKED` returns at once
    /// when autovacuum or another relay is analyzing it; a role that does not own the table gets a
    /// warning, not an error: then autovacuum's statistics are the only ones.
    private func analyze() async {
        do {
            try await postgres.withConnection { connection in
                _ = try await connection.query("ANALYZE (SKIP_LOCKED) airlock_outbox", logger: logger)
            }
        } catch {
            logger.debug("outbox relay: ANALYZE failed; autovacuum's statistics remain", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    /// Sleeps `duration`, ending early only for shutdown (notifications do not shorten a backoff).
    private func pause(_ duration: Duration) async {
        let end = ContinuousClock.now + duration
        while !stopping.isSet, ContinuousClock.now < end {
            await doorbell.wait(upTo: end - ContinuousClock.now)
        }
    }

    /// One claim → send → delete transaction.
    func deliverOnce() async throws(OutboxError) -> Pass {
        do {
            return try await postgres.withConnection { connection in
                try await connection.query("BEGIN", logger: logger)
                do {
                    let pass = try await deliver(on: connection)
                    try await connection.query("COMMIT", logger: logger)
                    return pass
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                    throw error
                }
            }
        } catch let error as OutboxError {
            throw error
        } catch {
            throw OutboxError.postgres(error, doing: "claiming and deleting outbox rows")
        }
    }

    private func deliver(on connection: PostgresConnection) async throws -> Pass {
        let namespace = executor.keys.namespace
        var rows: [ClaimedRow] = []
        let claim = ClaimOutboxRows(namespace: namespace, graceMilliseconds: configuration.gracePeriod.wholeMilliseconds,
                                    limit: Int64(configuration.batchSize))
        for try await row in try await connection.execute(claim, logger: logger) { rows.append(row) }
        guard !rows.isEmpty else { return .handled(count: 0, full: false) }

        let maxAge = (executor.idempotencyTTL - configuration.deduplicationMargin).wholeMilliseconds
        var parked: [(id: Int64, error: String)] = []
        var sendable: [(row: ClaimedRow, job: OutgoingJob)] = []
        for row in rows {
            if row.ageMilliseconds >= maxAge {
                parked.append((row.id, "older than the deduplication window (\(executor.idempotencyTTL) minus a \(configuration.deduplicationMargin) margin): "
                    + "Redis may no longer remember that it was delivered, so sending it could queue it twice; "
                    + "`airlock-outbox parked retry \(row.id)` sends it anyway"))
            } else {
                switch Self.job(for: row, maxBytes: executor.maxPayloadBytes) {
                case .success(let job): sendable.append((row, job))
                case .failure(let problem): parked.append((row.id, problem.description))
                }
            }
        }

        var delivered: [Int64] = []
        var failed: [Int64] = []
        var failure: String?
        if !sendable.isEmpty {
            do {
                _ = try await executor.enqueue(jobs: sendable.map(\.job), deduplicatingByJobID: true)
                delivered = sendable.map(\.row.id)
            } catch where Self.refusesContent(error) {
                // Somewhere in the batch Redis refuses a row for what it is (a queue's key holds
                // another type): send queue by queue, then row by row in the refusing queues.
                let outcome = await isolate(sendable)
                delivered = outcome.delivered
                parked += outcome.parked
                failed = outcome.failed
                failure = outcome.failure
            } catch {
                failed = sendable.map(\.row.id)
                failure = error.description
            }
        }

        if !delivered.isEmpty { _ = try await connection.execute(DeleteOutboxRows(ids: delivered), logger: logger) }
        if !parked.isEmpty {
            _ = try await connection.execute(ParkOutboxRows(ids: parked.map(\.id), errors: parked.map(\.error)), logger: logger)
            for row in parked {
                logger.error("outbox relay: row parked", metadata: ["row": "\(row.id)", "error": "\(SafeText.escape(row.error))"])
            }
        }
        if !failed.isEmpty, let failure {
            _ = try await connection.execute(RecordOutboxFailure(ids: failed, error: failure), logger: logger)
        }
        counters.withLock { counters in
            counters.delivered += delivered.count
            counters.parked += parked.count
            counters.lastError = failure
        }
        if let failure, delivered.isEmpty, parked.isEmpty {
            logger.warning("outbox relay: Redis did not take the batch; backing off", metadata: ["rows": "\(failed.count)", "error": "\(failure)"])
            return .redisFailed
        }
        return .handled(count: rows.count, full: rows.count == configuration.batchSize && failed.isEmpty)
    }

    /// Sends `rows` per queue, then row by row within a queue Redis refuses, so only the refused rows are parked.
    private func isolate(_ rows: [(row: ClaimedRow, job: OutgoingJob)]) async
        -> (delivered: [Int64], parked: [(id: Int64, error: String)], failed: [Int64], failure: String?)
    {
        var delivered: [Int64] = []
        var parked: [(id: Int64, error: String)] = []
        var failed: [Int64] = []
        var failure: String?
        var order: [String] = []
        var byQueue: [String: [(row: ClaimedRow, job: OutgoingJob)]] = [:]
        for entry in rows {
            if byQueue[entry.job.queue] == nil { order.append(entry.job.queue) }
            byQueue[entry.job.queue, default: []].append(entry)
        }
        for queue in order {
            let group = byQueue[queue] ?? []
            do {
                _ = try await executor.enqueue(jobs: group.map(\.job), deduplicatingByJobID: true)
                delivered += group.map(\.row.id)
                continue
            } catch where Self.refusesContent(error) {
                // fall through to one row at a time
            } catch {
                failed += group.map(\.row.id)
                failure = error.description
                continue
            }
            for entry in group {
                do {
                    _ = try await executor.enqueue(jobs: [entry.job], deduplicatingByJobID: true)
                    delivered.append(entry.row.id)
                } catch where Self.refusesContent(error) {
                    parked.append((entry.row.id, "Redis refused it: \(error.description)"))
                } catch {
                    failed.append(entry.row.id)
                    failure = error.description
                }
            }
        }
        return (delivered, parked, failed, failure)
    }

    /// Whether Redis (or the executor's own checks) refused a batch for what it holds rather
    /// than for its own state: only then are rows parked. Out of memory, read-only replicas,
    /// missing replicas, ACL and connection failures are outages, waited out.
    static func refusesContent(_ error: RedisExecutorError) -> Bool {
        if error.kind == .payloadTooLarge || error.kind == .invalidIntent { return true }
        guard error.kind == .notWritten, let redis = error.redisError, redis.kind == .server else { return false }
        return redis.serverErrorCode == "WRONGTYPE"
    }

    /// What makes a row unsendable: a malformed envelope, one that disagrees with its row, an
    /// invalid queue or placement, an envelope over the payload limit.
    static func job(for row: ClaimedRow, maxBytes: Int) -> Result<OutgoingJob, RowProblem> {
        guard let placement = OutboxPlacement.placement(row.placement) else {
            return .failure(RowProblem("placement \(row.placement) is not 0, 1 or 2"))
        }
        let job = OutgoingJob(id: row.jobID, queue: row.queue, placement: placement, dueAt: row.dueAt,
                              idempotencyKey: row.idempotencyKey, bytes: row.envelope)
        if let problem = job.problem(maxBytes: maxBytes) { return .failure(RowProblem(problem)) }
        let envelope: Envelope
        do {
            envelope = try Envelope.decode(row.envelope)
        } catch {
            return .failure(RowProblem("the envelope is not valid: \(error.description)"))
        }
        guard envelope.id == row.jobID, envelope.queue == row.queue else {
            return .failure(RowProblem("the envelope's id or queue (\(envelope.id), \(envelope.queue)) differs from the row's (\(row.jobID), \(row.queue))"))
        }
        return .success(job)
    }

    struct RowProblem: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    // MARK: Notifications and reports

    /// Rings the doorbell on every `NOTIFY airlock_outbox`; reconnects with backoff until stopped.
    private func listen() async {
        var failures = 0
        while !stopping.isSet, !Task.isCancelled {
            do {
                try await postgres.withConnection { connection in
                    try await connection.listen(on: OutboxSchema.channel) { notifications in
                        failures = 0
                        for try await _ in notifications { doorbell.ring() }
                    }
                }
            } catch {
                if stopping.isSet || Task.isCancelled { return }
                failures += 1
                logger.debug("outbox relay: LISTEN failed; the timer still polls", metadata: ["error": "\(String(reflecting: error))"])
            }
            if stopping.isSet || Task.isCancelled { return }
            try? await Task.sleep(for: configuration.backoff.delay(attempt: max(1, failures)))
        }
    }

    /// Publishes the outbox's depth for `airlock-workerd stats`; a failure only logs (the report is
    /// a view, and its TTL makes a silent relay show as not reporting).
    private func report() async {
        do {
            let status = try await OutboxAdmin(postgres: postgres, namespace: executor.keys.namespace, logger: logger).status()
            let (delivered, lastError) = counters.withLock { ($0.delivered, $0.lastError) }
            let report = OutboxRelayReport(
                relayID: id, pending: status.pending, oldestPendingAgeMilliseconds: status.oldestPendingAgeMilliseconds,
                parked: status.parked, delivered: delivered, lastError: lastError, reportedAtMilliseconds: epochMilliseconds())
            try await report.publish(on: executor.client, keys: executor.keys, ttl: configuration.reportInterval * 3)
        } catch {
            logger.debug("outbox relay: report not published", metadata: ["error": "\(error)"])
        }
    }
}
