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
        var inFlight = 0
        var drainWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let keys: RedisKeys
    private let worker: String
    private let deadLetterCap: Int
    private let client: RedisClient
    private let state = Mutex(State())
    private let doorbell = Doorbell()
    private let connectionState: ConnectionState

    init(client: RedisClient, keys: RedisKeys, worker: String, deadLetterCap: Int, connectionState: ConnectionState) {
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

    /// Returns once everything submitted so far has reached Redis.
    func drain() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state -> Bool in
                if state.pending.isEmpty && state.inFlight == 0 { return true }
                state.drainWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Sends batches until cancelled; cancellation waits for nothing, so call ``drain()`` first.
    func run() async {
        var failures = 0
        while !Task.isCancelled {
            let batch = state.withLock { state -> [Settlement] in
                defer { state.pending.removeAll(keepingCapacity: true) }
                state.inFlight = state.pending.count
                return state.pending
            }
            if batch.isEmpty {
                releaseDrainWaiters()
                await doorbell.wait(until: .now + .seconds(60))
                continue
            }
            do {
                try await send(batch)
                connectionState.recovered("acknowledge")
                failures = 0
                state.withLock { $0.inFlight = 0 }
            } catch {
                // Keep the batch: settlements are idempotent, so it is resent until Redis takes it.
                connectionState.failed("acknowledge", error)
                state.withLock { state in
                    state.pending.insert(contentsOf: batch, at: 0)
                    state.inFlight = 0
                }
                failures += 1
                await ConnectionState.backoff(attempt: failures)
            }
        }
    }

    private func releaseDrainWaiters() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard state.pending.isEmpty && state.inFlight == 0 else { return [] }
            defer { state.drainWaiters.removeAll() }
            return state.drainWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    private func send(_ batch: [Settlement]) async throws(RedisError) {
        var commands = batch.map(command(for:))
        var replies = try await client.pipeline(commands)
        if replies.contains(where: { $0.errorMessage?.hasPrefix("NOSCRIPT") == true }) {
            // Redis lost its script cache (restart, SCRIPT FLUSH): load once and resend; resending is idempotent.
            _ = try await client.send([Array("SCRIPT".utf8), Array("LOAD".utf8), Array(Self.settleScript.source.utf8)])
            commands = batch.map(command(for:))
            replies = try await client.pipeline(commands)
        }
        if let failure = replies.first(where: { $0.errorMessage != nil })?.errorMessage {
            throw RedisError.server(failure)
        }
    }

    private func command(for settlement: Settlement) -> [[UInt8]] {
        let queue = settlement.job.queue
        let mode: String
        var payload: [UInt8] = []
        var score: Int64 = 0
        var target = settlement.job.home
        switch settlement.outcome {
        case .acknowledge: mode = "ack"
        case .expired: mode = "expired"
        case .requeue: mode = "requeue"
        case .postpone(let dueAt):
            mode = "postpone"
            payload = settlement.job.raw
            score = dueAt
            target = keys.delayed(queue)
        case .retry(let envelope, let dueAt):
            mode = "retry"
            payload = envelope
            score = dueAt
            target = keys.delayed(queue)
        case .dead(let entry):
            mode = "dead"
            payload = entry
            target = keys.dead(queue)
        }
        let result = settlement.result
        return [
            Array("EVALSHA".utf8), Array(Self.settleScript.sha1.utf8), Array("5".utf8),
            Array(keys.inflight(queue, worker: worker).utf8), Array(keys.stats(queue).utf8), Array(target.utf8),
            Array(keys.wake(queue).utf8), Array((result?.key ?? keys.stats(queue)).utf8),
            Array(mode.utf8), settlement.job.raw, payload, Array(String(score).utf8), Array(String(deadLetterCap).utf8),
            result?.value ?? [], Array(String(result?.expirySeconds ?? 0).utf8),
        ]
    }

    /// KEYS: in-flight, stats, target (home key | delayed | dead), wake, result key.
    /// ARGV: mode, the job's raw bytes, new payload, due ms, dead-letter cap, result ('' for none), result expiry s.
    /// Returns 1 when settled, 0 when the job was no longer held (already settled, or recovered by a reaper).
    static let settleScript = RedisScript("""
        #!lua
        local mode = ARGV[1]
        if redis.call('LREM', KEYS[1], -1, ARGV[2]) == 0 then return 0 end
        if ARGV[6] ~= '' then
          redis.call('SET', KEYS[5], ARGV[6], 'EX', tonumber(ARGV[7]))
          redis.call('PUBLISH', KEYS[5], ARGV[6])
        end
        if mode == 'ack' then
          redis.call('HINCRBY', KEYS[2], 'processed', 1)
        elseif mode == 'expired' then
          redis.call('HINCRBY', KEYS[2], 'expired', 1)
        elseif mode == 'requeue' then
          redis.call('RPUSH', KEYS[3], ARGV[2])
        elseif mode == 'postpone' then
          redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
          redis.call('LPUSH', KEYS[4], ARGV[4])
          redis.call('LTRIM', KEYS[4], 0, 0)
        elseif mode == 'retry' then
          redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
          redis.call('LPUSH', KEYS[4], ARGV[4])
          redis.call('LTRIM', KEYS[4], 0, 0)
          redis.call('HINCRBY', KEYS[2], 'failed', 1)
          redis.call('HINCRBY', KEYS[2], 'retried', 1)
        elseif mode == 'dead' then
          redis.call('LPUSH', KEYS[3], ARGV[3])
          redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[5]) - 1)
          redis.call('HINCRBY', KEYS[2], 'failed', 1)
          redis.call('HINCRBY', KEYS[2], 'dead', 1)
        end
        return 1
        """)
}
