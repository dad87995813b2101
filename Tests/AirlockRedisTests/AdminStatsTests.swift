import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

@testable import AirlockDaemon

/// `RedisAdmin.stats`: what each column means, the JSON schema, and what a sample costs.
@Suite("Admin: queue stats", .timeLimit(.minutes(5)))
struct AdminStatsTests {
    typealias Kit = AdminTestKit

    @Test func countsEveryPartOfAQueue() async throws {
        let f = try await AdminFixture.make("stats-parts")
        let now = epochMilliseconds()
        // Next in line (rightmost) was enqueued 30 s ago.
        try await f.pushReady("mail", [Kit.envelope(queue: "mail", enqueuedAt: now - 30_000), Kit.envelope(queue: "mail"), Kit.envelope(queue: "mail")])
        try await f.command("ZADD", f.keys.delayed("mail"), String(now + 60_000), "d1", String(now + 90_000), "d2")
        try await f.pushDead("mail", [Kit.deadEntry(queue: "mail")])
        try await f.command("HSET", f.keys.stats("mail"), "processed", "40", "failed", "7", "retried", "5", "dead", "2", "expired", "1")
        try await f.command("SET", f.keys.paused("mail"), "1")
        // In flight: two registered workers (one dead), plus a list of an unregistered one that must not count.
        try await f.registerWorker("w-alive", alive: true, queues: ["mail"])
        try await f.registerWorker("w-dead", alive: false, queues: ["mail"])
        try await f.command("LPUSH", f.keys.inflight("mail", worker: "w-alive"), "a", "b")
        try await f.command("LPUSH", f.keys.inflight("mail", worker: "w-dead"), "c")
        try await f.command("LPUSH", f.keys.inflight("mail", worker: "w-gone"), "x", "y", "z")
        try await f.addQueues("empty")

        let report = try await f.admin.statsSample()
        #expect(report.queues.map(\.name) == ["empty", "mail"])
        let mail = try #require(report[queue: "mail"])
        #expect(mail.ready == 3)
        #expect(mail.delayed == 2)
        #expect(mail.inFlight == 3)
        #expect(mail.dead == 1)
        #expect(mail.paused)
        #expect(mail.counters == QueueCounters(processed: 40, failed: 7, retried: 5, deadLettered: 2, expired: 1))
        let age = try #require(mail.oldestReadyAgeMilliseconds)
        // 30 s plus however long this test took to get here (no fixed bound: load moves it).
        let sinceSeeded = epochMilliseconds() - now
        #expect(age >= 30_000 && age <= 30_000 + sinceSeeded + 1, "age \(age) ms, \(sinceSeeded) ms since seeding")
        #expect(mail.processedPerSecond == nil)

        let empty = try #require(report[queue: "empty"])
        #expect(empty == QueueStats(name: "empty"))
        #expect(report.totals.queues == 2)
        #expect(report.totals.pausedQueues == 1)
        #expect(report.totals.ready == 3)
        #expect(report.totals.inFlight == 3)
        #expect(report.totals.oldestReadyAgeMilliseconds == mail.oldestReadyAgeMilliseconds)
        #expect(report.workers == WorkerCounts(registered: 2, alive: 1))
        #expect(report.workers.dead == 1)
    }

    @Test func latencyCountsFromTheEtaOfAPromotedDelayedJob() async throws {
        let f = try await AdminFixture.make("stats-eta")
        let now = epochMilliseconds()
        // Enqueued an hour ago with a countdown that came due 2 s ago: it has waited 2 s, not an hour.
        try await f.pushReady("q", [Kit.envelope(queue: "q", enqueuedAt: now - 3_600_000, eta: now - 2_000)])
        let age = try #require(try await f.admin.statsSample()[queue: "q"]?.oldestReadyAgeMilliseconds)
        #expect(age >= 2_000 && age <= 2_000 + (epochMilliseconds() - now) + 1, "age \(age) ms")

        // A malformed message next in line has no age; the queue is still reported.
        try await f.command("RPUSH", f.keys.ready("q"), "not json")
        let row = try #require(try await f.admin.statsSample()[queue: "q"])
        #expect(row.ready == 2)
        #expect(row.oldestReadyAgeMilliseconds == nil)
    }

