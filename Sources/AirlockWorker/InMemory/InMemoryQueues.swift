public import Airlock
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// A queue back end in memory: ready, delayed, held and dead jobs per queue, workers and their
/// heartbeats — the same model `docs/PROTOCOL.md` describes for Redis, held in one process.
///
/// It runs the whole worker engine without a server: give each ``Worker`` its own
/// ``makeSource(codec:)``, produce with ``executor(defaultQueue:origin:)`` (or ``push(_:to:)``
/// for raw messages), and read the outcome back. For the engine's own tests and for an
/// application's unit tests of its tasks:
///
/// ```swift
/// let queues = InMemoryQueues()
/// try await Airlock.scope(executor: queues.executor()) { try Airlock.enqueue(SendConfirmationEmail(orderID: 42)) }
/// let worker = Worker(source: queues.makeSource(), configuration: WorkerConfiguration(), registry: tasks)
/// ```
///
/// Every operation is atomic (one lock), as the Redis scripts are.
public final class InMemoryQueues: Sendable {
    struct Queue {
        /// Ready jobs, the next to run first.
        var ready: [[UInt8]] = []
        /// Delayed jobs with their due times (ms), in no particular order.
        var delayed: [(dueAt: Int64, raw: [UInt8])] = []
        /// Dead letters, newest first.
        var dead: [[UInt8]] = []
        var paused = false
        var counters: [String: Int] = [:]
        var idempotency: [String: String] = [:]
    }

    struct Registration {
        var expiresAt: ContinuousClock.Instant
        var queues: [String]
        var description: [String: String]
        var held: Int
    }

    struct State {
        var queues: [String: Queue] = [:]
        /// Jobs each worker holds, per queue.
        var held: [String: [String: [[UInt8]]]] = [:]
        var workers: [String: Registration] = [:]
        /// Workers a reaper gave up for dead, until their next heartbeat learns it.
        var reaped: Set<String> = []
        var results: [String: [UInt8]] = [:]
        var recorded: [String] = []
        /// Each schedule's last recorded tick (ms), by schedule name.
        var lastTicks: [String: Int64] = [:]
        /// Job ids each worker was asked to cancel, until its next heartbeat takes them.
        var cancelRequests: [String: [String]] = [:]
        /// Bumped by every change to ready jobs, per queue, for waiters.
        var readyChanged = Set<String>()
    }

    let state = Mutex(State())
    let signals = InMemorySignals()
    /// Entries kept in each queue's dead letters.
    public let deadLetterCap: Int

    /// An empty back end.
    public init(deadLetterCap: Int = 10_000) {
        self.deadLetterCap = deadLetterCap
    }

    /// A job source for one worker over these queues.
    public func makeSource(codec: any WireCodec = .native) -> InMemoryJobSource {
        InMemoryJobSource(queues: self, codec: codec)
    }

    /// An executor that writes envelopes onto these queues, all or nothing per flush, as
    /// `RedisExecutor` does (same envelopes, same placement, same idempotency).
    public func executor(defaultQueue: String = "default", origin: String? = nil, maxPayloadBytes: Int = 512 * 1024) -> InMemoryExecutor {
        InMemoryExecutor(queues: self, defaultQueue: defaultQueue, origin: origin, maxPayloadBytes: maxPayloadBytes)
    }

    // MARK: Producing

    /// The last tick recorded for the periodic job `schedule`, if any.
    public func lastTick(of schedule: String) -> Int64? { state.withLock { $0.lastTicks[schedule] } }

    /// Pushes a raw message to the back of `queue`'s ready jobs, as a producer in another language would.
    public func push(_ raw: [UInt8], to queue: String) {
        state.withLock { $0.queues[queue, default: Queue()].ready.append(raw) }
        signals.ring(ready: queue)
    }

    /// Adds a raw message to `queue`'s delayed jobs, due at `dueAt` (ms).
    public func delay(_ raw: [UInt8], to queue: String, dueAt: Int64) {
        state.withLock { $0.queues[queue, default: Queue()].delayed.append((dueAt, raw)) }
        signals.ring(delayed: queue)
    }

    /// Writes `jobs` atomically; returns, per job, the id of an earlier job that used its
    /// idempotency key (then nothing was written for it), or `nil`.
    func write(_ jobs: [OutgoingJob]) -> [String?] {
        let outcome = state.withLock { state -> [String?] in
            jobs.map { job in
                if let key = job.idempotencyKey {
                    if let existing = state.queues[job.queue]?.idempotency[key] { return existing }
                    state.queues[job.queue, default: Queue()].idempotency[key] = job.id
                }
                switch job.placement {
                case .back: state.queues[job.queue, default: Queue()].ready.append(job.bytes)
                case .front: state.queues[job.queue, default: Queue()].ready.insert(job.bytes, at: 0)
                case .delayed: state.queues[job.queue, default: Queue()].delayed.append((job.dueAt, job.bytes))
                }
                return nil
            }
        }
        for job in jobs { job.placement == .delayed ? signals.ring(delayed: job.queue) : signals.ring(ready: job.queue) }
        return outcome
    }

    // MARK: Operating

    /// Stops workers taking `queue`'s jobs (jobs already taken finish).
    public func pause(_ queue: String) { state.withLock { $0.queues[queue, default: Queue()].paused = true } }

    /// Lets workers take `queue`'s jobs again.
    public func resume(_ queue: String) {
        state.withLock { $0.queues[queue, default: Queue()].paused = false }
        signals.ring(ready: queue)
    }

