public import Airlock
import AirlockWorker
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// Jobs tracked together: counts of pending, succeeded, dead and cancelled jobs, and callback jobs
/// queued exactly once when the last job settles.
///
/// ```swift
/// let batch = Batch(onSuccess: Batch.callback(ReportReady(reportID: id)),
///                   onComplete: Batch.callback(NotifyOwner(reportID: id)))
/// try await executor.batch(batch) {
///     for page in pages { try Airlock.enqueue(RenderPage(reportID: id, page: page)) }
/// }
/// ```
///
/// Everything the scope lets through becomes the batch, written with the batch's record in the
/// same script as the jobs (all or nothing). Jobs a batch's task enqueues join the batch before
/// that task's job settles, so the batch completes only after its follow-ups. A job's *final*
/// outcome counts once per job id: succeeded, dead (failed for good, unreadable or unknown),
/// cancelled (cancelled or expired); retries do not count. The count that leaves nothing pending
/// queues `onComplete`, and `onSuccess` too if every job succeeded, and the record then expires
/// after ``retention``. A batch with no jobs completes as soon as it is written.
///
/// The record and both callbacks live in the batch's ``queue`` (see `docs/PROTOCOL.md`); a
/// callback naming another queue is refused before anything is sent. The jobs may be on any
/// queues: on a Redis Cluster, jobs in other hash slots than the record are written through the
/// cross-slot commit record and counted through their queues' tallies, all or nothing all the same.
public struct Batch: Sendable {
    /// The batch id (`airlock-workerd batches ID`); known before the batch is written, so a
    /// callback's arguments can name it.
    public let id: String
    /// Where the record and the callbacks live: the callbacks' queue if one names it, else the
    /// executor's default queue.
    public var queue: String?
    /// Queued once when the last job settles, if every job succeeded.
    public var onSuccess: Intent?
    /// Queued once when the last job settles, whatever the outcomes.
    public var onComplete: Intent?
    /// Shown to operators (escaped).
    public var description: String
    /// How long the record stays readable after completion.
    public var retention: Duration
    /// How long a record that never completes (its jobs purged by hand) stays before it expires.
    public var openExpiry: Duration

    /// A batch with a fresh id.
    public init(
        id: String? = nil, queue: String? = nil, onSuccess: Intent? = nil, onComplete: Intent? = nil, description: String = "",
        retention: Duration = .seconds(24 * 3600), openExpiry: Duration = .seconds(30 * 24 * 3600)
    ) {
        self.id = id ?? UUID().uuidString.lowercased()
        self.queue = queue
        self.onSuccess = onSuccess
        self.onComplete = onComplete
        self.description = description
        self.retention = retention
        self.openExpiry = openExpiry
    }

    /// A callback intent for a typed task (its default options merged with `options`).
    public static func callback<T: AirlockTask>(_ task: T, options: DispatchOptions = DispatchOptions()) -> Intent {
        Intent(taskName: T.name, payload: .typed(task), options: T.defaultOptions.merged(with: options))
    }
}

extension RedisExecutor {
    /// Runs `body` in a scope whose dispatched intents form `batch` (see ``Batch``). The scope's
    /// flush writes the jobs and the batch's record in one script (on a Cluster, jobs in other
    /// slots than the record through the commit record); a scope that lets nothing through still
    /// writes the batch, which completes at once.
    /// - Throws: the body's error (nothing written), ``DispatchError`` when the flush failed.
    @discardableResult
    public func batch<R>(
        _ batch: Batch, policy: (any Policy)? = nil, isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> R
    ) async throws -> R {
        let executor = BatchExecutor(base: self, batch: batch)
        let result = try await Airlock.scope(policy: policy, executor: executor, isolation: isolation, body)
        if !executor.dispatched { try await executor.dispatch([]) }
        return result
    }

    /// Writes `intents` as jobs of `batch`, opening it if it is not recorded yet, else adding them
    /// to it (only while it still has pending jobs: a completed batch's callbacks have run).
    public func enqueue(_ intents: [Intent], in batch: Batch) async throws -> [Outcome] {
        try await enqueue(intents, batch: .open(batch))
    }
}

/// The executor of a batch's scope: every flush goes into the batch.
final class BatchExecutor: Executor {
    let base: RedisExecutor
    let batch: Batch
    private let flushed = Atomic<Bool>(false)

    init(base: RedisExecutor, batch: Batch) {
        self.base = base
        self.batch = batch
    }

    /// Whether a flush reached ``dispatch(_:)``.
    var dispatched: Bool { flushed.load(ordering: .acquiring) }

    func dispatch(_ intents: [Intent]) async throws {
        flushed.store(true, ordering: .releasing)
        _ = try await base.enqueue(intents, batch: .open(batch))
    }
}
