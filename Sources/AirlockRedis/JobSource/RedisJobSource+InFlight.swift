import Airlock
import AirlockRedisClient
public import AirlockWorker

extension RedisJobSource {
    /// `LRANGE` of the worker's in-flight list for `queue`.
    public func heldJobs(of queue: String) async throws -> [[UInt8]] {
        let current = try current()
        return try await current.control.send(RedisCommand("LRANGE", inflightKey(queue, current), 0, -1)).bulks()
    }

    /// One script, on the lane's own connection — so a request still in transit on its failed
    /// connection is killed (the reconnect's `CLIENT KILL ID`) before the list is read.
    public func returnJobs(of lane: FetchLane, keeping: [[UInt8]]) async throws -> Int {
        let current = try current()
        return try await client(for: lane, in: current).evalScript(
            Self.reconcileScript, keys: [inflightKey(lane.queue, current), Array(homeKey(lane.queue).utf8)], args: keeping
        ).integer()
    }

    /// One script: each job still in the in-flight list moves to the consuming end of its queue.
    public func returnJobs(_ jobs: [[UInt8]], of queue: String) async throws -> Int {
        let current = try current()
        return try await current.control.evalScript(
            Self.returnScript, keys: [inflightKey(queue, current), Array(homeKey(queue).utf8)], args: jobs
        ).integer()
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

    /// KEYS: in-flight list, home key. ARGV: jobs to return. Each that is still in the in-flight
    /// list moves to the consuming end of the home key. Returns how many moved.
    static let returnScript = RedisScript("""
        #!lua flags=allow-oom
        local moved = 0
        for i = 1, #ARGV do
          if redis.call('LREM', KEYS[1], '1', ARGV[i]) == 1 then
            redis.call('RPUSH', KEYS[2], ARGV[i])
            moved = moved + 1
          end
        end
        return moved
        """)
}

extension RedisJobSource {
    /// One script per queue (pipelined): the ids in `<ns>:{Q}:cancel:<worker>`, and the set deleted
    /// in the same step so a request added meanwhile is not lost.
    public func takeCancellations() async throws -> [String] {
        let current = try current()
        let calls = current.worker.queues.map { queue in
            Self.takeCancellationsScript.call(keys: [Array(keys.cancelRequests(queue, worker: current.worker.id).utf8)], arguments: [])
        }
        var ids: [String] = []
        for reply in try await current.control.evaluate(calls) { ids += try reply.throwingServerError().strings() }
        return ids
    }

    /// KEYS: the cancel requests. Returns their ids and deletes them.
    static let takeCancellationsScript = RedisScript("""
        #!lua
        local ids = redis.call('SMEMBERS', KEYS[1])
        if #ids > 0 then redis.call('DEL', KEYS[1]) end
        return ids
        """)
}