    @Test func rateComesFromTwoSamples() async throws {
        let f = try await AdminFixture.make("stats-rate")
        try await f.command("HSET", f.keys.stats("a"), "processed", "100")
        try await f.addQueues("a", "b")
        let started = ContinuousClock.now
        let first = try await f.admin.statsSample()
        try await Task.sleep(for: .milliseconds(200))
        try await f.command("HINCRBY", f.keys.stats("a"), "processed", "50")
        let second = try await f.admin.statsSample().withRates(since: first)
        let elapsed = ContinuousClock.now - started
        let rate = try #require(second[queue: "a"]?.processedPerSecond)
        let interval = try #require(second.rateIntervalSeconds)
        // The interval is the time between the samples: at least the sleep, at most what the test
        // measured around both (a bound from this run's own clock, not a guess at the machine's speed).
        #expect(interval >= 0.2 && interval <= elapsed.timeInterval + 0.002)
        #expect(abs(rate - 50 / interval) < 0.001)
        #expect(second[queue: "b"]?.processedPerSecond == 0)
        #expect(second.totals.processedPerSecond == rate)

        // stats(interval:) does the same; nil or zero takes one sample without rates.
        let rated = try await f.admin.stats(interval: .milliseconds(100))
        #expect(rated.rateIntervalSeconds != nil)
        #expect(rated[queue: "a"]?.processedPerSecond == 0)
        let single = try await f.admin.stats(interval: nil)
        #expect(single.rateIntervalSeconds == nil)
        #expect(single.totals.processedPerSecond == nil)
    }

    @Test func filtersQueuesAndRejectsUnknownOnes() async throws {
        let f = try await AdminFixture.make("stats-filter")
        try await f.addQueues("a", "b", "c")
        let report = try await f.admin.statsSample(queues: ["c", "a"])
        #expect(report.queues.map(\.name) == ["c", "a"])
        #expect(report.totals.queues == 2)
        let error = await #expect(throws: AdminError.self) { try await f.admin.statsSample(queues: ["a", "nope"]) }
        #expect(error?.kind == .unknownQueue)
        #expect(error?.description.contains("'nope'") == true)
        #expect(error?.description.contains("a, b, c") == true)
    }

    @Test func emptyNamespaceReportsNothingWithoutFailing() async throws {
        let f = try await AdminFixture.make("stats-empty")
        let report = try await f.admin.stats(interval: .milliseconds(10))
        #expect(report.queues.isEmpty)
        #expect(report.totals.queues == 0)
        #expect(report.workers == WorkerCounts(registered: 0, alive: 0))
        _ = try Kit.object(report.json)
    }

    @Test func jsonFollowsTheDocumentedSchema() async throws {
        let f = try await AdminFixture.make("stats-json")
        try await f.pushReady("default", [Kit.envelope()])
        try await f.command("SET", f.keys.paused("default"), "1")
        try await f.registerWorker("w1", alive: true, queues: ["default"])
        let report = try await f.admin.stats(interval: .milliseconds(50))
        let json = try Kit.object(report.json)

        // Same key paths as the example in docs/OPERATIONS.md, no more, no fewer.
        let documented = try Kit.documentedExample("airlock.stats/1")
        #expect(Kit.keyPaths(.object(json)) == Kit.keyPaths(.object(documented)))

        #expect(json["schema"] == "airlock.stats/1")
        #expect(json["namespace"]?.stringValue == f.namespace)
        #expect(json["sampled_at_ms"]?.intValue == Int(report.sampledAtMilliseconds))
        #expect(json["sampled_at"]?.stringValue?.hasSuffix("Z") == true)
        #expect(json["interval_seconds"]?.doubleValue != nil)
        let queue = try #require(json["queues"]?.arrayValue?.first?.objectValue)
        #expect(queue["name"] == "default")
        #expect(queue["ready"] == 1)
        #expect(queue["paused"] == true)
        #expect(queue["oldest_ready_age_ms"]?.intValue != nil)
        #expect(queue["processed_per_second"]?.doubleValue == 0)
        #expect(json["totals"]?["paused_queues"] == 1)
        #expect(json["workers"]?["alive"] == 1)
        #expect(json["workers"]?["dead"] == 0)
    }

