public import Airlock
public import AirlockRedis
public import AirlockWorker
import Foundation
public import Logging
public import PostgresNIO
public import ServiceLifecycle
import Synchronization

/// A PostgreSQL outbox in front of a Redis executor: a transaction's intents are written to the
/// `airlock_outbox` table inside the transaction, so `COMMIT` makes them durable together with the
/// business rows (and `ROLLBACK` leaves nothing); right after the commit they are sent to Redis
/// (the fast path) and their rows deleted in the background; rows whose fast path did not finish
/// (Redis down, the process killed) are delivered by an ``OutboxRelay``. See `docs/OUTBOX.md`.
///
/// ```swift
/// let outbox = Outbox(executor: redisExecutor, postgres: postgres)
/// try await Airlock.transaction(on: postgres, outbox: .using(outbox)) { connection in
///     let id = try await insertOrder(on: connection)
///     try Airlock.enqueue(SendOrderConfirmation(orderID: id))   // a row in airlock_outbox, committed with the order
/// }
/// ```
///
/// Run the outbox itself as a `Service` (it deletes delivered rows off the requests' path); while
/// it is not running, delivered rows stay and the relay deletes them (it finds them already
/// queued: the hand-off is deduplicated by job id).
public final class Outbox: Service, Sendable, CustomStringConvertible {
    /// Encodes the envelopes the rows hold and sends them (its namespace is the rows' namespace).
    public let executor: RedisExecutor
    /// Where delivered rows are deleted from (the transactions themselves run on their own connections).
    public let postgres: PostgresClient
    /// After the fast path failed, how long it is skipped (rows go straight to the relay), so a
    /// Redis outage never makes every request wait for a connection attempt.
    public let fastPathCooldown: Duration
    let logger: Logger
    private let deletions: DeletionQueue
    private let skipFastPathUntil = Mutex<ContinuousClock.Instant?>(nil)

    /// An outbox for `executor`'s namespace.
    /// - Parameters:
    ///   - executor: the Redis executor whose envelopes (default queue, origin, payload limit) the
    ///     rows hold and through which the fast path sends them.
    ///   - postgres: a running pool, for the background deletes.
    ///   - maxPendingDeletes: delivered rows waiting to be deleted, at most; past it (the outbox is
    ///     not running, or PostgreSQL is slow) rows are left for the relay.
    ///   - fastPathCooldown: after a fast-path failure, how long commits skip the fast path.
    ///   - logger: where fast-path failures are reported.
    public init(executor: RedisExecutor, postgres: PostgresClient, maxPendingDeletes: Int = 100_000,
                fastPathCooldown: Duration = .seconds(1), logger: Logger = Logger(label: "airlock.outbox")) {
        self.executor = executor
        self.postgres = postgres
        self.fastPathCooldown = fastPathCooldown
        self.logger = logger
        self.deletions = DeletionQueue(capacity: max(1, maxPendingDeletes))
    }

    /// The Redis namespace the rows are for (a relay delivers one namespace's rows).
    public var namespace: String { executor.keys.namespace }

    /// `Outbox(namespace: …)`.
    public var description: String { "Outbox(namespace: \(namespace))" }

    /// Rows delivered by the fast path whose deletion has not run yet.
    public var pendingDeletes: Int { deletions.count }

    // MARK: Write-through

    /// Encodes `intents` as the executor would and inserts them, in one statement, on
    /// `connection` — inside the caller's transaction, before its `COMMIT`.
    /// - Throws: ``OutboxError`` (`.unsendableIntent` when an intent cannot become a job, `.writeFailed`
    ///   when the INSERT failed, `.notMigrated` when the table is missing); the transaction should
    ///   then be rolled back.
    public func write(_ intents: [Intent], on connection: PostgresConnection, logger: Logger? = nil) async throws(OutboxError) -> OutboxBatch {
        guard !intents.isEmpty else { return OutboxBatch(intents: [], jobs: [], rowIDs: []) }
        let now = Date()
        var jobs: [OutgoingJob] = []
        jobs.reserveCapacity(intents.count)
        for intent in intents {
            do {
                jobs.append(try executor.job(for: intent, now: now))
            } catch {
                throw OutboxError(.unsendableIntent, "\(error.description); the transaction is rolled back so its data never commits without this side effect")
            }
        }
        var ids: [Int64] = []
        ids.reserveCapacity(jobs.count)
        do {
            for try await id in try await connection.execute(InsertOutboxRows(namespace: namespace, jobs: jobs), logger: logger ?? self.logger) {
                ids.append(id)
            }
        } catch {
            throw OutboxError.postgres(error, doing: "writing \(jobs.count) row(s) to the outbox")
        }
        return OutboxBatch(intents: intents, jobs: jobs, rowIDs: ids)
    }

    // MARK: Fast path

