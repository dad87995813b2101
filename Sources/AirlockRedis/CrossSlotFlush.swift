public import Airlock
import AirlockRedisClient
import AirlockWorker
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging

/// A flush whose jobs hash to more than one slot of a Redis Cluster, where no script may span
/// slots. It stays all-or-nothing with a commit record (docs/PROTOCOL.md, "A flush across slots"):
///
/// 1. **Record** — every job of the flush is written, in one script, to a list in the fleet's
///    slot (`<fleet>:flush:<id>`) and indexed in `<fleet>:flushes`, scored by when a worker may
///    take it for abandoned. This is the commit point: from here on the flush will be delivered
///    whole, by this producer or by a worker.
/// 2. **Deliver** — each slot's share ("group") is written by the enqueue script, atomically,
///    together with a marker in that slot (`<ns>:{Q}:flushed:<id>`, Q the group's first queue)
///    holding the group's outcomes; a group whose marker exists is not written again.
/// 3. **Finish** — the record and its index entry are removed in one script; then the markers.
///
/// A flush that opens or joins a batch whose record is in another slot than some of its jobs
/// ("A batch across slots") adds two steps in the batch's slot, each once by its own marker: before
/// any group, the batch's *step* adds every job of the flush to the record's `total`/`pending`
/// (creating an opened batch), so no job can settle into a record that does not count it yet;
/// after every group, its *seal* takes back the jobs no group queued (idempotency duplicates) and
/// completes the batch if that left nothing pending.
///
/// A producer that dies between the steps leaves the record behind; every worker's reaper takes
/// records past their due time (``RedisExecutor/completeAbandonedFlushes(limit:)``), delivers the
/// groups not yet delivered and finishes them.
struct CrossSlotFlush: Sendable {
    /// The flush's id: the record's and the markers' names.
    let id: String
    /// Every job, in the order the flush listed them.
    let jobs: [OutgoingJob]
    /// The batch the jobs open or join, if any.
    let batch: BatchHeader?
    /// Whether the jobs were sent deduplicated by job id (the outbox's way), which each group keeps.
    let deduplicatingByJobID: Bool
    /// The idempotency TTL of the producer that recorded it, in ms, which recovery keeps too.
    let idempotencyTTLMilliseconds: Int64
    /// Indices into ``jobs``, one array per slot, in order of first appearance.
    let groups: [[Int]]

    /// `groups`: ``groups(of:keys:)`` of `jobs`, when the caller has them already.
    init(id: String, jobs: [OutgoingJob], batch: BatchHeader? = nil, deduplicatingByJobID: Bool, idempotencyTTLMilliseconds: Int64, keys: RedisKeys, groups: [[Int]]? = nil) {
        self.id = id
        self.jobs = jobs
        self.batch = batch
        self.deduplicatingByJobID = deduplicatingByJobID
        self.idempotencyTTLMilliseconds = idempotencyTTLMilliseconds
        self.groups = groups ?? Self.groups(of: jobs, keys: keys)
    }

    /// The jobs' indices per hash slot (every key of a queue carries its `{Q}` tag, so the slot of
    /// its ready list is the slot of all of them).
    static func groups(of jobs: [OutgoingJob], keys: RedisKeys) -> [[Int]] {
        var slotOfQueue: [String: Int] = [:]
        var groupOfSlot: [Int: Int] = [:]
        var groups: [[Int]] = []
        for (index, job) in jobs.enumerated() {
            let slot: Int
            if let known = slotOfQueue[job.queue] {
                slot = known
            } else {
                slot = RedisHashSlot.of(keys.ready(job.queue))
                slotOfQueue[job.queue] = slot
            }
            if let group = groupOfSlot[slot] {
                groups[group].append(index)
            } else {
                groupOfSlot[slot] = groups.count
                groups.append([index])
            }
        }
        return groups
    }

    /// The marker of `group`, in the slot of its first job's queue.
    func marker(of group: [Int], keys: RedisKeys) -> String { keys.flushDelivered(jobs[group[0]].queue, flushID: id) }

    /// The deliveries after the record: one per group, and the batch's step and seal.
    var deliverySteps: Int { groups.count + (batch == nil ? 0 : 2) }

    /// The markers of the batch's step and seal, in the batch's slot.
    func batchMarkers(keys: RedisKeys) -> (step: String, seal: String)? {
        batch.map { (keys.flushDelivered($0.membership.queue, flushID: "\(id):batch"), keys.flushDelivered($0.membership.queue, flushID: "\(id):sealed")) }
    }

