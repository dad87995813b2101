public import Airlock
import Synchronization

/// One worker's view of ``InMemoryQueues``: a ``JobSource`` with the semantics of the Redis one —
/// taking a job records it as held in the same step, settling a job no longer held does nothing,
/// a worker whose heartbeat expired has its jobs returned by another worker's reaper and learns
/// it at its next heartbeat.
public final class InMemoryJobSource: JobSource, CustomStringConvertible {
    /// The back end.
    public let queues: InMemoryQueues
    /// How messages are read and written.
    public let codec: any WireCodec
    private let registration = Mutex<WorkerRegistration?>(nil)

    init(queues: InMemoryQueues, codec: any WireCodec) {
        self.queues = queues
        self.codec = codec
    }

    /// `memory`.
    public var name: String { "memory" }
    /// `in-memory queues`.
    public var description: String { "in-memory queues" }

    private var worker: String { registration.withLock { $0?.id ?? "" } }

    /// Registers the worker.
    public func open(_ worker: WorkerRegistration) async throws {
        registration.withLock { $0 = worker }
        queues.state.withLock { state in
            state.workers[worker.id] = .init(expiresAt: .now + worker.heartbeatTTL, queues: worker.queues, description: worker.description, held: 0)
        }
    }

    /// One lane per queue.
    public func lanes(for queue: String) -> [FetchLane] { [FetchLane(queue: queue, name: queue)] }

    /// Moves up to `maximum` ready jobs into this worker's held jobs.
    public func take(_ maximum: Int, from lane: FetchLane) async throws -> TakeResult {
        let worker = self.worker
        return queues.state.withLock { state in
            guard state.queues[lane.queue]?.paused != true else { return .paused }
            let count = min(maximum, state.queues[lane.queue]?.ready.count ?? 0)
            guard count > 0 else { return .jobs([]) }
            let taken = Array(state.queues[lane.queue]!.ready.prefix(count))
            state.queues[lane.queue]!.ready.removeFirst(count)
            state.held[worker, default: [:]][lane.queue, default: []].insert(contentsOf: taken.reversed(), at: 0)
            return .jobs(taken.map { FetchedJob(queue: lane.queue, raw: $0) })
        }
    }

