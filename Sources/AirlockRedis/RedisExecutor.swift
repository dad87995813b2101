public import Airlock
public import AirlockRedisClient
public import AirlockWorker
#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif
public import Logging
import Synchronization

/// Dispatches a scope's intents to Redis queues: one atomic command, one round trip per flush,
/// whatever the number of intents, queues and delays — the enqueue script, or, for a flush of
/// ready jobs to one end of one queue, the variadic `LPUSH`/`RPUSH` the script would end in.
///
/// ```swift
/// let executor = try RedisExecutor(url: "redis://127.0.0.1:6379/0")
/// try Airlock.configure(executor: executor)
/// try await Airlock.scope { try Airlock.enqueue(SendConfirmationEmail(orderID: 42)) }
/// ```
///
/// Routing: `options.queue` (default ``defaultQueue``). A due time in the future (countdown or
/// eta) puts the job in the queue's delayed set; otherwise it goes to the ready list. A priority
/// above zero puts it at the consuming end of the ready list, ahead of the backlog.
/// An idempotency key already used on the same queue within ``idempotencyTTL`` makes the intent a
/// no-op (see ``enqueue(_:)``). An envelope larger than ``maxPayloadBytes`` fails the whole flush
/// before anything is sent.
///
/// Replicated acknowledgement (``replication``, opt-in): after the write, `WAIT` on the same
/// connection until that many replicas received it. A flush that reached fewer in time was
/// written to the primary but is not acknowledged: it throws ``DispatchError`` with every intent
/// dispatched and a ``RedisExecutorError`` of kind ``RedisExecutorError/Kind/notReplicated``.
public struct RedisExecutor: Executor {
    /// The connection flushes go through.
    public let client: RedisClient
    /// Key layout.
    public let keys: RedisKeys
    /// Queue of intents that name none.
    public let defaultQueue: String
    /// Largest envelope accepted, in bytes.
    public let maxPayloadBytes: Int
    /// How long an idempotency key blocks a second intent with the same key.
    public let idempotencyTTL: Duration
    /// Written into envelopes whose intent has no origin of its own.
    public let origin: String?
    /// Replicas that must hold a flush before it is acknowledged (``RedisReplication/none``: the primary's word is enough).
    public let replication: RedisReplication
    /// How long a cross-slot flush's record (Redis Cluster only, docs/PROTOCOL.md) may stand before
    /// workers take its producer for dead and complete it themselves. Longer than any flush takes;
    /// a producer merely slower than this is harmless (nothing is delivered twice), only later.
    public var abandonedFlushDelay: Duration = .seconds(5)
    let logger: Logger
    private let registeredQueues = SharedSet()
    private let partitionTable = PartitionTable()

    /// Creates an executor over an existing client. `replication` nil takes the client's
    /// configuration's (the URL's `wait_replicas`/`wait_timeout`); ``RedisReplication/none`` turns it off.
    public init(
        client: RedisClient,
        namespace: String = "airlock",
        defaultQueue: String = "default",
        maxPayloadBytes: Int = 512 * 1024,
        idempotencyTTL: Duration = .seconds(24 * 3600),
        origin: String? = nil,
        replication: RedisReplication? = nil,
        logger: Logger = Logger(label: "airlock.redis.executor")
    ) {
        self.client = client
        self.replication = replication ?? client.configuration.replication ?? .none
        self.keys = RedisKeys(namespace: namespace, for: client.configuration)
        self.defaultQueue = defaultQueue
        self.maxPayloadBytes = maxPayloadBytes
        self.idempotencyTTL = idempotencyTTL
        self.origin = origin
        self.logger = logger
    }

    /// Creates an executor with its own connection to `url` (see ``RedisConfiguration/init(url:)``).
    public init(
        url: String,
        namespace: String = "airlock",
        defaultQueue: String = "default",
        maxPayloadBytes: Int = 512 * 1024,
        replication: RedisReplication? = nil,
        logger: Logger = Logger(label: "airlock.redis.executor")
    ) throws {
        let client = RedisClient(configuration: try RedisConfiguration(url: url), name: "airlock-producer", logger: logger)
        self.init(client: client, namespace: namespace, defaultQueue: defaultQueue, maxPayloadBytes: maxPayloadBytes, replication: replication, logger: logger)
    }