    /// Every marker the flush writes.
    func markers(keys: RedisKeys) -> [String] {
        groups.map { marker(of: $0, keys: keys) } + (batchMarkers(keys: keys).map { [$0.step, $0.seal] } ?? [])
    }

    // MARK: The record

    private static let formatTag = Array("airlock-flush-1".utf8)
    /// A record with a batch: the batch's part follows the idempotency TTL.
    private static let batchFormatTag = Array("airlock-flush-2".utf8)
    private static let fieldsPerJob = 6

    /// The record's entries: the format tag, the dedup flag, the idempotency TTL, for a batch
    /// (`airlock-flush-2`) its `open` or `join`, id, queue, created ms, the number of its header
    /// arguments and those, then per job its id, queue, placement, due time, idempotency key
    /// (`k<key>`, or empty) and envelope.
    var entries: [[UInt8]] {
        var entries: [[UInt8]] = [batch == nil ? Self.formatTag : Self.batchFormatTag, deduplicatingByJobID ? [UInt8(ascii: "1")] : [],
                                  Array(String(idempotencyTTLMilliseconds).utf8)]
        if let batch {
            entries += [Array((batch.opens ? "open" : "join").utf8), Array(batch.membership.id.utf8), Array(batch.membership.queue.utf8),
                        Array(String(batch.createdAt).utf8), Array(String(batch.arguments.count).utf8)]
            entries += batch.arguments
        }
        entries.reserveCapacity(entries.count + jobs.count * Self.fieldsPerJob)
        for job in jobs {
            entries.append(Array(job.id.utf8))
            entries.append(Array(job.queue.utf8))
            entries.append([Self.placementCode(job.placement)])
            entries.append(Array(String(job.dueAt).utf8))
            entries.append(job.idempotencyKey.map { [UInt8(ascii: "k")] + Array($0.utf8) } ?? [])
            entries.append(job.bytes)
        }
        return entries
    }

    /// Reads a record back; nil (with the reason) when it is not one this code wrote.
    static func decode(id: String, entries: [[UInt8]], keys: RedisKeys) -> Result<CrossSlotFlush, RecordProblem> {
        guard entries.count >= 3, entries[0] == formatTag || entries[0] == batchFormatTag else {
            return .failure(RecordProblem("it is not an airlock-flush-1 or -2 record (\(entries.count) entries)"))
        }
        guard let ttl = Int64(String(decoding: entries[2], as: UTF8.self)), ttl > 0 else {
            return .failure(RecordProblem("its idempotency TTL is not a positive integer"))
        }
        var first = 3
        var batch: BatchHeader?
        if entries[0] == batchFormatTag {
            let text = { (index: Int) in entries.indices.contains(index) ? String(decoding: entries[index], as: UTF8.self) : "" }
            let mode = text(3)
            guard mode == "open" || mode == "join", let membership = BatchMembership(extra: [BatchMembership.idField: .string(text(4)), BatchMembership.queueField: .string(text(5))]),
                  let createdAt = Int64(text(6)), let count = Int(text(7)), count == (mode == "open" ? 7 : 1), entries.count >= 8 + count
            else { return .failure(RecordProblem("its batch part is not open|join, a batch id, a valid queue, a time and its header")) }
            batch = BatchHeader(membership: membership, opens: mode == "open", arguments: Array(entries[8..<8 + count]), createdAt: createdAt, keys: keys)
            first = 8 + count
        }
        guard (entries.count - first) % fieldsPerJob == 0 else {
            return .failure(RecordProblem("it does not hold \(fieldsPerJob) fields per job (\(entries.count - first) entries)"))
        }
        var jobs: [OutgoingJob] = []
        for start in stride(from: first, to: entries.count, by: fieldsPerJob) {
            let fields = entries[start..<start + fieldsPerJob].map { $0 }
            guard let placement = placement(fields[2]), let dueAt = Int64(String(decoding: fields[3], as: UTF8.self)) else {
                return .failure(RecordProblem("job \(jobs.count) has an unknown placement or due time"))
            }
            let idempotencyKey = fields[4].first == UInt8(ascii: "k") ? String(decoding: fields[4].dropFirst(), as: UTF8.self) : nil
            jobs.append(OutgoingJob(
                id: String(decoding: fields[0], as: UTF8.self), queue: String(decoding: fields[1], as: UTF8.self),
                placement: placement, dueAt: dueAt, idempotencyKey: idempotencyKey, bytes: fields[5]))
        }
        guard !jobs.isEmpty else { return .failure(RecordProblem("it holds no job")) }
        return .success(CrossSlotFlush(id: id, jobs: jobs, batch: batch, deduplicatingByJobID: !entries[1].isEmpty, idempotencyTTLMilliseconds: ttl, keys: keys))
    }