    /// Waits for ready jobs (woken by producers), taking one with `claimOne`.
    public func waitForJobs(on lane: FetchLane, timeout: Duration, claimOne: Bool) async throws -> [FetchedJob] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let hasWork = queues.state.withLock { !($0.queues[lane.queue]?.ready.isEmpty ?? true) && $0.queues[lane.queue]?.paused != true }
            if hasWork {
                guard claimOne else { return [] }
                if case .jobs(let jobs) = try await take(1, from: lane), !jobs.isEmpty { return jobs }
            }
            let remaining = deadline - .now
            guard remaining > .zero, !Task.isCancelled else { return [] }
            _ = await queues.signals.wait("ready:" + lane.queue, timeout: remaining)
        }
    }

    /// Applies each settlement whose job this worker still holds.
    public func settle(_ settlements: [Settlement]) async throws {
        let worker = self.worker
        let cap = queues.deadLetterCap
        var rangReady = Set<String>(), rangDelayed = Set<String>()
        queues.state.withLock { state in
            for settlement in settlements {
                let queue = settlement.job.queue
                guard Self.removeOne(settlement.job.raw, from: &state.held[worker, default: [:]][queue, default: []]) else { continue }
                if let result = settlement.result { state.results[result.key] = result.value }
                var entry = state.queues[queue, default: InMemoryQueues.Queue()]
                switch settlement.outcome {
                case .acknowledge: entry.counters["processed", default: 0] += 1
                case .expired: entry.counters["expired", default: 0] += 1
                case .cancelled: entry.counters["cancelled", default: 0] += 1
                case .requeue:
                    entry.ready.insert(settlement.job.raw, at: 0)
                    rangReady.insert(queue)
                case .postpone(let dueAt):
                    entry.delayed.append((dueAt, settlement.job.raw))
                    rangDelayed.insert(queue)
                case .retry(let message, let dueAt):
                    entry.delayed.append((dueAt, message))
                    entry.counters["failed", default: 0] += 1
                    entry.counters["retried", default: 0] += 1
                    rangDelayed.insert(queue)
                case .dead(let deadEntry):
                    entry.dead.insert(deadEntry, at: 0)
                    if entry.dead.count > cap { entry.dead.removeLast(entry.dead.count - cap) }
                    entry.counters["failed", default: 0] += 1
                    entry.counters["dead", default: 0] += 1
                }
                state.queues[queue] = entry
            }
        }
        for queue in rangReady { queues.signals.ring(ready: queue) }
        for queue in rangDelayed { queues.signals.ring(delayed: queue) }
    }

    /// Renews the registration; `.reaped` once after a reaper gave this worker up for dead.
    public func heartbeat(held: Int) async throws -> HeartbeatResult {
        guard let registration = registration.withLock({ $0 }) else { return .alive }
        return queues.state.withLock { state in
            let reaped = state.reaped.remove(registration.id) != nil
            state.workers[registration.id] = .init(
                expiresAt: .now + registration.heartbeatTTL, queues: registration.queues, description: registration.description, held: held)
            return reaped ? .reaped : .alive
        }
    }

    /// The cancellations ``InMemoryQueues/cancel(jobID:)`` asked of this worker.
    public func takeCancellations() async throws -> [String] {
        let worker = self.worker
        return queues.state.withLock { $0.cancelRequests.removeValue(forKey: worker) ?? [] }
    }

    /// Returns the held jobs of workers whose heartbeat expired to the front of their queues.
    public func recoverAbandonedJobs() async throws -> Int {
        let me = worker
        let (recovered, touched) = queues.state.withLock { state -> (Int, Set<String>) in
            var recovered = 0
            var touched = Set<String>()
            for (id, registration) in state.workers where id != me && registration.expiresAt < .now {
                for (queue, jobs) in state.held[id] ?? [:] where !jobs.isEmpty {
                    // Oldest taken ends nearest the consuming end, as the Redis reaper leaves them.
                    state.queues[queue, default: InMemoryQueues.Queue()].ready.insert(contentsOf: jobs.reversed(), at: 0)
                    recovered += jobs.count
                    touched.insert(queue)
                }
                state.held[id] = nil
                state.workers[id] = nil
                state.reaped.insert(id)
            }
            return (recovered, touched)
        }
        for queue in touched { queues.signals.ring(ready: queue) }
        return recovered
    }

    /// Moves due delayed jobs (up to 500) to the back of the ready jobs.
    public func promoteDueJobs(of queue: String) async throws -> Promotion {
        let now = epochMilliseconds()
        let promotion = queues.state.withLock { state -> Promotion in
            guard var entry = state.queues[queue] else { return Promotion(moved: 0, more: false, nextDueAt: nil) }
            entry.delayed.sort { $0.dueAt < $1.dueAt }
            // Beyond year 9999 counts as due: such a job is read, and settled, rather than kept forever.
            let due = entry.delayed.filter { $0.dueAt <= now || $0.dueAt > acceptedEpochMilliseconds.upperBound }.prefix(500)
            let moved = Array(due)
            entry.delayed.removeAll { item in moved.contains { $0.raw == item.raw && $0.dueAt == item.dueAt } }
            entry.ready.append(contentsOf: moved.map(\.raw))
            state.queues[queue] = entry
            return Promotion(moved: moved.count, more: moved.count == 500, nextDueAt: entry.delayed.first?.dueAt)
        }
        if promotion.moved > 0 { queues.signals.ring(ready: queue) }
        return promotion
    }

    /// Waits for a producer to add a delayed job to `queue`.
    public func waitForDelayedChange(on queue: String, timeout: Duration) async throws -> Bool {
        await queues.signals.wait("delayed:" + queue, timeout: timeout)
    }

    /// The jobs this worker holds for `queue`.
    public func heldJobs(of queue: String) async throws -> [[UInt8]] {
        queues.held(by: worker, in: queue)
    }

    /// Returns every held job of the lane's queue except `keeping`.
    public func returnJobs(of lane: FetchLane, keeping: [[UInt8]]) async throws -> Int {
        let worker = self.worker
        var keep: [[UInt8]: Int] = [:]
        for job in keeping { keep[job, default: 0] += 1 }
        let moved = queues.state.withLock { state -> Int in
            let held = state.held[worker]?[lane.queue] ?? []
            var stays: [[UInt8]] = []
            var returned: [[UInt8]] = []
            for job in held {
                if let count = keep[job], count > 0 {
                    keep[job] = count - 1
                    stays.append(job)
                } else {
                    returned.append(job)
                }
            }
            state.held[worker, default: [:]][lane.queue] = stays
            state.queues[lane.queue, default: InMemoryQueues.Queue()].ready.insert(contentsOf: returned.reversed(), at: 0)
            return returned.count
        }
        if moved > 0 { queues.signals.ring(ready: lane.queue) }
        return moved
    }

    /// Returns each of `jobs` still held for `queue` to its front.
    public func returnJobs(_ jobs: [[UInt8]], of queue: String) async throws -> Int {
        let worker = self.worker
        let moved = queues.state.withLock { state -> Int in
            var moved = 0
            for job in jobs where Self.removeOne(job, from: &state.held[worker, default: [:]][queue, default: []]) {
                state.queues[queue, default: InMemoryQueues.Queue()].ready.insert(job, at: 0)
                moved += 1
            }
            return moved
        }
        if moved > 0 { queues.signals.ring(ready: queue) }
        return moved
    }

    /// Writes follow-up intents onto the same queues.
    public func followUpExecutor(origin: String) -> any Executor {
        queues.executor(defaultQueue: registration.withLock { $0?.queues.first } ?? "default", origin: origin)
    }

    /// Appends to ``InMemoryQueues/recorded``.
    public func recordDiagnostic(_ token: String) async throws {
        queues.state.withLock { $0.recorded.append(token) }
    }

    /// Periodic jobs run here.
    public var supportsSchedules: Bool { true }

    /// The claim under the back end's one lock, as the Redis script does it.
    public func claimTicks(_ claim: TickClaim) async throws -> TickClaimResult {
        let result = queues.state.withLock { state -> TickClaimResult in
            guard let last = state.lastTicks[claim.schedule] else {
                if let start = claim.initialize { state.lastTicks[claim.schedule] = start }
                return TickClaimResult(last: claim.initialize, enqueued: 0)
            }
            let fresh = claim.jobs.filter { $0.tick > last }
            state.queues[claim.queue, default: .init()].ready.append(contentsOf: fresh.map(\.message))
            let recorded = max(last, claim.advanceTo ?? last)
            state.lastTicks[claim.schedule] = recorded
            return TickClaimResult(last: recorded, enqueued: fresh.count)
        }
        if result.enqueued > 0 { queues.signals.ring(ready: claim.queue) }
        return result
    }

    /// Deregisters after a clean stop.
    public func close(clean: Bool) async {
        guard clean else { return }
        let worker = self.worker
        queues.state.withLock { state in
            state.workers[worker] = nil
            state.held[worker] = nil
        }
    }

    /// Removes one occurrence of `job` (the oldest taken, at the end) from `list`.
    private static func removeOne(_ job: [UInt8], from list: inout [[UInt8]]) -> Bool {
        guard let index = list.lastIndex(of: job) else { return false }
        list.remove(at: index)
        return true
    }
}
