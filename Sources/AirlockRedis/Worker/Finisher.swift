import Logging
import Synchronization

/// Settles finished jobs in Redis: acknowledge, schedule a retry, dead-letter, drop as expired,
/// or return to the queue. Batches whatever accumulated while the previous batch was in flight
/// into one pipelined round trip.
///
/// Each settlement removes the job from the in-flight list first and does nothing else when it
/// is no longer there (a reaper already returned it), so resending after a lost reply is safe.
final class Finisher: Sendable {
    /// What to do with a job that left a task slot.
    enum Outcome: Sendable {
        /// Succeeded.
        case acknowledge
        /// Failed; run `envelope` again at `dueAt` (ms).
        case retry(envelope: [UInt8], dueAt: Int64)
        /// Failed for good; keep `entry` in the dead letter.
        case dead(entry: [UInt8])
        /// Not started before it expired.
        case expired
        /// Never started; back to the front of its queue.
        case requeue
        /// Not due yet (a producer put a future `eta` on a ready job): wait in the delayed set.
        case postpone(dueAt: Int64)
    }

    struct Settlement: Sendable {
        let job: Job
        var outcome: Outcome
        /// A result to store with the settlement (Celery protocol), written only if the job was still held.
        var result: StoredResult?
        /// The job still occupies a worker slot, freed once this settlement reached Redis.
        var holdsSlot = false

        /// Whether the task succeeded.
        var succeeded: Bool {
            if case .acknowledge = outcome { true } else { false }
        }
    }

    /// A task result in the form Celery's Redis result backend keeps it.
    struct StoredResult: Sendable {
        let key: String
        let value: [UInt8]
        let expirySeconds: Int
    }

    private struct State {
        var pending: [Settlement] = []
        /// The batch being written now.
        var sending: [Settlement] = []
        var drainWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }

    private let keys: RedisKeys
    private let worker: String
    private let deadLetterCap: Int
    private let client: RedisClient
    private let state = Mutex(State())
    private let doorbell = Doorbell()
    private let connectionState: ConnectionState

    /// Called with the number of slot-holding settlements each time a batch reached Redis.
    private let written: @Sendable (Int) -> Void

    init(
        client: RedisClient, keys: RedisKeys, worker: String, deadLetterCap: Int, connectionState: ConnectionState,
        written: @escaping @Sendable (Int) -> Void
    ) {
        self.written = written
        self.client = client
        self.keys = keys
        self.worker = worker
        self.deadLetterCap = deadLetterCap
        self.connectionState = connectionState
    }

    /// Queues a settlement; it reaches Redis with the next batch.
    func submit(_ settlement: Settlement) {
        state.withLock { $0.pending.append(settlement) }
        doorbell.ring()
    }

    /// The jobs of `queue` whose settlement has not reached Redis yet: they still sit, legitimately,
    /// in this worker's in-flight list.
    func unsettledJobs(queue: String) -> [[UInt8]] {
        state.withLock { state in
            (state.sending + state.pending).filter { $0.job.queue == queue }.map(\.job.raw)
        }
    }