    /// 100 queues, three holding 10k jobs each: a sample is two round trips and a fixed set of
    /// O(1) commands per queue and worker, whatever the number of jobs.
    @Test func aSampleCostsTwoRoundTripsAndNoScans() async throws {
        let server = try await RedisServer.start() // private: INFO commandstats must see only this test
        let f = try await AdminFixture.make("stats-cost", server: server)
        let queues = (0..<100).map { String(format: "q%03d", $0) }
        var seed: [[[UInt8]]] = [[Array("SADD".utf8), Array(f.keys.queues.utf8)] + queues.map { Array($0.utf8) }]
        for queue in queues.prefix(3) {
            for batch in 0..<10 {
                var command = [Array("LPUSH".utf8), Array(f.keys.ready(queue).utf8)]
                for n in 0..<1000 {
                    command.append(Array(#"{"v":1,"id":"\#(batch)-\#(n)","task":"t","queue":"\#(queue)","enqueued_at":1}"#.utf8))
                }
                seed.append(command)
            }
            seed.append([Array("ZADD".utf8), Array(f.keys.delayed(queue).utf8), Array("1".utf8), Array("x".utf8)])
        }
        _ = try await f.raw.pipeline(seed)
        try await f.registerWorker("w1", alive: true, queues: queues)
        try await f.registerWorker("w2", alive: false, queues: queues)
        #expect(try await f.command("LLEN", f.keys.ready("q000")).int == 10_000)

        try await f.admin.client.connect() // the handshake's PING is not part of the sample
        try await f.command("CONFIG", "RESETSTAT")
        let before = f.admin.roundTrips
        let report = try await f.admin.statsSample()
        #expect(f.admin.roundTrips - before == 2)
        #expect(report.queues.count == 100)
        #expect(report.totals.ready == 30_000)

        let calls = try await commandCalls(f)
        let workers = 2
        #expect(calls["smembers"] == 2)
        #expect(calls["llen"] == 100 * (2 + workers)) // ready, dead, and each worker's in-flight list
        #expect(calls["zcard"] == 100)
        #expect(calls["lindex"] == 100)
        #expect(calls["hgetall"] == 1 + 100 * 3) // the partitioned queues; per queue the stats hash, the limit record and its leases
        #expect(calls["exists"] == 100 + workers) // pause flags, heartbeats
        let scans: Set<String> = ["lrange", "zrange", "zrangebyscore", "scan", "keys", "sscan", "hscan", "sort", "lpos"]
        // One ZRANGE: the outbox relays' registry (`<ns>:outbox:relays`, one entry per relay, pruned
        // after a day), read in the first round trip with the two sets — not a scan of jobs.
        #expect(calls["zrange"] == 1)
        #expect(calls.keys.filter { scans.contains($0) && $0 != "zrange" }.isEmpty)
        let data = calls.filter { !["info", "config|resetstat", "config"].contains($0.key) }.values.reduce(0, +)
        #expect(data == 4 + 100 * (8 + workers) + workers)

        // With a rate: two samples, four round trips.
        let beforeRate = f.admin.roundTrips
        _ = try await f.admin.stats(interval: .milliseconds(20))
        #expect(f.admin.roundTrips - beforeRate == 4)
    }

    /// `cmdstat_<name>:calls=N,...` lines of INFO commandstats, as name → calls.
    private func commandCalls(_ f: AdminFixture) async throws -> [String: Int] {
        let info = try #require(try await f.command("INFO", "commandstats").string)
        var calls: [String: Int] = [:]
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_") {
            let parts = line.dropFirst("cmdstat_".count).split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let field = parts[1].split(separator: ",").first(where: { $0.hasPrefix("calls=") }),
                  let count = Int(field.dropFirst("calls=".count)) else { continue }
            calls[String(parts[0])] = count
        }
        return calls
    }
}
