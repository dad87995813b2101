import Airlock
import AirlockRedisClient
public import AirlockWorker

extension RedisJobSource {
    /// One script moves up to ``promotionBatch`` due jobs from the queue's delayed set to the back
    /// of its ready list and answers when the next one is due.
    public func promoteDueJobs(of queue: String) async throws -> Promotion {
        let reply = try await current().control.evalScript(
            Self.promoteScript, keys: [Array(keys.delayed(queue).utf8), Array(homeKey(queue).utf8)],
            args: [Array(String(epochMilliseconds()).utf8), Array(String(Self.promotionBatch).utf8), Self.horizon])
        let parts = try reply.elements()
        guard parts.count == 2 else { throw RedisError.unexpectedReply(reply, expected: "{moved, next due score}") }
        let moved = try parts[0].integer()
        return Promotion(moved: moved, more: moved >= Self.promotionBatch, nextDueAt: try parts[1].optionalBulk().flatMap(Self.dueTime(score:)))
    }

    /// A sorted-set score as a due time in ms. A score is whatever someone ZADDed — `+inf`,
    /// `1e300`, `9223372036854775807`, garbage — so it is saturated, never trapping; `nil` when it
    /// is not a number.
    package static func dueTime(score: [UInt8]) -> Int64? {
        Double(String(decoding: score, as: UTF8.self)).flatMap(Int64.init(saturating:))
    }

    /// `BLPOP` of the queue's wake list on the queue's own listener connection: producers push to
    /// it when they add a delayed job, so a promoter sleeping until a later due time wakes early.
    public func waitForDelayedChange(on queue: String, timeout: Duration) async throws -> Bool {
        let current = try current()
        let client = current.wake[queue] ?? current.control
        return try await !client.send(.blpop([Array(keys.wake(queue).utf8)], timeout: timeout)).isNull
    }

    /// Most jobs one promotion moves.
    static let promotionBatch = 500

    /// The latest score the wire protocol knows (end of year 9999, in ms).
    static let horizon = Array(String(acceptedEpochMilliseconds.upperBound).utf8)

    /// KEYS: delayed, ready. ARGV: now ms, batch, horizon ms. Returns {moved, next due score or false}.
    /// Entries scored beyond the horizon (`+inf`, `1e300`: never due) are promoted too, so the
    /// worker reads them and settles them instead of keeping them forever.
    static let promoteScript = RedisScript("""
        #!lua flags=allow-oom
        local limit = tonumber(ARGV[2])
        local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, limit)
        if #due < limit then
          local absurd = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[3], '+inf', 'LIMIT', 0, limit - #due)
          for _, job in ipairs(absurd) do due[#due + 1] = job end
        end
        for _, job in ipairs(due) do
          redis.call('ZREM', KEYS[1], job)
          redis.call('LPUSH', KEYS[2], job)
        end
        local nextJob = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
        return {#due, nextJob[2] or false}
        """)
}