    /// What happened to one intent of a batch.
    public enum Outcome: Sendable, Hashable {
        /// Written to the queue (ready list or delayed set).
        case queued
        /// Not written: its idempotency key was already used, by the job with this id.
        case duplicate(existingJobID: String)
    }

    /// Flush entry point: all of `intents` or none. Throws ``DispatchError`` listing every intent
    /// as not dispatched (or, when the connection broke mid-request, saying the outcome is unknown).
    public func dispatch(_ intents: [Intent]) async throws {
        let outcomes = try await enqueue(intents)
        for (intent, outcome) in zip(intents, outcomes) {
            if case .duplicate(let existing) = outcome {
                logger.debug("idempotency key already used; not queued again",
                             metadata: ["task": "\(SafeText.escape(intent.taskName))", "intent": "\(intent.id)", "existing": "\(SafeText.escape(existing))"])
            }
        }
    }

    /// Writes `intents` atomically and reports, per intent, whether it was queued or was a duplicate.
    /// With ``replication`` required, a batch fewer replicas received in time throws
    /// ``DispatchError`` (all dispatched) over ``RedisExecutorError/Kind/notReplicated``.
    /// Inside a task that runs for a batch's job (``BatchMembership/current``), the intents join
    /// that batch: counted in it, in the same script, before the running job settles.
    public func enqueue(_ intents: [Intent]) async throws -> [Outcome] {
        try await enqueue(intents, batch: BatchMembership.current.map(BatchWrite.join))
    }

    /// ``enqueue(_:)`` with the batch the intents join or open.
    func enqueue(_ intents: [Intent], batch: BatchWrite?) async throws -> [Outcome] {
        guard !intents.isEmpty || batch?.opens == true else { return [] }
        // On a Cluster, a partitioned queue's jobs go to one of its partitions (a batch's
        // callbacks stay on the batch's queue itself, where its record lives).
        let partitions = client.configuration.cluster != nil ? await partitionTable.counts(client, keys: keys) : [:]
        let header: BatchHeader?, jobs: [OutgoingJob]
        do {
            (header, jobs) = try prepare(intents, batch: batch, partitions: partitions, now: Date())
        } catch {
            throw DispatchError(dispatched: [], notDispatched: intents, underlying: error)
        }
        do {
            let outcomes = try await write(jobs, deduplicatingByJobID: false, batch: header)
            if let header, header.opens { await index(header) }
            return outcomes
        } catch where error.kind == .notReplicated || error.kind == .deliveryPending {
            // Written (to the primary, or as a committed cross-slot record): dispatched, but not
            // acknowledged by enough replicas, or not yet delivered to every queue.
            throw DispatchError(dispatched: intents, notDispatched: [], underlying: error)
        } catch {
            throw DispatchError(dispatched: [], notDispatched: intents, underlying: error)
        }
    }

    /// The batch header and the jobs of a flush, each job routed to its partition and carrying
    /// the batch's fields; every job continues the flush's span.
    func prepare(_ intents: [Intent], batch: BatchWrite?, partitions: [String: Int], now: Date) throws(RedisExecutorError) -> (header: BatchHeader?, jobs: [OutgoingJob]) {
        let trace = TraceContext.current()
        var jobs: [OutgoingJob] = []
        jobs.reserveCapacity(intents.count)
        let header = try batch.map { write throws(RedisExecutorError) in try BatchHeader(write, executor: self, now: now, trace: trace) }
        for intent in intents {
            // The plain flush encodes each intent as it is: building a routed or batch-member
            // copy costs a retain and release of every field it holds.
            if partitions.isEmpty, header == nil {
                jobs.append(try encode(intent, now: now, trace: trace))
                continue
            }
            let routed = partitions.isEmpty ? intent : Self.route(intent, defaultQueue: defaultQueue, partitions: partitions)
            jobs.append(try encode(header.map { $0.member(routed) } ?? routed, now: now, trace: trace))
        }
        return (header, jobs)
    }

