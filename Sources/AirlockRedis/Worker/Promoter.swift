import Airlock
import Foundation
import Logging

/// Moves due jobs from a queue's delayed set to its ready list.
///
/// It sleeps until the next due time rather than polling on a beat, and a producer that adds an
/// earlier job pushes to the queue's wake list, which a listener on its own connection turns
/// into an early wake-up. Promotion is one script with a bounded batch, so any number of
/// workers can promote the same queue without moving a job twice.
struct Promoter: Sendable {
    let route: QueueRoute
    var queue: String { route.queue }
    let keys: RedisKeys
    let client: RedisClient
    let configuration: WorkerConfiguration
    let connectionState: ConnectionState
    let logger: Logger
    static let batch = 500
    static let idleWait: Duration = .seconds(5)

    func run() async {
        let doorbell = Doorbell()
        await withDiscardingTaskGroup { group in
            group.addTask { await listen(doorbell) }
            group.addTask {
                await promote(doorbell)
            }
            // Both loops end only when the worker's task group is cancelled.
        }
    }

    private func promote(_ doorbell: Doorbell) async {
        let delayed = Array(keys.delayed(queue).utf8)
        let ready = Array(route.homeKey.utf8)
        var failures = 0
        while !Task.isCancelled {
            let now = epochMilliseconds()
            do {
                let reply = try await client.evalScript(
                    Self.promoteScript, keys: [delayed, ready],
                    args: [Array(String(now).utf8), Array(String(Self.batch).utf8), Self.horizon])
                connectionState.recovered("promote \(queue)")
                failures = 0
                let parts = reply.array ?? []
                let moved = parts.first?.int ?? 0
                if moved >= Self.batch { continue }
                // A score is whatever someone ZADDed: +inf, 1e300 or Int64.max must not trap.
                let next = parts.count > 1 ? parts[1].string.flatMap(Double.init).flatMap(Int64.init(saturating:)) : nil
                let wait = next.map { Duration.milliseconds(max(0, $0.subtractingSaturated(epochMilliseconds()))) } ?? Self.idleWait
                await doorbell.wait(until: .now + min(wait, Self.idleWait))
            } catch {
                connectionState.failed("promote \(queue)", error)
                failures += 1
                await connectionState.backoff(attempt: failures)
            }
        }
    }

    /// Blocks on the wake list on a connection of its own and rings when a producer pushed to it.
    private func listen(_ doorbell: Doorbell) async {
        let listener = RedisClient(configuration: configuration.redis, name: "airlock-wake", logger: logger)
        let wake = Array(keys.wake(queue).utf8)
        var failures = 0
        while !Task.isCancelled {
            do {
                let reply = try await listener.send([Array("BLPOP".utf8), wake, Array("0.5".utf8)])
                if !reply.isNull { doorbell.ring() }
                connectionState.recovered("wake \(queue)")
                failures = 0
            } catch {
                // Without the listener the promoter still wakes by itself at the next due time
                // (at most idleWait later), so a failure here is logged and retried, never fatal.
                if connectionState.failed("wake \(queue)", error) { break }
                failures += 1
                await connectionState.backoff(attempt: failures)
            }
        }
        await listener.close()
    }

    /// The latest score the wire protocol knows (end of year 9999, in ms).
    static let horizon = Array(String(acceptedEpochMilliseconds.upperBound).utf8)

    /// KEYS: delayed, ready. ARGV: now ms, batch, horizon ms. Returns {moved, next due score or false}.
    /// Entries scored beyond the horizon (`+inf`, `1e300`: never due) are promoted too, so the
    /// worker reads them and dead-letters them with a reason instead of keeping them forever.
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