    /// Why a record left in Redis cannot be completed.
    struct RecordProblem: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    private static func placementCode(_ placement: OutgoingJob.Placement) -> UInt8 {
        switch placement {
        case .back: UInt8(ascii: "r")
        case .front: UInt8(ascii: "f")
        case .delayed: UInt8(ascii: "d")
        }
    }

    private static func placement(_ bytes: [UInt8]) -> OutgoingJob.Placement? {
        switch bytes {
        case [UInt8(ascii: "r")]: .back
        case [UInt8(ascii: "f")]: .front
        case [UInt8(ascii: "d")]: .delayed
        default: nil
        }
    }

    // MARK: Scripts (each on the fleet's slot)

    /// KEYS: record, index. ARGV: flush id, due score (ms), then the record's entries. Refuses a
    /// second record under the same id rather than mixing two flushes.
    static let recordScript = RedisScript("""
        #!lua
        if redis.call('EXISTS', KEYS[1]) == 1 then
          return redis.error_reply('EXISTS a cross-slot flush record ' .. ARGV[1] .. ' is already there; nothing was enqueued')
        end
        local t = redis.call('TYPE', KEYS[2]).ok
        if t ~= 'none' and t ~= 'zset' then
          return redis.error_reply('WRONGTYPE key ' .. KEYS[2] .. ' holds a ' .. t .. ', expected a zset; nothing was enqueued')
        end
        for i = 3, #ARGV, 1000 do
          redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
        end
        redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
        return 1
        """)

    /// KEYS: record, index. ARGV: flush id. The index entry and the record go together. Returns
    /// the entry's score as it was (false when there was none): a score other than the one the
    /// producer wrote means a worker claimed the record and may be delivering from it.
    static let finishScript = RedisScript("""
        #!lua
        local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
        redis.call('ZREM', KEYS[2], ARGV[1])
        redis.call('DEL', KEYS[1])
        return score
        """)

    /// The batch's step, before any group (in the batch's slot). KEYS: the step's marker, the
    /// batch's record. ARGV: marker lifetime (ms), the flush's number of jobs, then the batch
    /// header's arguments (`BatchHeader.arguments`: seven for an opened batch, one for a joined).
    /// Once per flush (the marker): adds every job to `total` and `pending`; an opened batch's
    /// record is created with them, a joined batch's is only added to when it exists. The marker
    /// says whether a record was counted (`1`) or not (`0`), for the seal.
    static let batchStepScript = RedisScript("""
        #!lua
        \(BatchHeader.createFunction)
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        local t = redis.call('TYPE', KEYS[2]).ok
        if t ~= 'none' and t ~= 'hash' then
          return redis.error_reply('WRONGTYPE key ' .. KEYS[2] .. ' holds a ' .. t .. ', expected a hash; the jobs wait in the flush record')
        end
        local n = tonumber(ARGV[2])
        local counted = '1'
        if t == 'hash' then
          redis.call('HINCRBY', KEYS[2], 'total', n)
          redis.call('HINCRBY', KEYS[2], 'pending', n)
        elseif #ARGV == 9 then
          createBatch(KEYS[2], n)
        else
          counted = '0'
        end
        redis.call('SET', KEYS[1], counted, 'PX', ARGV[1])
        return 1
        """)

    /// The batch's seal, after every group (in the batch's slot). KEYS: the seal's marker, the
    /// step's marker, record, counted set, the batch queue's ready list. ARGV: marker lifetime
    /// (ms), how many of the flush's jobs no group queued (duplicates), now (ms). Once per flush:
    /// takes those back from `total` and `pending` if the step counted them, completing the batch
    /// when that leaves nothing pending (`completeBatch`).
    static let sealScript = RedisScript("""
        #!lua
        \(BatchCounting.function)
        if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
        local d = tonumber(ARGV[2])
        if d > 0 and redis.call('GET', KEYS[2]) == '1' and redis.call('TYPE', KEYS[3]).ok == 'hash' then
          redis.call('HINCRBY', KEYS[3], 'total', -d)
          if redis.call('HINCRBY', KEYS[3], 'pending', -d) == 0 then completeBatch(KEYS[3], KEYS[4], KEYS[5], ARGV[3]) end
        end
        return 1
        """)

