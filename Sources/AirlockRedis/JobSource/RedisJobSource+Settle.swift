import Airlock
import AirlockRedisClient
public import AirlockWorker
import Metrics

extension RedisJobSource {
    /// One script call per queue (and at most ``maxPerCall`` jobs), in submission order, all in
    /// one pipelined round trip on the settle connection. Each call removes its jobs from the
    /// in-flight list first and skips any no longer there, so a batch can be resent after a lost
    /// reply. An error reply anywhere fails the batch (the engine sends it again).
    public func settle(_ settlements: [Settlement]) async throws {
        let current = try current()
        var groups: [(queue: String, items: [Settlement])] = []
        for settlement in settlements {
            if let last = groups.indices.last, groups[last].queue == settlement.job.queue, groups[last].items.count < Self.maxPerCall {
                groups[last].items.append(settlement)
            } else {
                groups.append((settlement.job.queue, [settlement]))
            }
        }
        let built = groups.map { call(queue: $0.queue, settlements: $0.items, current) }
        let calls = built.map(\.call)
        let replication = configuration.settlementReplication
        let replies: [RedisReply]
        if replication.isRequired {
            let (settled, wait) = try await current.settle.evaluate(calls, replication: replication)
            replies = settled
            if replies.allSatisfy({ $0.errorMessage == nil }) { noteReplication(wait, required: replication, jobs: settlements.count) }
        } else {
            replies = try await current.settle.evaluate(calls)
        }
        if let failure = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(failure) }
        // Outcomes counted in a batch in another slot: into the record now. The settlement stands
        // either way; a fold that fails is the reaper's to repeat.
        let tallied = Array(Set(zip(groups, built).filter(\.1.tallied).map(\.0.queue)))
        if !tallied.isEmpty {
            do {
                try await BatchTallies.fold(queues: tallied, client: current.settle, keys: keys, logger: logger)
            } catch {
                logger.warning("could not count settled jobs in their batches yet; the reaper will", metadata: ["error": "\(error)"])
            }
        }
    }

    /// A batch short of its replicas is settled all the same — it is on the primary, and what a
    /// failover could do is run its jobs again, not lose them — so it is counted and logged (once
    /// per change), not re-sent.
    private func noteReplication(_ wait: RedisReply, required: RedisReplication, jobs: Int) {
        let count = wait.int
        let short = count.map { $0 < required.replicas } ?? true
        if short { Metrics.Counter(label: "airlock_settlements_unreplicated_total").increment(by: Int64(jobs)) }
        guard replicationShort.exchange(short, ordering: .relaxed) != short else { return }
        if short {
            let got = count.map { "\($0) acknowledged" } ?? "WAIT failed: \(SafeText.escape(wait.errorMessage ?? "\(wait)"))"
            logger.warning("Settlements are not reaching the required replicas (\(required)): \(got); they stay settled on the primary, and a failover now could run their jobs again")
        } else {
            logger.info("Settlements reach the required replicas again (\(required))")
        }
    }

    /// The settle script's short form of an acknowledgement with no result and no batch.
    private static let plainAcknowledgement: [UInt8] = [UInt8(ascii: "a")]

    /// Most settlements one script call carries.
    static let maxPerCall = 256

    /// The settle script's call for one queue's settlements, and whether it tallies outcomes for
    /// batches in other slots (`BatchTallies`), which the caller then folds.
    private func call(queue: String, settlements: [Settlement], _ run: Run) -> (call: RedisScript.Call, tallied: Bool) {
        let cluster = run.settle.configuration.cluster != nil
        var tallyIndex = 0
        var scriptKeys: [[UInt8]] = [
            inflightKey(queue, run), Array(keys.stats(queue).utf8), Array(homeKey(queue).utf8),
            Array(keys.delayed(queue).utf8), Array(keys.dead(queue).utf8), Array(keys.wake(queue).utf8),
        ]
        // The dashboard's per-second series: this minute's hash key (and, in the script, the second
        // of the minute), on the worker's clock.
        let now = epochMilliseconds()
        scriptKeys.append(Array(keys.series(queue, minute: now / 60_000).utf8))
        // The queue's concurrency leases (KEYS[8–10]): only read when this worker holds one.
        scriptKeys += [Array(keys.limitHeld(queue).utf8), Array(keys.limitWake(queue).utf8), Array(keys.limit(queue).utf8)]
        var args: [[UInt8]] = [Array(String(configuration.deadLetterCap).utf8), Array(String(now).utf8), Array(run.worker.id.utf8)]
        args.reserveCapacity(3 + settlements.count * 9)
        var batchIndex: [BatchMembership: Int] = [:]
        for settlement in settlements {
            if case .acknowledge = settlement.outcome, settlement.result == nil, settlement.batch == nil {
                args.append(Self.plainAcknowledgement)
                args.append(settlement.job.raw)
                continue
            }
            let mode: StaticString
            var payload: [UInt8] = []
            var score: Int64 = 0
            switch settlement.outcome {
            case .acknowledge: mode = "ack"
            case .expired: mode = "expired"
            case .cancelled: mode = "cancelled"
            case .requeue: mode = "requeue"
            case .postpone(let dueAt):
                mode = "postpone"
                score = dueAt
            case .retry(let message, let dueAt):
                mode = "retry"
                payload = message
                score = dueAt
            case .dead(let entry):
                mode = "dead"
                payload = entry
            }
            var resultIndex = 0, notifyIndex = 0
            if let result = settlement.result {
                scriptKeys.append(Array(result.key.utf8))
                resultIndex = scriptKeys.count
                if let notify = result.notifyKey {
                    scriptKeys.append(Array(notify.utf8))
                    notifyIndex = scriptKeys.count
                }
            }
            args.append(Array(UnsafeBufferPointer(start: mode.utf8Start, count: mode.utf8CodeUnitCount)))
            args.append(settlement.job.raw)
            args.append(payload)
            args.append(score == 0 ? [UInt8(ascii: "0")] : Array(String(score).utf8))
            args.append(resultIndex == 0 ? [UInt8(ascii: "0")] : Array(String(resultIndex).utf8))
            args.append(settlement.result?.value ?? [])
            args.append(Array(String(settlement.result?.expirySeconds ?? 0).utf8))
            args.append(notifyIndex == 0 ? [UInt8(ascii: "0")] : Array(String(notifyIndex).utf8))
            if let count = settlement.batch, BatchCounting.crossesSlots(queue, count.batch, keys: keys, cluster: cluster) {
                // Counted from another slot: the script adds the entry to this queue's tallies.
                if tallyIndex == 0 {
                    scriptKeys.append(Array(keys.batchTallies(queue).utf8))
                    tallyIndex = scriptKeys.count
                }
                args.append(Array(String(-tallyIndex).utf8))
                args.append(BatchTallies.Entry(field: Self.batchField(settlement.outcome), count: count).encoded)
            } else if let count = settlement.batch {
                // A batch's keys go into KEYS once per call, however many of its jobs settle in it.
                let index: Int
                if let known = batchIndex[count.batch] {
                    index = known
                } else {
                    index = scriptKeys.count + 1
                    batchIndex[count.batch] = index
                    scriptKeys += BatchCounting.keys(count.batch, keys)
                }
                args.append(Array(String(index).utf8))
                args.append(Array(count.jobID.utf8))
            } else {
                args.append([UInt8(ascii: "0")])
            }
        }
        return (Self.settleScript.call(keys: scriptKeys, arguments: args), tallyIndex > 0)
    }

    /// The batch field a final outcome counts in (the script's `final` table); the others count
    /// nothing, whatever this says.
    private static func batchField(_ outcome: Settlement.Outcome) -> String {
        switch outcome {
        case .dead: "dead"
        case .expired, .cancelled: "cancelled"
        default: "succeeded"
        }
    }

    /// Settles a batch of one queue's jobs.
    /// KEYS: in-flight, stats, home (ready) key, delayed, dead, wake, this minute's series hash
    /// (`<ns>:{Q}:series:<minute>`), limit leases (`<ns>:{Q}:limit:held`), limit wake list, limit,
    /// then per job its result key (followed by its notify list, if any) and, once per batch in
    /// the call, the batch's keys (record, counted set, the batch queue's ready list).
    /// ARGV: dead-letter cap, now (ms, the worker's clock: the series' second, a batch's
    /// `completed_at`), worker id, then per job either `a` and the job's raw bytes (the short
    /// form of a plain acknowledgement: no result, no batch — most jobs, two arguments instead of
    /// nine) or: mode, the job's raw bytes,
    /// new payload, due ms, result key index in KEYS (0 for none), result, result expiry s, notify
    /// list index in KEYS (0: publish on the result key's channel instead, as Celery's backend does),
    /// batch record index in KEYS (0 for none; negative: the index of this queue's batch tallies,
    /// for a batch in another Cluster slot) and, only when it is not 0, the job id (for a tally,
    /// the tally's entry, added to the set if the outcome is final).
    /// A job no longer in the in-flight list (already settled, or recovered by a reaper) is skipped.
    /// Final outcomes (ack, dead, expired, cancelled) of batch jobs are counted in their batch
    /// after the loop, one `countInBatch` (``BatchCounting/function``) per batch and outcome.
    /// Processed and failed counts also go to the series hash (one `HINCRBY` per call that
    /// processed or failed anything, two if both; `EXPIRE` only when that created the field, at
    /// most 120 times a minute). When the worker holds a concurrency lease on the queue (one
    /// `HGET` per call, none per job), the lease is set to the in-flight list's new length and one
    /// token per freed job is pushed onto the limit wake list (kept to the limit's length), where
    /// workers waiting on the limit block. Returns how many were settled.
    static let settleScript = RedisScript("""
        #!lua flags=allow-oom
        local inflight, stats, home, delayed, dead, wake = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
        local second = math.floor(tonumber(ARGV[2]) / 1000) % 60
        local counts = {processed = 0, failed = 0, retried = 0, dead = 0, expired = 0, cancelled = 0}
        local settled, wakeScore, trimDead = 0, false, false
        local final = {ack = 'succeeded', dead = 'dead', expired = 'cancelled', cancelled = 'cancelled'}
        \(BatchCounting.function)
        \(LeaseRelease.function)
        -- Final outcomes of batch jobs, grouped by batch and outcome: counted after the loop.
        local batchCounts, batchOrder = {}, {}
        local i = 4
        while i <= #ARGV do
          if ARGV[i] == 'a' then
            -- The short form of the common case: acknowledged, no result, no batch. The count is a
            -- string: Redis turns a Lua number argument into text with snprintf, once per job.
            if redis.call('LREM', inflight, '-1', ARGV[i + 1]) == 1 then
              settled = settled + 1
              counts.processed = counts.processed + 1
            end
            i = i + 2
          else
            local mode, raw, payload, score = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
            local batchIndex = tonumber(ARGV[i + 8])
            local jobID = batchIndex ~= 0 and ARGV[i + 9]
            local here = i
            i = i + (batchIndex ~= 0 and 10 or 9)
            if redis.call('LREM', inflight, '-1', raw) == 1 then
              if batchIndex < 0 and final[mode] then
                redis.call('SADD', KEYS[-batchIndex], jobID)
              elseif batchIndex > 0 and final[mode] then
                local group = batchIndex .. ' ' .. final[mode]
                if not batchCounts[group] then
                  batchCounts[group] = {index = batchIndex, field = final[mode], ids = {}}
                  batchOrder[#batchOrder + 1] = group
                end
                local ids = batchCounts[group].ids
                ids[#ids + 1] = jobID
              end
              settled = settled + 1
              local resultIndex = tonumber(ARGV[here + 4])
              if resultIndex > 0 then
                redis.call('SET', KEYS[resultIndex], ARGV[here + 5], 'EX', tonumber(ARGV[here + 6]))
                local notifyIndex = tonumber(ARGV[here + 7])
                if notifyIndex > 0 then
                  redis.call('DEL', KEYS[notifyIndex])
                  redis.call('LPUSH', KEYS[notifyIndex], '1')
                  redis.call('EXPIRE', KEYS[notifyIndex], tonumber(ARGV[here + 6]))
                else
                  redis.call('PUBLISH', KEYS[resultIndex], ARGV[here + 5])
                end
              end
              if mode == 'ack' then
                counts.processed = counts.processed + 1
              elseif mode == 'expired' then
                counts.expired = counts.expired + 1
              elseif mode == 'cancelled' then
                counts.cancelled = counts.cancelled + 1
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
        end
        for _, group in ipairs(batchOrder) do
          local g = batchCounts[group]
          countInBatch(KEYS[g.index], KEYS[g.index + 1], KEYS[g.index + 2], g.ids, g.field, ARGV[2])
        end
        if trimDead then redis.call('LTRIM', dead, 0, tonumber(ARGV[1]) - 1) end
        if wakeScore then
          redis.call('LPUSH', wake, wakeScore)
          redis.call('LTRIM', wake, 0, 0)
        end
        for field, n in pairs(counts) do
          if n > 0 then redis.call('HINCRBY', stats, field, n) end
        end
        -- The dashboard's per-second series (fields p<s>/f<s>); the TTL is set when a field is created.
        if counts.processed > 0 and redis.call('HINCRBY', KEYS[7], 'p' .. second, counts.processed) == counts.processed then
          redis.call('EXPIRE', KEYS[7], 3900)
        end
        if counts.failed > 0 and redis.call('HINCRBY', KEYS[7], 'f' .. second, counts.failed) == counts.failed then
          redis.call('EXPIRE', KEYS[7], 3900)
        end
        -- A concurrency lease (docs/PROTOCOL.md, "Queue limits"): what this worker holds now, and a
        -- wake token per job it no longer holds, for workers blocked on the limit.
        local lease = redis.call('HGET', KEYS[8], ARGV[3])
        if lease then
          local holding = redis.call('LLEN', inflight)
          redis.call('HSET', KEYS[8], ARGV[3], holding)
          releaseLeases(KEYS[9], KEYS[10], (tonumber(lease) or 0) - holding)
        end
        return settled
        """)
}
