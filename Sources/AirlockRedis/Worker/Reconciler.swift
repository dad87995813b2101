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
                           metadata: ["queue": "\(route.queue)", "jobs": "\(returned)"])
        }
        return returned
    }

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