    /// Returns once everything submitted so far has reached Redis, or when the task is cancelled.
    func drain() async {
        let id = state.withLock { state -> Int in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let done = state.withLock { state -> Bool in
                    if (state.pending.isEmpty && state.sending.isEmpty) || Task.isCancelled { return true }
                    state.drainWaiters[id] = continuation
                    return false
                }
                if done { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.drainWaiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Sends batches until cancelled; cancellation waits for nothing, so call ``drain()`` first.
    func run() async {
        var failures = 0
        while !Task.isCancelled {
            let batch = state.withLock { state -> [Settlement] in
                defer { state.pending.removeAll(keepingCapacity: true) }
                state.sending = state.pending
                return state.pending
            }
            if batch.isEmpty {
                releaseDrainWaiters()
                await doorbell.wait(until: .now + .seconds(60))
                continue
            }
            do {
                try await send(batch)
                written(batch.reduce(0) { $0 + ($1.holdsSlot ? 1 : 0) })
                connectionState.recovered("acknowledge")
                failures = 0
                state.withLock { $0.sending = [] }
            } catch {
                // Keep the batch: settlements are idempotent, so it is resent until Redis takes it.
                connectionState.failed("acknowledge", error)
                state.withLock { state in
                    state.pending.insert(contentsOf: batch, at: 0)
                    state.sending = []
                }
                failures += 1
                await connectionState.backoff(attempt: failures)
            }
        }
    }

    private func releaseDrainWaiters() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard state.pending.isEmpty && state.sending.isEmpty else { return [] }
            defer { state.drainWaiters.removeAll() }
            return Array(state.drainWaiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    private func send(_ batch: [Settlement]) async throws(RedisError) {
        var commands = commands(for: batch)
        var replies = try await client.pipeline(commands)
        if replies.contains(where: { $0.errorMessage?.hasPrefix("NOSCRIPT") == true }) {
            // Redis lost its script cache (restart, SCRIPT FLUSH): load once and resend; resending is idempotent.
            _ = try await client.send([Array("SCRIPT".utf8), Array("LOAD".utf8), Array(Self.settleScript.source.utf8)])
            commands = self.commands(for: batch)
            replies = try await client.pipeline(commands)
        }
        if let failure = replies.first(where: { $0.errorMessage != nil })?.errorMessage {
            throw RedisError.server(failure)
        }
    }

    /// One script call per queue (and at most ``maxPerCall`` jobs), in submission order.
    static let maxPerCall = 256

    private func commands(for batch: [Settlement]) -> [[[UInt8]]] {
        var groups: [(queue: String, home: String, items: [Settlement])] = []
        for settlement in batch {
            let job = settlement.job
            if let last = groups.indices.last, groups[last].queue == job.queue, groups[last].home == job.home,
                groups[last].items.count < Self.maxPerCall
            {
                groups[last].items.append(settlement)
            } else {
                groups.append((job.queue, job.home, [settlement]))
            }
        }
        return groups.map { command(queue: $0.queue, home: $0.home, settlements: $0.items) }
    }

    private func command(queue: String, home: String, settlements: [Settlement]) -> [[UInt8]] {
        var scriptKeys: [[UInt8]] = [
            Array(keys.inflight(queue, worker: worker).utf8), Array(keys.stats(queue).utf8), Array(home.utf8),
            Array(keys.delayed(queue).utf8), Array(keys.dead(queue).utf8), Array(keys.wake(queue).utf8),
        ]
        var args: [[UInt8]] = [Array(String(deadLetterCap).utf8)]
        args.reserveCapacity(1 + settlements.count * 7)
        for settlement in settlements {
            let mode: StaticString
            var payload: [UInt8] = []
            var score: Int64 = 0
            switch settlement.outcome {
            case .acknowledge: mode = "ack"
            case .expired: mode = "expired"
            case .requeue: mode = "requeue"
            case .postpone(let dueAt):
                mode = "postpone"
                score = dueAt
            case .retry(let envelope, let dueAt):
                mode = "retry"
                payload = envelope
                score = dueAt
            case .dead(let entry):
                mode = "dead"
                payload = entry
            }
            var resultIndex = 0
            if let result = settlement.result {
                scriptKeys.append(Array(result.key.utf8))
                resultIndex = scriptKeys.count
            }
            args.append(Array(UnsafeBufferPointer(start: mode.utf8Start, count: mode.utf8CodeUnitCount)))
            args.append(settlement.job.raw)
            args.append(payload)
            args.append(score == 0 ? [UInt8(ascii: "0")] : Array(String(score).utf8))
            args.append(resultIndex == 0 ? [UInt8(ascii: "0")] : Array(String(resultIndex).utf8))
            args.append(settlement.result?.value ?? [])
            args.append(Array(String(settlement.result?.expirySeconds ?? 0).utf8))
        }
        return [Array("EVALSHA".utf8), Array(Self.settleScript.sha1.utf8), Array(String(scriptKeys.count).utf8)] + scriptKeys + args
    }

    /// Settles a batch of one queue's jobs.
    /// KEYS: in-flight, stats, home (ready) key, delayed, dead, wake, then result keys.
    /// ARGV: dead-letter cap, then per job: mode, the job's raw bytes, new payload, due ms,
    /// result key index in KEYS (0 for none), result, result expiry s.
    /// A job no longer in the in-flight list (already settled, or recovered by a reaper) is skipped.
    /// Returns how many were settled.
    static let settleScript = RedisScript("""
        #!lua flags=allow-oom
        local inflight, stats, home, delayed, dead, wake = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
        local counts = {processed = 0, failed = 0, retried = 0, dead = 0, expired = 0}
        local settled, wakeScore, trimDead = 0, false, false
        for i = 2, #ARGV, 7 do
          local mode, raw, payload, score = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
          if redis.call('LREM', inflight, -1, raw) == 1 then
            settled = settled + 1
            local resultIndex = tonumber(ARGV[i + 4])
            if resultIndex > 0 then
              redis.call('SET', KEYS[resultIndex], ARGV[i + 5], 'EX', tonumber(ARGV[i + 6]))
              redis.call('PUBLISH', KEYS[resultIndex], ARGV[i + 5])
            end
            if mode == 'ack' then
              counts.processed = counts.processed + 1
            elseif mode == 'expired' then
              counts.expired = counts.expired + 1
            elseif mode == 'requeue' then
              redis.call('RPUSH', home, raw)
            elseif mode == 'postpone' then
              redis.call('ZADD', delayed, score, raw)
              wakeScore = score
            elseif mode == 'retry' then
              redis.call('ZADD', delayed, score, payload)
              counts.failed = counts.failed + 1
              counts.retried = counts.retried + 1
              wakeScore = score
            elseif mode == 'dead' then
              redis.call('LPUSH', dead, payload)
              counts.failed = counts.failed + 1
              counts.dead = counts.dead + 1
              trimDead = true
            end
          end
        end
        if trimDead then redis.call('LTRIM', dead, 0, tonumber(ARGV[1]) - 1) end
        if wakeScore then
          redis.call('LPUSH', wake, wakeScore)
          redis.call('LTRIM', wake, 0, 0)
        end
        for field, n in pairs(counts) do
          if n > 0 then redis.call('HINCRBY', stats, field, n) end
        end
        return settled
        """)
}