    /// `intent` sent to one partition of its queue when the queue is partitioned: by its
    /// ``DispatchOptions/partitionKey``, else by its id.
    static func route(_ intent: Intent, defaultQueue: String, partitions: [String: Int]) -> Intent {
        let queue = intent.options.queue ?? defaultQueue
        guard let count = partitions[queue], count > 1 else { return intent }
        var options = intent.options
        let index = QueuePartitions.partition(forKey: options.partitionKey ?? intent.id.jobID, count: count)
        options.queue = QueuePartitions.name(queue, partition: index)
        return Intent(id: intent.id, name: intent.name, taskName: intent.taskName, payload: intent.payload, options: options,
                      origin: intent.origin, localPolicies: intent.localPolicies)
    }

    /// The job this executor would write for `intent` dispatched at `now`: the same envelope bytes,
    /// queue and placement as ``enqueue(_:)`` (a PostgreSQL outbox stores them and sends them later).
    /// On a Cluster, a partitioned queue's partition is chosen from the counts this executor last
    /// read (partition 0, the queue itself, before its first flush).
    /// - Parameter trace: the producer's trace context written into the envelope (default: the
    ///   current one, ``TraceContext/current()`` — for an outbox, the transaction's span).
    /// - Throws: ``RedisExecutorError`` (`.payloadTooLarge`, `.encodingFailed`, `.invalidIntent`)
    ///   when the intent cannot become a job.
    public func job(for intent: Intent, now: Date, trace: TraceContext? = TraceContext.current()) throws(RedisExecutorError) -> OutgoingJob {
        let routed = partitionTable.cached.map { Self.route(intent, defaultQueue: defaultQueue, partitions: $0) } ?? intent
        return try encode(routed, now: now, trace: trace)
    }

    /// The job for `intent` as routed already (a batch's callbacks: on the batch's queue itself).
    func encode(_ intent: Intent, now: Date, trace: TraceContext?) throws(RedisExecutorError) -> OutgoingJob {
        do {
            return try OutgoingJob(intent: intent, now: now, defaultQueue: defaultQueue, origin: origin, maxBytes: maxPayloadBytes, trace: trace)
        } catch {
            throw RedisExecutorError(error)
        }
    }

    /// Writes already-encoded jobs atomically (one script or one push, all or nothing), as ``enqueue(_:)`` does.
    ///
    /// With `deduplicatingByJobID`, a job is written only if no job with its id was written to its
    /// queue within ``idempotencyTTL`` (key `<ns>:{Q}:sent:<id>`; a job with an idempotency key
    /// is deduplicated by that key instead, which a second delivery of the same job carries too):
    /// sending the same jobs twice queues them once. The PostgreSQL outbox's fast path and relay
    /// send this way.
    /// - Throws: ``RedisExecutorError``: `.payloadTooLarge` or `.invalidIntent` before anything is
    ///   sent (see `OutgoingJob.problem(maxBytes:)`), else `.notWritten`, `.outcomeUnknown`, `.protocolViolation`;
    ///   `.notReplicated` when ``replication`` is required and too few replicas acknowledged in time
    ///   (the jobs are on the primary: the outbox keeps their rows and a relay sends them again,
    ///   deduplicated, until a send is acknowledged).
    public func enqueue(jobs: [OutgoingJob], deduplicatingByJobID: Bool) async throws(RedisExecutorError) -> [Outcome] {
        for job in jobs {
            if let problem = job.problem(maxBytes: maxPayloadBytes) {
                let kind: RedisExecutorError.Kind = job.bytes.count > maxPayloadBytes ? .payloadTooLarge : .invalidIntent
                throw RedisExecutorError(kind, "job \(SafeText.escape(job.id)): \(problem); nothing was enqueued")
            }
        }
        return try await write(jobs, deduplicatingByJobID: deduplicatingByJobID)
    }

