import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// The per-second time series: written by the settle script, bounded by a TTL,
/// read back by `RedisAdmin.throughput` in two round trips.
@Suite("Admin: throughput series", .timeLimit(.minutes(5)))
struct AdminThroughputTests {
    @Test func workersCountProcessedAndFailedJobsPerSecondInAnExpiringHash() async throws {
        let harness = try await WorkerHarness.make("series-worker")
        var registry = TaskRegistry()
        registry.register("series.ok") { _, _ in }
        registry.register("series.bad") { _, _ in throw PermanentFailure("no") }
        try await harness.enqueue {
            for _ in 0..<7 { try Airlock.enqueue(name: "series.ok") }
            for _ in 0..<3 { try Airlock.enqueue(name: "series.bad") }
        }
        try await harness.withWorker(try harness.configuration(), registry: registry) { _ in
            try await WorkerKit.eventually("settled") {
                let stats = try await harness.stats()
                return stats["processed"] == 7 && stats["dead"] == 3
            }
        }
        let admin = RedisAdmin(client: harness.redis, namespace: harness.namespace)
        let series = try await admin.throughput(queues: ["default"], seconds: 300)
        #expect(series.count == 300)
        #expect(series.processedTotal == 7)
        #expect(series.failedTotal == 3)
        #expect(series.queues == ["default"])

        // One hash per minute, fields p<s>/f<s>, with a TTL of at most 65 min.
        let now = epochMilliseconds() / 1000
        let minutes = RedisAdmin.minutes(endSecond: now, seconds: 300)
        var hashes = 0
        for minute in minutes {
            let key = harness.keys.series("default", minute: minute)
            let fields = try await harness.redis.send("HGETALL", key).fields()
            guard !fields.isEmpty else { continue }
            hashes += 1
            #expect(fields.keys.allSatisfy { ($0.hasPrefix("p") || $0.hasPrefix("f")) && Int($0.dropFirst()).map { (0..<60).contains($0) } == true })
            let ttl = try await harness.redis.send("TTL", key).integer()
            #expect((1...3900).contains(ttl))
        }
        #expect(hashes >= 1)
    }

    @Test func sumsQueuesCutsTheWindowAndIgnoresJunk() async throws {
        let f = try await AdminFixture.make("series-read")
        try await f.addQueues("a", "b", "idle")
        let now = epochMilliseconds() / 1000
        let (minute, second) = now.quotientAndRemainder(dividingBy: 60)
        // This second: a 3 processed + 1 failed, b 2 processed. 2 minutes ago (inside a 5-minute window): a 5.
        try await f.command("HSET", f.keys.series("a", minute: minute), "p\(second)", "3", "f\(second)", "1", "junk", "9", "p61", "4", "pxx", "1")
        try await f.command("HSET", f.keys.series("b", minute: minute), "p\(second)", "2", "f\(second)", "nope")
        try await f.command("HSET", f.keys.series("a", minute: minute - 2), "p0", "5")
        // Two hours ago: outside any window.
        try await f.command("HSET", f.keys.series("a", minute: minute - 120), "p0", "100")

        let before = f.admin.roundTrips
        let series = try await f.admin.throughput(seconds: 300)
        #expect(f.admin.roundTrips - before == 2)
        #expect(series.queues == ["a", "b", "idle"])
        #expect(series.count == 300)
        #expect(series.startSecond + 299 >= now, "the window ends with the current second")
        #expect(series.processedTotal == 10)
        #expect(series.failedTotal == 1)
        let index = Int(minute * 60 + second - series.startSecond)
        #expect(series.processed[index] == 5)
        #expect(series.failed[index] == 1)
        #expect(series.processed[Int((minute - 2) * 60 - series.startSecond)] == 5)

        let onlyB = try await f.admin.throughput(queues: ["b"], seconds: 60)
        #expect(onlyB.processedTotal == 2)
        #expect(onlyB.failedTotal == 0)
        await #expect(throws: AdminError.self) { try await f.admin.throughput(queues: ["zzz"]) }

        let perQueue = try await f.admin.throughputMinutes(queues: ["a", "b"], minutes: (minute - 2)...minute)
        #expect(perQueue["a"]?.keys.sorted() == [minute - 2, minute])
        #expect(perQueue["b"]?[minute]?.processed[Int(second)] == 2)
        #expect(perQueue["b"]?[minute - 1] == nil)
    }

    @Test func windowArithmetic() {
        #expect(RedisAdmin.minutes(endSecond: 3599, seconds: 3600) == 0...59)
        #expect(RedisAdmin.minutes(endSecond: 3600, seconds: 3600) == 0...60)
        #expect(RedisAdmin.minutes(endSecond: 119, seconds: 1) == 1...1)
        var m = ThroughputMinute(minute: 2)
        m.processed[0] = 4
        m.failed[59] = 2
        let series = ThroughputSeries(queues: ["q"], endSecond: 180, seconds: 62, minutes: [2: m, 3: ThroughputMinute(minute: 3)])
        #expect(series.startSecond == 119)
        #expect(series.processed.count == 62)
        #expect(series.processed[1] == 4)
        #expect(series.failed[60] == 2)
        #expect(series.processedTotal == 4)
    }
}
