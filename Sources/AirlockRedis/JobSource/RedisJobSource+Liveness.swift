import Airlock
import AirlockRedisClient
public import AirlockWorker
import Logging

extension RedisJobSource {
    /// Refreshes the heartbeat key and the load in the worker's description (every tenth beat the
    /// whole description and the queue registrations too: they only matter again if Redis lost them).
    public func heartbeat(held: Int) async throws -> HeartbeatResult {
        let current = try current()
        let beat = current.beats.next()
        let reaped = try await self.beat(current, held: held, full: beat % 10 == 0)
        if reaped { return .reaped }
        if beat % 10 == 5, configuration.wireProtocol == .native, await partitionsGrew(current) { return .queuesChanged }
        return .alive
    }

    /// Whether a queue this worker consumes was given more partitions than it opened with (said
    /// once per queue and count, so a worker that could not pick them up does not loop): the
    /// worker then restarts in place and opens the source again, consuming them all.
    private func partitionsGrew(_ run: Run) async -> Bool {
        guard let declared = try? await QueuePartitions.declared(run.control, keys: keys) else { return false }
        var grew = false
        for (queue, partitions) in run.partitions {
            guard let count = declared[queue], count > partitions.count else { continue }
            let first = partitionWarnings.withLock { warned in warned.updateValue(count, forKey: queue) != count }
            guard first else { continue }
            logger.notice("a queue this worker consumes has more partitions than it opened with", metadata: [
                "queue": "\(SafeText.escape(queue))", "partitions": "\(count)", "consuming": "\(partitions.count)"])
            grew = true
        }
        return grew
    }

    /// One heartbeat script call; true when it found the tombstone a reaper leaves.
    func beat(_ run: Run, held: Int, full: Bool) async throws(RedisError) -> Bool {
        let worker = run.worker
        let queues = full ? worker.queues : []
        var args: [[UInt8]] = [
            Array(String(worker.heartbeatTTL.wholeMilliseconds).utf8), Array(worker.id.utf8), Array(String(queues.count).utf8),
        ]
        args += queues.map { Array($0.utf8) }
        let load = ["in_flight": String(held), "heartbeat_at": String(epochMilliseconds())]
        for (field, value) in full ? worker.description.merging(load, uniquingKeysWith: { $1 }) : load {
            args.append(Array(field.utf8))
            args.append(Array(value.utf8))
        }
        let reply = try await run.control.evalScript(
            Self.heartbeatScript,
            keys: [
                Array(keys.heartbeat(worker.id).utf8), Array(keys.workerInfo(worker.id).utf8), Array(keys.workers.utf8),
                Array(keys.queues.utf8), Array(keys.reaped(worker.id).utf8),
            ],
            args: args)
        let reaped = try reply.integer() == 1
        // The reaper deleted the description: the next beat restores it.
        if reaped { run.beats.reset() }
        return reaped
    }

