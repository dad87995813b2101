import AirlockRedisClient
import AirlockWorker

/// The Lua steps that count a batch job's final outcome, shared by the settle script, the cancel
/// script (an operator removing a queued job of a batch), the fold of cross-slot tallies
/// (`BatchTallies.swift`) and the seal of a cross-slot batch flush.
enum BatchCounting {
    /// Defines `completeBatch(record, counted, ready, now)` and
    /// `countInBatch(record, counted, ready, ids, field, now)` for a list of job ids with one
    /// outcome (`now`: ms, the caller's clock — no `TIME` call, which an ACL user might lack
    /// halfway through a script). Only ids not counted before count (`SADD` says how many are
    /// new): `field` (succeeded, dead or cancelled) goes up and `pending` down by that many, a
    /// constant number of commands however many ids. The count that leaves nothing pending calls
    /// `completeBatch`: it pushes onComplete (and onSuccess if every job succeeded) onto the batch
    /// queue's ready list, stamps `completed_at` and sets the record's expiry. A record that is
    /// missing or not a hash counts nothing (it expired, or the job's bytes name no batch of ours).
    static let function = """
        local function completeBatch(batch, counted, ready, now)
          local r = redis.call('HMGET', batch, 'total', 'succeeded', 'on_success', 'on_complete', 'retention_s')
          local function push(envelope)
            if not envelope or envelope == '' then return end
            -- pcall: a broken batch queue must not abort the settlement of other jobs.
            local ok = redis.pcall('LPUSH', ready, envelope)
            if type(ok) == 'table' and ok.err then redis.call('HSET', batch, 'callback_error', ok.err) end
          end
          if tonumber(r[2]) == tonumber(r[1]) then push(r[3]) end
          push(r[4])
          redis.call('HSET', batch, 'completed_at', now)
          local keep = tonumber(r[5]) or 86400
          redis.call('EXPIRE', batch, keep)
          redis.call('EXPIRE', counted, keep)
        end
        local function countInBatch(batch, counted, ready, ids, field, now)
          if redis.call('TYPE', batch).ok ~= 'hash' then return end
          local new = redis.call('SADD', counted, unpack(ids))
          if new == 0 then return end
          redis.call('HINCRBY', batch, field, new)
          if redis.call('HINCRBY', batch, 'pending', -new) ~= 0 then return end
          completeBatch(batch, counted, ready, now)
        end
        """

    /// The keys `countInBatch` takes for `membership`: record, counted set, the batch queue's ready list.
    static func keys(_ membership: BatchMembership, _ keys: RedisKeys) -> [[UInt8]] {
        [
            Array(keys.batch(membership.queue, id: membership.id).utf8),
            Array(keys.batchCounted(membership.queue, id: membership.id).utf8),
            Array(keys.ready(membership.queue).utf8),
        ]
    }

    /// `countInBatch` on its own, in the batch's slot (a tally folded from another slot).
    /// KEYS: record, counted set, ready list. ARGV: field, now (ms), then the job ids (≥ 1).
    static let countScript = RedisScript("""
        #!lua
        \(function)
        countInBatch(KEYS[1], KEYS[2], KEYS[3], {unpack(ARGV, 3)}, ARGV[1], ARGV[2])
        return 1
        """)

    /// Whether a job of `queue` counts in `batch` from another hash slot: on a Redis Cluster, when
    /// the two queues' keys hash apart (then its outcome goes through a tally, `BatchTallies`).
    static func crossesSlots(_ queue: String, _ batch: BatchMembership, keys: RedisKeys, cluster: Bool) -> Bool {
        cluster && queue != batch.queue && RedisHashSlot.of(keys.ready(queue)) != RedisHashSlot.of(keys.ready(batch.queue))
    }
}
