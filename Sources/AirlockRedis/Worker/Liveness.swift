import Airlock
import Foundation
import Logging

/// Proves this worker is alive, and recovers the jobs of workers that are not.
///
/// Each worker refreshes an expiring key every ``WorkerConfiguration/heartbeatInterval``. Every
/// worker also runs the reaper: a registered worker whose key has expired is dead, and each of
/// its in-flight lists is moved back to the consuming end of its queue, oldest job first.
struct Liveness: Sendable {
    let worker: String
    let keys: RedisKeys
    let client: RedisClient
    let configuration: WorkerConfiguration
    let info: [String: String]
    let held: @Sendable () -> Int
    /// Called when a heartbeat learns that a reaper recovered this worker's jobs while it was stalled.
    let reaped: @Sendable () -> Void
    let connectionState: ConnectionState
    let logger: Logger

    /// Registers the worker and beats until cancelled.
    func heartbeat() async {
        var failures = 0
        var beats = 0
        while !Task.isCancelled {
            do {
                // The static description and queue registrations are refreshed every tenth beat
                // (they only matter again if Redis lost them); liveness and load every beat.
                if try await beat(full: beats % 10 == 0) {
                    logger.error("this worker stalled past its heartbeat TTL and a reaper returned its jobs to their queues; dropping the unstarted jobs it still held instead of running them twice")
                    reaped()
                    beats = 0 // the reaper deleted the description: the next beat restores it
                    continue
                }
                beats += 1
                connectionState.recovered("heartbeat")
                failures = 0
                try? await Task.sleep(for: configuration.heartbeatInterval)
            } catch {
                connectionState.failed("heartbeat", error)
                failures += 1
                await connectionState.backoff(attempt: failures)
            }
        }
    }

    /// Refreshes the heartbeat; returns true when a reaper had recovered this worker's jobs.
    @discardableResult
    func beat(full: Bool = true) async throws(RedisError) -> Bool {
        let ttl = String(Int(configuration.heartbeatTTL.timeInterval * 1000))
        let queues = full ? configuration.queues : []
        var args: [[UInt8]] = [Array(ttl.utf8), Array(worker.utf8), Array(String(queues.count).utf8)]
        args += queues.map { Array($0.utf8) }
        let load = ["in_flight": String(held()), "heartbeat_at": String(epochMilliseconds())]
        for (field, value) in full ? info.merging(load, uniquingKeysWith: { $1 }) : load {
            args.append(Array(field.utf8))
            args.append(Array(value.utf8))
        }
        let reply = try await client.evalScript(
            Self.heartbeatScript,
            keys: [
                Array(keys.heartbeat(worker).utf8), Array(keys.workerInfo(worker).utf8), Array(keys.workers.utf8), Array(keys.queues.utf8),
                Array(keys.reaped(worker).utf8),
            ],
            args: args)
        return reply.int == 1
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

    /// Looks for dead workers every ``WorkerConfiguration/reaperInterval`` until cancelled.
    func reap() async {
        while !Task.isCancelled {
            do {
                try await reapOnce()
            } catch {
                connectionState.failed("reaper", error)
            }
            let jitter = Double.random(in: 0.8...1.2)
            try? await Task.sleep(for: configuration.reaperInterval * jitter)
        }
    }

    /// One pass: returns how many jobs were recovered.
    @discardableResult
    func reapOnce() async throws(RedisError) -> Int {
        let members = (try await client.send([Array("SMEMBERS".utf8), Array(keys.workers.utf8)]).array ?? []).compactMap(\.string)
        let others = members.filter { $0 != worker }
        guard !others.isEmpty else { return 0 }
        let alive = try await client.pipeline(others.map { [Array("EXISTS".utf8), Array(keys.heartbeat($0).utf8)] })
        let dead = zip(others, alive).filter { $0.1.int == 0 }.map(\.0)
        guard !dead.isEmpty else { return 0 }
        let queues = (try await client.send([Array("SMEMBERS".utf8), Array(keys.queues.utf8)]).array ?? []).compactMap(\.string)
        var recovered = 0
        for deadWorker in dead {
            // The dead worker's protocol decides where its jobs go back to.
            let protocolName = try await client.send([Array("HGET".utf8), Array(keys.workerInfo(deadWorker).utf8), Array("protocol".utf8)]).string
            let wireProtocol = protocolName.flatMap(WireProtocol.init(rawValue:)) ?? .native
            var fromWorker = 0
            for queue in queues {
                let home = QueueRoute(queue: queue, protocol: wireProtocol, keys: keys).homeKey
                let reply = try await client.evalScript(
                    Self.recoverScript,
                    keys: [Array(keys.inflight(queue, worker: deadWorker).utf8), Array(home.utf8)], args: [])
                fromWorker += reply.int ?? 0
            }
            _ = try await client.pipeline([
                [Array("SREM".utf8), Array(keys.workers.utf8), Array(deadWorker.utf8)],
                [Array("DEL".utf8), Array(keys.workerInfo(deadWorker).utf8)],
                [Array("SET".utf8), Array(keys.reaped(deadWorker).utf8), Array("1".utf8), Array("EX".utf8), Array("3600".utf8)],
            ])
            if fromWorker > 0 {
                logger.warning("recovered jobs of a dead worker", metadata: ["dead_worker": "\(SafeText.escape(deadWorker))", "jobs": "\(fromWorker)"])
            }
            recovered += fromWorker
        }
        return recovered
    }

    /// Removes this worker's registration after a clean shutdown (nothing left in flight).
    func deregister() async {
        _ = try? await client.pipeline([
            [Array("SREM".utf8), Array(keys.workers.utf8), Array(worker.utf8)],
            [Array("DEL".utf8), Array(keys.heartbeat(worker).utf8), Array(keys.workerInfo(worker).utf8)],
        ])
    }

    /// KEYS: a dead worker's in-flight list, the queue's ready list. Moves every job back to the
    /// consuming end, oldest ending nearest it. Returns the count.
    static let recoverScript = RedisScript("""
        #!lua flags=allow-oom
        local moved = 0
        while redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT') do moved = moved + 1 end
        return moved
        """)
}