    /// KEYS: index. ARGV: now (ms), lease end (ms), limit. Takes the records due by now and
    /// pushes their due time to the lease's end, so one worker at a time completes each (a
    /// worker that dies doing it leaves it to the next after the lease).
    static let claimScript = RedisScript("""
        #!lua
        local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
        for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
        return due
        """)
}

extension RedisExecutor {
    /// The lease a worker holds on a cross-slot flush's record while completing it: another
    /// worker takes the record over only after it ran out.
    static let crossSlotLease: Duration = .seconds(30)

    /// How long a delivered group's marker outlives its record when the markers are not removed
    /// by the producer (a worker completed the flush, or the producer died after finishing): a
    /// producer stalled longer than this between two steps could deliver its group twice.
    static let crossSlotMarkerLifetime: Duration = .seconds(3600)

    /// Writes a flush spanning slots with the commit record; returns nil when `stoppingAfterStep`
    /// (tests: a producer crash) stopped it. Steps: 1 record, then the deliveries (the batch's
    /// step, each group, the batch's seal: ``CrossSlotFlush/deliverySteps``), then finish.
    func writeAcrossSlots(_ flush: CrossSlotFlush, stoppingAfterStep: Int? = nil) async throws(RedisExecutorError) -> [Outcome]? {
        let record = Array(keys.flushRecord(flush.id).utf8), index = Array(keys.flushes.utf8)
        let due = epochMilliseconds() + abandonedFlushDelay.wholeMilliseconds
        if stoppingAfterStep == 0 { return nil }
        // 1. The commit point.
        var shortfall: RedisExecutorError?
        do {
            let call = CrossSlotFlush.recordScript.call(keys: [record, index], arguments: [Array(flush.id.utf8), Array(String(due).utf8)] + flush.entries)
            shortfall = try await run(call).shortfall
        } catch {
            throw RedisExecutorError.from(error)
        }
        if stoppingAfterStep == 1 { return nil }
        // 2. Every delivery; a failure from here on leaves a committed flush that a worker completes.
        guard let delivered = try await deliver(flush, pipelined: stoppingAfterStep == nil, stoppingAfter: stoppingAfterStep.map { $0 - 1 }) else { return nil }
        await register(Array(Set(flush.jobs.map(\.queue))))
        // 3. Done: nothing left to complete. A failure here only leaves work a worker finds done.
        do {
            let score = try await client.evalScript(CrossSlotFlush.finishScript, keys: [record, index], args: [Array(flush.id.utf8)])
            // Unclaimed (the score this producer wrote), no worker read the record: the markers can
            // go. Claimed, a worker may still be delivering from it and needs them: they expire.
            if score.string.flatMap({ Double($0) }).map({ Int64($0) == due }) == true {
                _ = try await client.pipeline(flush.markers(keys: keys).map { RedisCommand("DEL", $0) })
            }
        } catch {
            logger.debug("a delivered cross-slot flush could not be finished; a worker will", metadata: ["flush": "\(flush.id)", "error": "\(error)"])
        }
        if let shortfall = shortfall ?? delivered.shortfall { throw shortfall }
        return delivered.outcomes
    }