    /// The one round trip behind both entry points (on a Redis Cluster, a flush spanning hash
    /// slots, or one whose batch record is in another slot than its jobs, takes the commit-record
    /// path of `CrossSlotFlush.swift` instead).
    private func write(_ jobs: [OutgoingJob], deduplicatingByJobID: Bool, batch: BatchHeader? = nil) async throws(RedisExecutorError) -> [Outcome] {
        guard !jobs.isEmpty || batch != nil else { return [] }
        if client.configuration.cluster != nil, !jobs.isEmpty, jobs.count > 1 || batch != nil {
            let groups = CrossSlotFlush.groups(of: jobs, keys: keys)
            if groups.count > 1 || batch.map({ BatchCounting.crossesSlots(jobs[0].queue, $0.membership, keys: keys, cluster: true) }) == true {
                let flush = CrossSlotFlush(id: Self.flushID(), jobs: jobs, batch: batch, deduplicatingByJobID: deduplicatingByJobID,
                                           idempotencyTTLMilliseconds: idempotencyTTL.wholeMilliseconds, keys: keys, groups: groups)
                if let outcomes = try await writeAcrossSlots(flush) { return outcomes }
            }
        }
        if batch == nil, !deduplicatingByJobID, let outcomes = try await pushToOneList(jobs) { return outcomes }
        let (call, queues) = enqueueCall(jobs, deduplicatingByJobID: deduplicatingByJobID,
                                         idempotencyTTLMilliseconds: idempotencyTTL.wholeMilliseconds, header: batch.map(ScriptHeader.batch) ?? .none)
        let reply: RedisReply
        let shortfall: RedisExecutorError?
        do {
            (reply, shortfall) = try await run(call)
        } catch {
            throw RedisExecutorError.from(error)
        }
        await register(queues)
        guard let results = reply.array, results.count == jobs.count else {
            throw RedisExecutorError(.protocolViolation, "unexpected reply to the enqueue script: \(reply)")
        }
        if let shortfall { throw shortfall }
        return results.map { result in
            if let existing = result.string, !existing.isEmpty { .duplicate(existingJobID: existing) } else { .queued }
        }
    }

    /// The commonest flush — every job ready, to one end of one queue's list, none with an
    /// idempotency key — written as the one variadic `LPUSH`/`RPUSH` the enqueue script would end
    /// in, without the script: Redis runs it at a fraction of the script's cost per job, and one
    /// command is as all-or-nothing as one script. `nil` when the flush is not of that shape, or
    /// when Redis refused the push (the list's key holds another type, the server is out of
    /// memory): nothing was written then, and the script refuses it in the words it always has
    /// (naming a key of the wrong type).
    private func pushToOneList(_ jobs: [OutgoingJob]) async throws(RedisExecutorError) -> [Outcome]? {
        guard let first = jobs.first, first.placement != .delayed,
              jobs.allSatisfy({ $0.idempotencyKey == nil && $0.placement == first.placement && $0.queue == first.queue })
        else { return nil }
        let command = first.placement == .front ? "RPUSH" : "LPUSH"
        var arguments: [[UInt8]] = []
        arguments.reserveCapacity(jobs.count + 2)
        arguments.append(Array(command.utf8))
        arguments.append(Array(keys.ready(first.queue).utf8))
        for job in jobs { arguments.append(job.bytes) }
        let push = RedisCommand(arguments: arguments)
        let replies: [RedisReply]
        do {
            replies = try await client.pipeline(replication.isRequired ? [push, replication.command] : [push])
        } catch {
            throw RedisExecutorError.from(error)
        }
        guard case .integer = replies[0] else {
            if case .error = replies[0] { return nil }
            throw RedisExecutorError(.protocolViolation, "unexpected reply to \(command): \(replies[0])")
        }
        await register([first.queue])
        if replication.isRequired, let shortfall = RedisExecutorError.notReplicated(replies[1], required: replication) { throw shortfall }
        return Array(repeating: .queued, count: jobs.count)
    }