    /// Cancels the job with id `jobID` as `airlock-workerd cancel` does on Redis: a ready or
    /// delayed job is removed (counted cancelled); a held one is cancelled by its worker after
    /// its next heartbeat. Returns where it was: `ready`, `delayed`, `held by <worker>`, or `nil`.
    @discardableResult
    public func cancel(jobID: String) -> String? {
        state.withLock { state -> String? in
            let matches: ([UInt8]) -> Bool = { DecodedJob.readableID(of: $0) == jobID }
            for (name, var queue) in state.queues {
                if let index = queue.ready.firstIndex(where: matches) {
                    queue.ready.remove(at: index)
                    queue.counters["cancelled", default: 0] += 1
                    state.queues[name] = queue
                    return "ready"
                }
                if let index = queue.delayed.firstIndex(where: { matches($0.raw) }) {
                    queue.delayed.remove(at: index)
                    queue.counters["cancelled", default: 0] += 1
                    state.queues[name] = queue
                    return "delayed"
                }
            }
            for (worker, held) in state.held where held.values.contains(where: { $0.contains(where: matches) }) {
                state.cancelRequests[worker, default: []].append(jobID)
                return "held by \(worker)"
            }
            return nil
        }
    }

    /// Makes `worker` look dead, as a crash would: its heartbeat expires now, and the next
    /// reaper pass of any other worker returns its jobs.
    public func expireHeartbeat(of worker: String) {
        state.withLock { $0.workers[worker]?.expiresAt = .now - .seconds(1) }
    }

    // MARK: Reading

    /// `queue`'s ready jobs, the next to run first.
    public func ready(_ queue: String) -> [[UInt8]] { state.withLock { $0.queues[queue]?.ready ?? [] } }

    /// `queue`'s delayed jobs with their due times, earliest first.
    public func delayed(_ queue: String) -> [(dueAt: Int64, raw: [UInt8])] {
        state.withLock { ($0.queues[queue]?.delayed ?? []).sorted { $0.dueAt < $1.dueAt } }
    }

    /// `queue`'s dead letters, newest first.
    public func dead(_ queue: String) -> [[UInt8]] { state.withLock { $0.queues[queue]?.dead ?? [] } }

    /// The jobs `worker` holds for `queue`, newest first.
    public func held(by worker: String, in queue: String) -> [[UInt8]] { state.withLock { $0.held[worker]?[queue] ?? [] } }

    /// Every job held by any worker.
    public var heldCount: Int { state.withLock { $0.held.values.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.count } } } }

    /// `queue`'s counters: processed, failed, retried, dead, expired.
    public func counters(_ queue: String) -> [String: Int] { state.withLock { $0.queues[queue]?.counters ?? [:] } }

    /// Registered workers' ids.
    public var workers: [String] { state.withLock { $0.workers.keys.sorted() } }

    /// The stored result under `key` (results a codec asked for).
    public func result(_ key: String) -> [UInt8]? { state.withLock { $0.results[key] } }

    /// What `airlock.record` recorded, oldest first.
    public var recorded: [String] { state.withLock { $0.recorded } }
}

/// Dispatches intents onto ``InMemoryQueues``: one atomic write per flush.
public struct InMemoryExecutor: Executor {
    let queues: InMemoryQueues
    let defaultQueue: String
    let origin: String?
    let maxPayloadBytes: Int

    /// All of `intents` or none; an intent that cannot become a job fails the flush before anything is written.
    public func dispatch(_ intents: [Intent]) async throws {
        let now = Date()
        var jobs: [OutgoingJob] = []
        let trace = TraceContext.current()
        for intent in intents {
            do {
                jobs.append(try OutgoingJob(intent: intent, now: now, defaultQueue: defaultQueue, origin: origin, maxBytes: maxPayloadBytes, trace: trace))
            } catch {
                throw DispatchError(dispatched: [], notDispatched: intents, underlying: error)
            }
        }
        _ = queues.write(jobs)
    }
}

/// Wakes the tasks waiting for a queue's ready or delayed jobs to change.
final class InMemorySignals: Sendable {
    private struct Waiter {
        let key: String
        let continuation: CheckedContinuation<Void, Never>
    }
    private let waiters = Mutex<[Int: Waiter]>([:])
    private let nextID = Atomic<Int>(0)

    func ring(ready queue: String) { ring("ready:" + queue) }
    func ring(delayed queue: String) { ring("delayed:" + queue) }

    private func ring(_ key: String) {
        let woken = waiters.withLock { waiters -> [CheckedContinuation<Void, Never>] in
            let matching = waiters.filter { $0.value.key == key }
            for id in matching.keys { waiters[id] = nil }
            return matching.values.map(\.continuation)
        }
        for continuation in woken { continuation.resume() }
    }

    /// Returns when `key` rings, when `timeout` passes, or when the task is cancelled; true when it rang.
    func wait(_ key: String, timeout: Duration) async -> Bool {
        let id = nextID.add(1, ordering: .relaxed).newValue
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        let cancelled = self.waiters.withLock { waiters -> Bool in
                            if Task.isCancelled { return true }
                            waiters[id] = Waiter(key: key, continuation: continuation)
                            return false
                        }
                        if cancelled { continuation.resume() }
                    }
                } onCancel: {
                    self.waiters.withLock { $0.removeValue(forKey: id) }?.continuation.resume()
                }
                return !Task.isCancelled
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }
}
