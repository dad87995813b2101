import Airlock
import Logging

/// Puts back what Redis says this worker holds but the worker does not know about.
///
/// A fetch whose reply was lost (Redis restarted after applying it, a timeout) leaves jobs in
/// this worker's in-flight list that no task slot will ever run, and a reaper will not touch
/// them while this worker's heartbeat lives. After such a failure the fetcher compares the
/// in-flight list with the jobs the worker holds or has yet to settle, and returns the rest to
/// the front of their queue. A job fetched concurrently by another fetcher of the same queue
/// (the Celery protocol's priority sub-keys) may be returned too, and then run twice: at least
/// once is kept, exactly once is not promised.
struct Reconciler: Sendable {
    let keys: RedisKeys
    let worker: String
    let buffer: WorkBuffer
    let finisher: Finisher
    let logger: Logger

    /// Returns the in-flight jobs of `route` that this worker does not hold; `everything`
    /// returns them all (at shutdown, when the worker holds nothing any more).
    @discardableResult
    func reconcile(_ route: QueueRoute, using client: RedisClient, everything: Bool = false) async throws(RedisError) -> Int {
        let legitimate = everything ? [] : buffer.heldJobs(queue: route.queue) + finisher.unsettledJobs(queue: route.queue)
        let reply = try await client.evalScript(
            Self.reconcileScript,
            keys: [Array(keys.inflight(route.queue, worker: worker).utf8), Array(route.homeKey.utf8)],
            args: legitimate)
        let returned = reply.int ?? 0
        if returned > 0 {
            logger.warning("returned in-flight jobs this worker did not hold (a fetch reply was lost)",
                           metadata: ["queue": "\(SafeText.escape(route.queue))", "jobs": "\(returned)"])
        }
        return returned
    }

    /// Returns the in-flight jobs of `route` that this worker did not hold at the previous sweep
    /// either, and remembers the ones it does not hold now for the next. Returns how many went back.
    ///
    /// A fetch whose request Redis ran late — after this worker had already reconnected and
    /// reconciled (a partition during which the kernel kept retransmitting it) — leaves jobs in the
    /// in-flight list that nothing will ever run. A job legitimately taken is delivered to the
    /// buffer within one command timeout of the move, so a job seen unheld at two sweeps at least
    /// ``WorkerConfiguration/orphanSweepInterval`` apart is stranded, never in transit.
    func sweep(_ route: QueueRoute, using client: RedisClient, suspects: inout [[UInt8]: Int]) async throws(RedisError) -> Int {
        // The list first, then what the worker holds: a job delivered in between counts as held.
        let listed = try await client.send([Array("LRANGE".utf8), Array(keys.inflight(route.queue, worker: worker).utf8), Array("0".utf8), Array("-1".utf8)])
        var unheld: [[UInt8]: Int] = [:]
        for item in (listed.array ?? []).compactMap(\.bytes) { unheld[item, default: 0] += 1 }
        for item in buffer.heldJobs(queue: route.queue) + finisher.unsettledJobs(queue: route.queue) {
            if let count = unheld[item] { unheld[item] = count > 1 ? count - 1 : nil }
        }
        var stranded: [[UInt8]] = []
        for (item, count) in unheld {
            stranded += Array(repeating: item, count: min(count, suspects[item] ?? 0))
        }
        suspects = unheld
        guard !stranded.isEmpty else { return 0 }
        let reply = try await client.evalScript(
            Self.returnScript, keys: [Array(keys.inflight(route.queue, worker: worker).utf8), Array(route.homeKey.utf8)], args: stranded)
        let returned = reply.int ?? 0
        for item in stranded { suspects[item] = nil }
        if returned > 0 {
            logger.warning("returned stranded in-flight jobs (a fetch ran on Redis after its connection had failed)",
                           metadata: ["queue": "\(SafeText.escape(route.queue))", "jobs": "\(returned)"])
        }
        return returned
    }

    /// Sweeps every route each `interval` until cancelled.
    func sweepUntilCancelled(_ routes: [QueueRoute], using client: RedisClient, every interval: Duration, connectionState: ConnectionState) async {
        var suspects = [String: [[UInt8]: Int]]()
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            for route in routes where !Task.isCancelled {
                do {
                    _ = try await sweep(route, using: client, suspects: &suspects[route.queue, default: [:]])
                    connectionState.recovered("sweep")
                } catch {
                    suspects[route.queue] = nil
                    if connectionState.failed("sweep", error) { return }
                }
            }
        }
    }

    /// KEYS: in-flight list, home key. ARGV: jobs to return. Each that is still in the in-flight
    /// list moves to the consuming end of the home key. Returns how many moved.
    static let returnScript = RedisScript("""
        #!lua flags=allow-oom
        local moved = 0
        for i = 1, #ARGV do
          if redis.call('LREM', KEYS[1], 1, ARGV[i]) == 1 then
            redis.call('RPUSH', KEYS[2], ARGV[i])
            moved = moved + 1
          end
        end
        return moved
        """)

    /// KEYS: in-flight list, home key. ARGV: the raw jobs the worker holds (with repeats).
    /// Moves every other in-flight job to the consuming end of the home key, oldest ending nearest it.
    static let reconcileScript = RedisScript("""
        #!lua flags=allow-oom
        local held = {}
        for i = 1, #ARGV do held[ARGV[i]] = (held[ARGV[i]] or 0) + 1 end
        local items = redis.call('LRANGE', KEYS[1], 0, -1)
        local moved = 0
        for i = 1, #items do
          local job = items[i]
          if (held[job] or 0) > 0 then
            held[job] = held[job] - 1
          else
            redis.call('LREM', KEYS[1], 1, job)
            redis.call('RPUSH', KEYS[2], job)
            moved = moved + 1
          end
        end
        return moved
        """)
}