    /// One script call, with `WAIT` in the same round trip, on the same connection, right after it
    /// when replication is required: its reply (an error reply is thrown) and, when too few replicas
    /// acknowledged, the error to throw once the caller is otherwise done.
    func run(_ call: RedisScript.Call) async throws(RedisError) -> (reply: RedisReply, shortfall: RedisExecutorError?) {
        guard replication.isRequired else {
            return (try await client.evaluate([call])[0].throwingServerError(), nil)
        }
        let (replies, wait) = try await client.evaluate([call], replication: replication)
        return (try replies[0].throwingServerError(), RedisExecutorError.notReplicated(wait, required: replication))
    }

    /// Queue names are registered outside the script, so the script touches only one queue's
    /// (hash-tagged) keys; once per queue per executor, after a write succeeded, so a refused
    /// batch leaves no trace. Workers re-register their queues with every heartbeat.
    func register(_ queues: [String]) async {
        let unregistered = registeredQueues.withLock { known in queues.filter { !known.contains($0) } }
        if !unregistered.isEmpty, (try? await client.send(RedisCommand("SADD", [keys.queues] + unregistered))) != nil {
            registeredQueues.withLock { $0.formUnion(unregistered) }
        }
    }

    /// What precedes the jobs in an enqueue script call.
    enum ScriptHeader {
        /// Nothing: a plain flush.
        case none
        /// The batch the jobs join or open.
        case batch(BatchHeader)
        /// One slot's share of a cross-slot flush, written with (and skipped when there is) its
        /// marker, which keeps the group's outcomes for `lifetime`.
        case flushGroup(marker: String, lifetime: Duration)
    }

    /// The enqueue script's call for `jobs` (see ``enqueueScript`` for the layout), and the queues
    /// it writes to, each once.
    func enqueueCall(_ jobs: [OutgoingJob], deduplicatingByJobID: Bool, idempotencyTTLMilliseconds: Int64,
                     header: ScriptHeader) -> (call: RedisScript.Call, queues: [String]) {
        var keyArgs: [[UInt8]]
        var argv: [[UInt8]] = [Array(String(idempotencyTTLMilliseconds).utf8)]
        switch header {
        case .none:
            keyArgs = []
            argv += [Array("0".utf8), []]
        case .batch(let batch):
            keyArgs = batch.keys
            argv += [Array(String(keyArgs.count).utf8)] + batch.arguments
        case .flushGroup(let marker, let lifetime):
            keyArgs = [Array(marker.utf8)]
            argv += [Array("3".utf8), Array(String(lifetime.wholeMilliseconds).utf8)]
        }
        // Each queue's three keys go into KEYS once, however many of its jobs the flush has; a
        // job names its queue by number. Markers (idempotency or job-id keys) follow the queues'.
        var queues: [String] = []
        var queueNumbers: [String: [UInt8]] = [:]
        var queueKeys: [[UInt8]] = []
        var markers: [[UInt8]] = []
        var jobArgs: [[UInt8]] = []
        jobArgs.reserveCapacity(jobs.count * 6)
        for job in jobs {
            let number: [UInt8]
            if let known = queueNumbers[job.queue] {
                number = known
            } else {
                queues.append(job.queue)
                number = Array(String(queues.count).utf8)
                queueNumbers[job.queue] = number
                queueKeys += [Array(keys.ready(job.queue).utf8), Array(keys.delayed(job.queue).utf8), Array(keys.wake(job.queue).utf8)]
            }
            // A producer's idempotency key already makes a second delivery a no-op; otherwise the
            // job id does, when asked for — the same SET NX PX step of the script either way.
            let marker = job.idempotencyKey.map { keys.idempotency(job.queue, key: $0) }
                ?? (deduplicatingByJobID ? keys.delivered(job.queue, jobID: job.id) : nil)
            jobArgs.append(number)
            jobArgs.append(Self.placementArgument(job.placement))
            jobArgs.append(Array(String(job.dueAt).utf8))
            jobArgs.append(job.bytes)
            if let marker {
                markers.append(Array(marker.utf8))
                jobArgs.append(Array(String(markers.count).utf8))
                jobArgs.append(Array(job.id.utf8))
            } else {
                jobArgs.append(Self.zero)
                jobArgs.append([])
            }
        }
        keyArgs += queueKeys
        keyArgs += markers
        argv.append(Array(String(queues.count).utf8))
        argv += jobArgs
        return (Self.enqueueScript.call(keys: keyArgs, arguments: argv), queues)
    }

