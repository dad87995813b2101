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
    let connectionState: ConnectionState
    let logger: Logger

    /// Registers the worker and beats until cancelled.
    func heartbeat() async {
        var failures = 0
        while !Task.isCancelled {
            do {
                try await beat()
                connectionState.recovered("heartbeat")
                failures = 0
                try? await Task.sleep(for: configuration.heartbeatInterval)
            } catch {
                connectionState.failed("heartbeat", error)
                failures += 1
                await ConnectionState.backoff(attempt: failures)
            }
        }
    }

    func beat() async throws(RedisError) {
        let ttl = String(Int(configuration.heartbeatTTL.timeInterval * 1000))
        var hset: [[UInt8]] = [Array("HSET".utf8), Array(keys.workerInfo(worker).utf8)]
        for (field, value) in info.merging(["in_flight": String(held()), "heartbeat_at": String(epochMilliseconds())], uniquingKeysWith: { $1 }) {
            hset.append(Array(field.utf8))
            hset.append(Array(value.utf8))
        }
        var commands: [[[UInt8]]] = [
            [Array("SET".utf8), Array(keys.heartbeat(worker).utf8), Array("1".utf8), Array("PX".utf8), Array(ttl.utf8)],
            hset,
            [Array("SADD".utf8), Array(keys.workers.utf8), Array(worker.utf8)],
        ]
        for queue in configuration.queues { commands.append([Array("SADD".utf8), Array(keys.queues.utf8), Array(queue.utf8)]) }
        let replies = try await client.pipeline(commands)
        if let error = replies.first(where: { $0.errorMessage != nil })?.errorMessage { throw RedisError.server(error) }
    }

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
            ])
            if fromWorker > 0 {
                logger.warning("recovered jobs of a dead worker", metadata: ["dead_worker": "\(deadWorker)", "jobs": "\(fromWorker)"])
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
        #!lua
        local moved = 0
        while redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT') do moved = moved + 1 end
        return moved
        """)
}
