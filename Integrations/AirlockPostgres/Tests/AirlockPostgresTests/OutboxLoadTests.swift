import Airlock
import AirlockPostgres
import AirlockRedis
import AirlockRedisClient
import Foundation
import PostgresNIO
import Testing

@Suite("Outbox: three relays and the fast path under load", .timeLimit(.minutes(20)))
struct OutboxLoadTests {
    /// `AIRLOCK_OUTBOX_LOAD_TX` transactions from 8 connections: the 20,000 by default.
    /// Measured alone in a debug build on the 2-core machine (load average 6–8): 61 s at 20,000,
    /// 18 s at 5,000 — 44 s more for the figure. `AIRLOCK_OUTBOX_LOAD_TX=5000` for a quicker run.
    static let transactions = ProcessInfo.processInfo.environment["AIRLOCK_OUTBOX_LOAD_TX"].flatMap(Int.init) ?? 20_000

    @Test("20,000 transactions (AIRLOCK_OUTBOX_LOAD_TX) from 8 connections, 3 relays and the fast path, Redis killed and restarted mid-run → 0 lost, 0 queued twice")
    func threeRelaysAndARedisRestart() async throws {
        let kit = try await OutboxKit.make("load")
        let redis = try await OwnRedis.start()
        do {
            try await kit.run { client in
                let outbox = Outbox(executor: try kit.executor(url: redis.url), postgres: client, fastPathCooldown: .milliseconds(200),
                                    logger: quietLogger)
                let relays = try (0..<3).map { _ in try kit.relay(try kit.executor(url: redis.url), client) }
                let total = Self.transactions
                let reader = RedisClient(configuration: try RedisConfiguration(url: redis.url), logger: quietLogger)
                let ids = try await withServices([outbox] + relays) {
                    async let committed = commitProbes(total, connections: 8, outbox: outbox, client: client)
                    // Mid-run: once a third is queued, kill Redis, let commits pile up in the outbox, start it again.
                    try await eventually("a third of the transactions commit") {
                        try await kit.queuedCount(redis: reader) >= total / 3
                    }
                    try await redis.stop()
                    try await eventually("commits go on with Redis down") { try await kit.rows(client) >= 200 }
                    try await redis.start()
                    let ids = try await committed
                    try await eventually("the relays drain the outbox") { try await kit.rows(client) == 0 }
                    return ids
                }
                #expect(ids.count == total)
                let queued = try await kit.queuedJobIDs(redis: reader)
                var counts: [String: Int] = [:]
                for id in queued { counts[id, default: 0] += 1 }
                let lost = Set(ids).subtracting(counts.keys)
                let twice = counts.filter { $0.value > 1 }
                #expect(lost.isEmpty, "lost: \(lost.count)")
                #expect(twice.isEmpty, "queued twice: \(twice.count)")
                #expect(queued.count == total)
                let delivered = relays.map(\.delivered)
                #expect(delivered.reduce(0, +) > 0, "the relays delivered what the outage left: \(delivered)")
                print("outbox load: \(total) transactions, relays delivered \(delivered), the fast path the rest")
                await reader.close()
            }
        } catch {
            await redis.destroy()
            throw error
        }
        await redis.destroy()
    }
}