    /// A fresh cross-slot flush id: 128 random bits in hex.
    static func flushID() -> String {
        (0..<2).map { _ in
            let hex = String(UInt64.random(in: .min ... .max), radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    private static let zero: [UInt8] = [UInt8(ascii: "0")]

    /// `r` back of the ready list, `f` its consuming end (priority), `d` the delayed set.
    private static func placementArgument(_ placement: OutgoingJob.Placement) -> [UInt8] {
        switch placement {
        case .back: [UInt8(ascii: "r")]
        case .front: [UInt8(ascii: "f")]
        case .delayed: [UInt8(ascii: "d")]
        }
    }

    /// Checks every key's type before writing anything, so a flush is never half applied.
    /// KEYS: the header keys (none; a joined batch's record; an opened batch's record and its
    /// queue's ready list; a cross-slot flush group's marker), then per queue of the flush, in
    /// order of first use, [ready list, delayed set, wake list], then the markers (idempotency or
    /// job-id keys) of the jobs that have one, in the jobs' order.
    /// ARGV: [idempotency ttl ms, header kind (0 none, 1 joined batch, 2 opened batch, 3 flush
    /// group), the header's arguments — see `BatchHeader.arguments`; for a flush group the
    /// marker's lifetime in ms; otherwise one empty string, the number of queues] + per job
    /// [queue number (1-based), mode r|f|d, score, envelope, marker number (1-based; 0: none),
    /// job id (empty without a marker)].
    /// A joined batch whose record is gone (expired, or never there) counts nothing; an opened
    /// one is created with the jobs queued as its total, or, when none was (an empty scope, every
    /// intent a duplicate), completed at once: its callbacks queued, onSuccess included.
    /// A flush group whose marker exists was delivered already: its outcomes are returned and
    /// nothing is written; otherwise the marker is written with the group, holding its outcomes.
    /// The jobs are written with one variadic `LPUSH`/`RPUSH`/`ZADD` per target (up to 1000
    /// arguments a call), in the jobs' order, after the per-job idempotency checks.
    static let enqueueScript = RedisScript("""
        #!lua
        \(BatchHeader.createFunction)
        local kb = tonumber(ARGV[2])
        local group = kb == 3
        local nk = group and 1 or kb
        local nq = tonumber(ARGV[kb == 2 and 10 or 4])
        local ab = kb == 2 and 11 or 5
        local mb = nk + nq * 3
        local n = (#ARGV - ab + 1) / 6
        local function check(key, want)
          local t = redis.call('TYPE', key).ok
          if t ~= 'none' and t ~= want then
            return 'WRONGTYPE key ' .. key .. ' holds a ' .. t .. ', expected a ' .. want .. '; nothing was enqueued'
          end
        end
        local checked = {}
        local function checkOnce(key, want)
          if checked[key] then return nil end
          checked[key] = true
          return check(key, want)
        end
        if group then
          local t = redis.call('TYPE', KEYS[1]).ok
          if t == 'list' then return redis.call('LRANGE', KEYS[1], 0, -1) end
          if t ~= 'none' then
            return redis.error_reply('WRONGTYPE key ' .. KEYS[1] .. ' holds a ' .. t .. ', expected a list; nothing was enqueued')
          end
        elseif kb > 0 then
          local bad = check(KEYS[1], 'hash')
          if not bad and kb == 2 then bad = check(KEYS[2], 'list') end
          if bad then return redis.error_reply(bad) end
        end
        for i = 0, n - 1 do
          local a = ab + i * 6
          local q = nk + (tonumber(ARGV[a]) - 1) * 3
          local delayed = ARGV[a + 1] == 'd'
          local bad = checkOnce(delayed and KEYS[q + 2] or KEYS[q + 1], delayed and 'zset' or 'list')
          local m = tonumber(ARGV[a + 4])
          if not bad and m > 0 then bad = checkOnce(KEYS[mb + m], 'string') end
          if not bad and delayed then bad = checkOnce(KEYS[q + 3], 'list') end
          if bad then return redis.error_reply(bad) end
        end
        local results = {}
        local woken = {}
        local queued = 0
        -- One variadic push per target and end (in the jobs' order), not one call per job.
        local pushes, order = {}, {}
        local function buffer(key, command)
          local byKey = pushes[key]
          if not byKey then
            byKey = {}
            pushes[key] = byKey
          end
          local p = byKey[command]
          if not p then
            p = {command = command, key = key, n = 0}
            byKey[command] = p
            order[#order + 1] = p
          end
          return p
        end
        for i = 0, n - 1 do
          local a = ab + i * 6
          local q = nk + (tonumber(ARGV[a]) - 1) * 3
          local mode, score, envelope, m = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4])
          local existing = false
          if m > 0 then
            existing = redis.call('SET', KEYS[mb + m], ARGV[a + 5], 'NX', 'PX', ARGV[1], 'GET')
          end
          if existing then
            results[i + 1] = existing
          else
            if mode == 'd' then
              local p = buffer(KEYS[q + 2], 'ZADD')
              p[p.n + 1] = score
              p[p.n + 2] = envelope
              p.n = p.n + 2
              if not woken[q] then
                redis.call('LPUSH', KEYS[q + 3], score)
                redis.call('LTRIM', KEYS[q + 3], 0, 0)
                woken[q] = true
              end
            else
              local p = buffer(KEYS[q + 1], mode == 'f' and 'RPUSH' or 'LPUSH')
              p.n = p.n + 1
              p[p.n] = envelope
            end
            results[i + 1] = ''
            queued = queued + 1
          end
        end
        for _, p in ipairs(order) do
          for i = 1, p.n, 1000 do
            redis.call(p.command, p.key, unpack(p, i, math.min(i + 999, p.n)))
          end
        end
        if kb == 1 and queued > 0 and redis.call('EXISTS', KEYS[1]) == 1 then
          redis.call('HINCRBY', KEYS[1], 'total', queued)
          redis.call('HINCRBY', KEYS[1], 'pending', queued)
        elseif kb == 2 then
          local batch = KEYS[1]
          if redis.call('EXISTS', batch) == 1 then
            redis.call('HINCRBY', batch, 'total', queued)
            redis.call('HINCRBY', batch, 'pending', queued)
          else
            createBatch(batch, queued)
            if queued == 0 then
              if ARGV[4] ~= '' then redis.call('LPUSH', KEYS[2], ARGV[4]) end
              if ARGV[5] ~= '' then redis.call('LPUSH', KEYS[2], ARGV[5]) end
              redis.call('HSET', batch, 'completed_at', ARGV[8])
              redis.call('EXPIRE', batch, ARGV[6])
            end
          end
        end
        if group then
          for i = 1, #results, 1000 do
            redis.call('RPUSH', KEYS[1], unpack(results, i, math.min(i + 999, #results)))
          end
          redis.call('PEXPIRE', KEYS[1], ARGV[3])
        end
        return results
        """)
}

/// Queue names this executor has registered in `<ns>:queues`, shared by its copies.
final class SharedSet: Sendable {
    private let names = Mutex<Set<String>>([])
    func withLock<R: Sendable>(_ body: (inout sending Set<String>) -> sending R) -> R { names.withLock(body) }
}

/// Why the Redis executor could not dispatch a batch.
public struct RedisExecutorError: AirlockError {
    /// The kind of failure, stable for code that branches on it.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Code: String, Sendable, Hashable {
            case payloadTooLarge, encodingFailed, notWritten, outcomeUnknown, protocolViolation, invalidIntent
            case notReplicated, deliveryPending
        }
        fileprivate let code: Code
        /// An envelope exceeded the payload limit; nothing was sent.
        public static let payloadTooLarge = Kind(code: .payloadTooLarge)
        /// A task's arguments could not be encoded; nothing was sent.
        public static let encodingFailed = Kind(code: .encodingFailed)
        /// Redis could not be reached or refused the batch; nothing was written.
        public static let notWritten = Kind(code: .notWritten)
        /// The connection broke after the batch was sent: it was applied entirely or not at all,
        /// and which is unknown. Idempotency keys make a retry safe.
        public static let outcomeUnknown = Kind(code: .outcomeUnknown)
        /// Redis answered something this code does not understand.
        public static let protocolViolation = Kind(code: .protocolViolation)
        /// An intent cannot become a valid job (a queue name outside the rule, a due time past
        /// year 9999, a retry count out of range); nothing was sent.
        public static let invalidIntent = Kind(code: .invalidIntent)
        /// Written to the primary, but fewer replicas than the executor's ``RedisExecutor/replication``
        /// requires received it in time (`WAIT`): a failover now could lose it. The jobs are queued
        /// and will run unless that happens; sending them again would queue them twice unless they
        /// carry idempotency keys.
        public static let notReplicated = Kind(code: .notReplicated)
        /// A flush spanning hash slots of a Redis Cluster is committed (its record is in Redis)
        /// but not every slot's jobs were delivered when the connection failed: the jobs are
        /// dispatched, and a worker delivers the rest within ``RedisExecutor/abandonedFlushDelay``
        /// plus its reaper interval. Do not send them again.
        public static let deliveryPending = Kind(code: .deliveryPending)
        /// The kind's name, e.g. `outcomeUnknown`.
        public var description: String { code.rawValue }
    }

    /// The kind of failure.
    public let kind: Kind
    /// What happened, in one line.
    public let description: String
    /// The Redis error behind it, if any.
    public let redisError: RedisError?
    /// For ``Kind/notReplicated``: how many replicas had received the batch when `WAIT` returned
    /// (nil when `WAIT` itself failed).
    public let replicasAcknowledged: Int?

    init(_ kind: Kind, _ description: String, redisError: RedisError? = nil, replicasAcknowledged: Int? = nil) {
        self.kind = kind
        self.description = description
        self.redisError = redisError
        self.replicasAcknowledged = replicasAcknowledged
    }

    /// The error for a `WAIT` reply short of `required`, nil when enough replicas have the batch.
    static func notReplicated(_ wait: RedisReply, required: RedisReplication) -> RedisExecutorError? {
        if case .integer(let count) = wait {
            guard count < required.replicas else { return nil }
            return RedisExecutorError(.notReplicated, "written to the primary, not yet replicated: \(count) of the required \(required) acknowledged the batch (a failover now could lose it)", replicasAcknowledged: count)
        }
        let reason = wait.errorMessage.map { "WAIT failed: \(SafeText.escape($0))" } ?? "unexpected reply to WAIT: \(wait)"
        return RedisExecutorError(.notReplicated, "written to the primary, not known to be replicated to \(required): \(reason)", redisError: wait.errorMessage.map(RedisError.server))
    }

    /// The Redis view of an intent that cannot become a job.
    init(_ error: EnqueueError) {
        switch error.kind {
        case .payloadTooLarge: self.init(.payloadTooLarge, error.description)
        case .encodingFailed: self.init(.encodingFailed, error.description)
        default: self.init(.invalidIntent, error.description)
        }
    }

    static func from(_ error: any Error) -> RedisExecutorError {
        guard let redis = error as? RedisError else { return RedisExecutorError(.notWritten, "\(error)") }
        if redis.mayHaveBeenApplied {
            return RedisExecutorError(.outcomeUnknown, "the connection broke after the batch was sent, so it was applied entirely or not at all: \(redis)", redisError: redis)
        }
        return RedisExecutorError(.notWritten, "nothing was enqueued: \(redis)", redisError: redis)
    }
}