    /// Sends a committed batch to Redis now, deduplicated by job id, and schedules its rows'
    /// deletion. Never throws: when Redis does not take the batch the rows stay for the relay
    /// (logged as a warning), which is what the outbox is for; for ``fastPathCooldown`` afterwards
    /// batches are not even tried.
    /// - Returns: whether Redis took the batch (queued, or already there).
    @discardableResult
    public func deliver(_ batch: OutboxBatch) async -> Bool {
        guard !batch.jobs.isEmpty else { return true }
        let now = ContinuousClock.now
        if let until = skipFastPathUntil.withLock({ $0 }), now < until { return false }
        do {
            _ = try await executor.enqueue(jobs: batch.jobs, deduplicatingByJobID: true)
        } catch {
            skipFastPathUntil.withLock { $0 = ContinuousClock.now + fastPathCooldown }
            logger.warning("outbox: Redis did not take committed intents; they stay in the outbox and a relay delivers them", metadata: [
                "intents": "\(batch.jobs.count)", "error": "\(error)", "namespace": "\(SafeText.escape(namespace))",
            ])
            return false
        }
        skipFastPathUntil.withLock { $0 = nil }
        if !deletions.schedule(batch.rowIDs) {
            logger.debug("outbox: delete queue full; delivered rows left for the relay", metadata: ["rows": "\(batch.rowIDs.count)"])
        }
        return true
    }

    // MARK: Background deletes

    /// Deletes delivered rows in batches until graceful shutdown (or cancellation), then deletes
    /// what is still queued and returns.
    public func run() async throws {
        deletions.reopen()
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await deleteUntilStopped()
            } onCancel: { [deletions] in
                deletions.stop()
            }
        } onGracefulShutdown: { [deletions] in
            deletions.stop()
        }
    }

    /// Deletes rows whose deletion is queued, at most `limit` per statement, until the queue is
    /// empty: for code that runs no ``run()`` (a test, a short script).
    public func deletePending(limit: Int = 5_000) async {
        while true {
            let ids = deletions.take(max: limit)
            guard !ids.isEmpty else { return }
            await delete(ids)
        }
    }

    private func deleteUntilStopped() async {
        while true {
            // Ids queued while a DELETE runs go into the next one: batches grow with the load.
            let ids = await deletions.next(max: 5_000)
            guard !ids.isEmpty else { return }
            await delete(ids)
        }
    }

    private func delete(_ ids: [Int64]) async {
        do {
            try await postgres.withConnection { connection in
                _ = try await connection.execute(DeleteOutboxRows(ids: ids), logger: logger)
            }
        } catch {
            // Harmless: the relay finds these rows already queued (deduplicated) and deletes them.
            logger.warning("outbox: deleting delivered rows failed; the relay will", metadata: ["rows": "\(ids.count)", "error": "\(String(reflecting: error))"])
        }
    }
}

/// Intents written to the outbox in one transaction: what the fast path sends after the commit.
public struct OutboxBatch: Sendable {
    /// The intents, in order.
    public let intents: [Intent]
    /// Their jobs, as written in the rows (the same envelope bytes go to Redis).
    public let jobs: [OutgoingJob]
    /// The rows' ids in `airlock_outbox`.
    public let rowIDs: [Int64]
}

/// Row ids waiting for the background delete; bounded.
final class DeletionQueue: Sendable {
    private struct State {
        var ids: [Int64] = []
        var waiter: CheckedContinuation<Void, Never>?
        var stopping = false
    }
    private let state = Mutex(State())
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    var count: Int { state.withLock { $0.ids.count } }

    /// Queues `ids`; `false` (nothing queued) when that would pass the capacity.
    func schedule(_ ids: [Int64]) -> Bool {
        guard !ids.isEmpty else { return true }
        let (accepted, waiter) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            guard state.ids.count + ids.count <= capacity else { return (false, nil) }
            state.ids.append(contentsOf: ids)
            defer { state.waiter = nil }
            return (true, state.waiter)
        }
        waiter?.resume()
        return accepted
    }

    /// Up to `max` queued ids, without waiting.
    func take(max: Int) -> [Int64] {
        state.withLock { state in
            let count = min(max, state.ids.count)
            defer { state.ids.removeFirst(count) }
            return Array(state.ids.prefix(count))
        }
    }

    /// Waits for ids; empty once stopped with nothing left.
    func next(max: Int) async -> [Int64] {
        while true {
            let taken = state.withLock { state -> [Int64]? in
                guard state.ids.isEmpty else {
                    let count = min(max, state.ids.count)
                    defer { state.ids.removeFirst(count) }
                    return Array(state.ids.prefix(count))
                }
                return state.stopping ? [] : nil
            }
            if let taken { return taken }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    guard state.ids.isEmpty && !state.stopping else { return true }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        }
    }

    func stop() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.stopping = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    func reopen() { state.withLock { $0.stopping = false } }
}