    /// The deliveries of a recorded flush, each skipped when its marker says it was done: the
    /// batch's step, every group (`pipelined`: in one pipeline per node, else one at a time), the
    /// batch's seal. Returns the jobs' outcomes, or nil when stopped after `stoppingAfter` of
    /// them (tests: a crash).
    /// - Throws: `.deliveryPending` when Redis failed one; `.protocolViolation` for a reply it
    ///   does not understand.
    private func deliver(_ flush: CrossSlotFlush, pipelined: Bool, stoppingAfter: Int?) async throws(RedisExecutorError)
        -> (outcomes: [Outcome], shortfall: RedisExecutorError?)? {
        var step = 0, shortfall: RedisExecutorError?
        let lifetime = Array(String(Self.crossSlotMarkerLifetime.wholeMilliseconds).utf8)
        let markers = flush.batchMarkers(keys: keys)
        var replies: [RedisReply] = []
        do throws(RedisError) {
            if let batch = flush.batch, let markers {
                // Before any job exists, so none can settle into a record that does not count it.
                let call = CrossSlotFlush.batchStepScript.call(
                    keys: [Array(markers.step.utf8), batch.keys[0]], arguments: [lifetime, Array(String(flush.jobs.count).utf8)] + batch.arguments)
                shortfall = try await run(call).shortfall
                step += 1
                if stoppingAfter == step { return nil }
            }
            let calls = flush.groups.map { deliveryCall(flush, group: $0) }
            if pipelined, !replication.isRequired {
                replies = try await client.evaluate(calls)   // one pipeline per node
                for reply in replies { _ = try reply.throwingServerError() }
                step += calls.count
            } else {
                for call in calls {
                    let (reply, short) = try await run(call)
                    replies.append(reply)
                    shortfall = shortfall ?? short
                    step += 1
                    if stoppingAfter == step { return nil }
                }
            }
        } catch {
            throw deliveryPending(flush, error)
        }
        var outcomes = [Outcome](repeating: .queued, count: flush.jobs.count)
        var notQueued = 0
        for (group, reply) in zip(flush.groups, replies) {
            notQueued += try collect(reply, of: flush, group: group, into: &outcomes)
        }
        if let batch = flush.batch, let markers {
            do throws(RedisError) {
                let call = CrossSlotFlush.sealScript.call(
                    keys: [Array(markers.seal.utf8), Array(markers.step.utf8)] + BatchCounting.keys(batch.membership, keys),
                    arguments: [lifetime, Array(String(notQueued).utf8), Array(String(epochMilliseconds()).utf8)])
                let sealed = try await run(call).shortfall
                shortfall = shortfall ?? sealed
            } catch {
                throw deliveryPending(flush, error)
            }
            step += 1
            if stoppingAfter == step { return nil }
        }
        return (outcomes, shortfall)
    }

    /// A committed flush whose delivery `error` interrupted.
    private func deliveryPending(_ flush: CrossSlotFlush, _ error: RedisError) -> RedisExecutorError {
        RedisExecutorError(
            .deliveryPending,
            "the flush spans hash slots and is committed, but not every slot's part was written yet (\(error)); "
                + "a worker delivers the rest within \(abandonedFlushDelay) plus its reaper interval: do not send them again",
            redisError: error)
    }

    /// Completes cross-slot flushes whose producer did not finish them in time (it crashed, or
    /// lost Redis, between the record and the last group): delivers the groups not yet delivered,
    /// then removes the record. Workers call it from their reaper; safe to run anywhere, any
    /// number of times at once (a delivered group is never written twice). Returns how many
    /// flushes it completed.
    public func completeAbandonedFlushes(limit: Int = 16) async throws(RedisExecutorError) -> Int {
        try await completeAbandonedFlushes(limit: limit, stoppingAfterDeliveries: nil)
    }

    /// ``enqueue(_:)`` of a flush spanning hash slots (in `batch`, opened, if given), stopped
    /// after `step` of its steps as if the producer died there: 0 before anything, 1 after the
    /// record, then one per delivery (the batch's step, each slot's jobs, the batch's seal), the
    /// last when done. Returns the number of deliveries; for crash-injection tests.
    @_spi(Testing)
    public func enqueueAcrossSlots(_ intents: [Intent], in batch: Batch? = nil, stoppingAfterStep step: Int) async throws -> Int {
        let (header, jobs) = try prepare(intents, batch: batch.map(BatchWrite.open), partitions: [:], now: Date())
        let flush = CrossSlotFlush(id: Self.flushID(), jobs: jobs, batch: header, deduplicatingByJobID: false,
                                   idempotencyTTLMilliseconds: idempotencyTTL.wholeMilliseconds, keys: keys)
        guard flush.groups.count > 1 || header != nil else { throw RedisExecutorError(.invalidIntent, "the intents hash to one slot; nothing was enqueued") }
        _ = try await writeAcrossSlots(flush, stoppingAfterStep: step)
        if let header, header.opens, step > flush.deliverySteps + 1 { await index(header) }
        return flush.deliverySteps
    }

    /// ``completeAbandonedFlushes(limit:)`` stopped after `deliveries` deliveries in all (the
    /// batches' steps and seals count), as if the worker died there; for crash-injection tests.
    @_spi(Testing)
    public func completeAbandonedFlushes(stoppingAfterGroups deliveries: Int) async throws -> Int {
        try await completeAbandonedFlushes(limit: 16, stoppingAfterDeliveries: deliveries)
    }