    /// Finds registered workers whose heartbeat expired and moves each of their in-flight lists
    /// back to the consuming end of its queue, oldest job nearest it; deregisters them and leaves
    /// a tombstone a stalled one learns from at its next heartbeat.
    /// On a Redis Cluster it also completes cross-slot flushes a producer left unfinished
    /// (``RedisExecutor/completeAbandonedFlushes(limit:)``) and counts the batch tallies of every
    /// queue that a worker settled but did not count (docs/PROTOCOL.md, "A batch across slots");
    /// neither is counted in the return value.
    public func recoverAbandonedJobs() async throws -> Int {
        let client = try current().control
        if client.configuration.cluster != nil {
            _ = try await RedisExecutor(client: client, namespace: keys.namespace, logger: logger).completeAbandonedFlushes()
            // Batch outcomes a worker settled but died before counting (BatchTallies).
            let registered = try await client.send(RedisCommand("SMEMBERS", keys.queues)).strings()
            try await BatchTallies.fold(queues: registered, client: client, keys: keys, logger: logger)
        }
        let me = try current().worker.id
        let others = try await client.send(RedisCommand("SMEMBERS", keys.workers)).strings().filter { $0 != me }
        guard !others.isEmpty else { return 0 }
        let alive = try await client.pipeline(others.map { RedisCommand("EXISTS", keys.heartbeat($0)) })
        var dead: [String] = []
        for (worker, reply) in zip(others, alive) where try reply.throwingServerError().integer() == 0 { dead.append(worker) }
        guard !dead.isEmpty else { return 0 }
        let queues = try await client.send(RedisCommand("SMEMBERS", keys.queues)).strings()
        var recovered = 0
        for deadWorker in dead {
            // The dead worker's protocol decides where its jobs go back to.
            let protocolName = try await client.send(RedisCommand("HGET", keys.workerInfo(deadWorker), "protocol")).string
            let wireProtocol = protocolName.flatMap(WireProtocol.init(rawValue:)) ?? .native
            let calls = queues.map { queue in
                Self.recoverScript.call(
                    keys: [
                        Array(keys.inflight(queue, worker: deadWorker).utf8), Array(homeKey(queue, protocol: wireProtocol).utf8),
                        Array(keys.limitHeld(queue).utf8), Array(keys.limitWake(queue).utf8), Array(keys.limit(queue).utf8),
                    ],
                    arguments: [Array(deadWorker.utf8)])
            }
            var fromWorker = 0
            for reply in try await client.evaluate(calls) { fromWorker += try reply.throwingServerError().integer() }
            for reply in try await client.pipeline([
                RedisCommand("SREM", keys.workers, deadWorker),
                RedisCommand("DEL", keys.workerInfo(deadWorker)),
                RedisCommand("SET", keys.reaped(deadWorker), "1", "EX", 3600),
            ]) { _ = try reply.throwingServerError() }
            if fromWorker > 0 {
                logger.warning("recovered jobs of a dead worker", metadata: ["dead_worker": "\(SafeText.escape(deadWorker))", "jobs": "\(fromWorker)"])
            }
            recovered += fromWorker
        }
        return recovered
    }

    /// Removes this worker's registration (and its concurrency leases, all zero by now) after a
    /// clean shutdown (nothing left in flight).
    func deregister(_ run: Run) async {
        _ = try? await run.control.pipeline([
            RedisCommand("SREM", keys.workers, run.worker.id),
            RedisCommand("DEL", keys.heartbeat(run.worker.id), keys.workerInfo(run.worker.id)),
        ] + run.worker.queues.map { RedisCommand("HDEL", keys.limitHeld($0), run.worker.id) })
    }

    func homeKey(_ queue: String, protocol wireProtocol: WireProtocol) -> String {
        switch wireProtocol {
        case .native: keys.ready(queue)
        case .celery: queue
        }
    }

    /// KEYS: heartbeat key, info hash, workers set, queues set, reaped tombstone. ARGV: ttl ms,
    /// worker id, queue count, the queues, then info field/value pairs. Returns 1 when the
    /// tombstone was there (a reaper recovered this worker's jobs), else 0. A script flagged
    /// allow-oom, so a Redis at its memory limit still hears that this worker is alive (and does
    /// not reap its jobs while it drains them).
    static let heartbeatScript = RedisScript("""
        #!lua flags=allow-oom
        local reaped = redis.call('DEL', KEYS[5])
        redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
        redis.call('SADD', KEYS[3], ARGV[2])
        local queues = tonumber(ARGV[3])
        for i = 4, 3 + queues do redis.call('SADD', KEYS[4], ARGV[i]) end
        local first = 4 + queues
        if #ARGV >= first then
          redis.call('HSET', KEYS[2], unpack(ARGV, first))
        end
        return reaped
        """)

    /// KEYS: a dead worker's in-flight list, the queue's ready list, limit leases, limit wake
    /// list, limit. ARGV: the dead worker's id. Moves every job back to the consuming end, oldest
    /// ending nearest it, and returns the worker's concurrency lease: deleted, with a wake token
    /// per job it counted for workers blocked on the limit. Returns the count moved.
    static let recoverScript = RedisScript("""
        #!lua flags=allow-oom
        \(LeaseRelease.function)
        local moved = 0
        while redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT') do moved = moved + 1 end
        local lease = tonumber(redis.call('HGET', KEYS[3], ARGV[1]))
        if lease then
          redis.call('HDEL', KEYS[3], ARGV[1])
          releaseLeases(KEYS[4], KEYS[5], lease)
        end
        return moved
        """)
}