    /// ``completeAbandonedFlushes(limit:)``, stopped (tests: a worker crash) after that many deliveries.
    func completeAbandonedFlushes(limit: Int, stoppingAfterDeliveries: Int?) async throws(RedisExecutorError) -> Int {
        let now = epochMilliseconds()
        let ids: [String]
        do {
            let claimed = try await client.evalScript(
                CrossSlotFlush.claimScript, keys: [Array(keys.flushes.utf8)],
                args: [Array(String(now).utf8), Array(String(now + Self.crossSlotLease.wholeMilliseconds).utf8), Array(String(limit).utf8)])
            ids = try claimed.strings()
        } catch {
            throw RedisExecutorError.from(error)
        }
        var completed = 0
        var budget = stoppingAfterDeliveries
        for id in ids {
            let record = Array(keys.flushRecord(id).utf8), index = Array(keys.flushes.utf8)
            do {
                let entries = try await client.send(RedisCommand("LRANGE", keys.flushRecord(id), "0", "-1")).array?.map { $0.bytes ?? [] } ?? []
                if entries.isEmpty {
                    // Finished meanwhile (its producer was only slow): only the index entry was left.
                    _ = try await client.evalScript(CrossSlotFlush.finishScript, keys: [record, index], args: [Array(id.utf8)])
                    continue
                }
                let flush: CrossSlotFlush
                switch CrossSlotFlush.decode(id: id, entries: entries, keys: keys) {
                case .success(let decoded): flush = decoded
                case .failure(let problem):
                    // Left where it is, for an operator: nothing of it is lost or half-guessed.
                    logger.error("a cross-slot flush record cannot be read; left in place", metadata: [
                        "flush": "\(SafeText.escape(id))", "key": "\(SafeText.escape(keys.flushRecord(id)))", "problem": "\(problem)"])
                    continue
                }
                if let left = budget, left <= 0 { return completed }
                guard try await deliver(flush, pipelined: false, stoppingAfter: budget) != nil else { return completed }
                budget = budget.map { $0 - flush.deliverySteps }
                await register(Array(Set(flush.jobs.map(\.queue))))
                if let batch = flush.batch, batch.opens { await self.index(batch) }
                _ = try await client.evalScript(CrossSlotFlush.finishScript, keys: [record, index], args: [Array(id.utf8)])
                completed += 1
                logger.warning("completed a cross-slot flush its producer left unfinished", metadata: [
                    "flush": "\(SafeText.escape(id))", "jobs": "\(flush.jobs.count)", "slots": "\(flush.groups.count)"])
            } catch {
                // The lease runs out and a worker tries again.
                logger.error("could not complete a cross-slot flush; retried after the lease", metadata: ["flush": "\(SafeText.escape(id))", "error": "\(error)"])
            }
        }
        return completed
    }

    /// The enqueue script for one group, with its marker.
    private func deliveryCall(_ flush: CrossSlotFlush, group: [Int]) -> RedisScript.Call {
        enqueueCall(group.map { flush.jobs[$0] }, deduplicatingByJobID: flush.deduplicatingByJobID,
                    idempotencyTTLMilliseconds: flush.idempotencyTTLMilliseconds,
                    header: .flushGroup(marker: flush.marker(of: group, keys: keys), lifetime: Self.crossSlotMarkerLifetime)).call
    }

    /// Copies a group's per-job replies into `outcomes`; returns how many of its jobs were not
    /// queued (any id back: for a batch, the jobs its seal takes back). A job's own id coming back
    /// from its idempotency key means this flush's earlier delivery of it (a producer's retry),
    /// not another job.
    private func collect(_ reply: RedisReply, of flush: CrossSlotFlush, group: [Int], into outcomes: inout [Outcome]) throws(RedisExecutorError) -> Int {
        guard let results = reply.array, results.count == group.count else {
            throw RedisExecutorError(.protocolViolation, "unexpected reply to a cross-slot flush's delivery: \(reply)")
        }
        var notQueued = 0
        for (index, result) in zip(group, results) {
            guard let existing = result.string, !existing.isEmpty else { continue }
            notQueued += 1
            if existing != flush.jobs[index].id { outcomes[index] = .duplicate(existingJobID: existing) }
        }
        return notQueued
    }
}
