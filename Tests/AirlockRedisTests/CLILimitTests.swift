import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// `airlock-workerd limit` and the limit lines of `stats`, with the real binary on a real Redis.
@Suite("CLI: queue limits", .timeLimit(.minutes(5)))
struct CLILimitTests {
    typealias Kit = AdminTestKit

    @Test func limitSetsShowsAndClearsAndStatsShowsIt() async throws {
        let f = try await AdminFixture.make("cli-limit")
        try await f.addQueues("orders")

        let set = try await CLI.run(["limit", "orders", "--concurrency", "5", "--rate", "100/1s"], on: f)
        #expect(set.status == 0, "\(set)")
        #expect(set.stdout.contains("limit set to concurrency:5,rate:100/1s,burst:2"), "\(set)")
        #expect(try await f.command("HGETALL", f.keys.limit("orders")).fields() == ["concurrency": "5", "rate": "100", "interval_ms": "1000", "burst": "2"])

        // Worker ids are anyone's to write: one with terminal controls holds a lease.
        let hostileWorker = "w\u{1B}[31mred\u{07}"
        try await f.command("HSET", f.keys.limitHeld("orders"), hostileWorker, "3")
        let shown = try await CLI.run(["limit", "orders"], on: f)
        #expect(shown.status == 0, "\(shown)")
        #expect(shown.stdout.contains("orders: concurrency 5 (3 held) · rate 100/1s (burst 2)"), "\(shown)")
        #expect(shown.stdout.contains("3 held"))
        #expect(!CLI.hasTerminalControls(shown.stdout), "\(shown.stdout.debugDescription)")

        let json = try await CLI.run(["limit", "orders", "--json"], on: f)
        #expect(json.status == 0, "\(json)")
        let object = try Kit.object(json.stdout)
        #expect(object["schema"] == "airlock.limit/1")
        #expect(object["queue"] == "orders")
        #expect(object["limit"]?["concurrency"] == 5)
        #expect(object["limit"]?["held"] == 3)
        #expect(object["limit"]?["rate"] == 100)
        #expect(object["limit"]?["interval_ms"] == 1000)
        #expect(object["leases"]?[hostileWorker] == 3)

        let stats = try await CLI.run(["stats", "--no-rate"], on: f)
        #expect(stats.status == 0, "\(stats)")
        #expect(stats.stdout.contains("limit: orders: concurrency 5 (3 held) · rate 100/1s (burst 2)"), "\(stats)")
        let statsJSON = try Kit.object(try await CLI.run(["stats", "--json", "--no-rate"], on: f).stdout)
        let orders = statsJSON["queues"]?.arrayValue?.first { $0["name"] == "orders" }
        #expect(orders?["limit"]?["concurrency"] == 5)
        #expect(orders?["limit"]?["held"] == 3)
        #expect(orders?["limit"]?["burst"] == 2)

        let replaced = try await CLI.run(["limit", "orders", "--rate", "10/500ms", "--burst", "4"], on: f)
        #expect(replaced.status == 0, "\(replaced)")
        #expect(replaced.stdout.contains("(replacing concurrency:5,rate:100/1s,burst:2)"), "\(replaced)")
        #expect(try await f.command("HGETALL", f.keys.limit("orders")).fields() == ["rate": "10", "interval_ms": "500", "burst": "4"])

        let cleared = try await CLI.run(["limit", "orders", "--clear"], on: f)
        #expect(cleared.status == 0, "\(cleared)")
        #expect(cleared.stdout.contains("cleared the limit of queue 'orders'"), "\(cleared)")
        #expect(try await f.exists(f.keys.limit("orders")) == false)
        #expect(try await f.exists(f.keys.limitHeld("orders")) == false)
        let none = try await CLI.run(["limit", "orders"], on: f)
        #expect(none.stdout.contains("orders: no limit"), "\(none)")
        #expect(try await CLI.run(["limit", "orders", "--json"], on: f).stdout.contains("\"limit\":null"))
        #expect(!(try await CLI.run(["stats", "--no-rate"], on: f).stdout.contains("limit:")))
    }

    @Test func aHostileQueueNameInRedisIsEscapedInStats() async throws {
        let f = try await AdminFixture.make("cli-limit-hostile")
        let hostile = "evil\u{1B}]0;title\u{07}\u{202E}q"
        try await f.addQueues(hostile)
        try await f.command("HSET", f.keys.limit(hostile), "concurrency", "3")
        let stats = try await CLI.run(["stats", "--no-rate"], on: f)
        #expect(stats.status == 0, "\(stats)")
        #expect(stats.stdout.contains("concurrency 3 (0 held)"), "\(stats)")
        #expect(!CLI.hasTerminalControls(stats.stdout), "\(stats.stdout.debugDescription)")
    }

    @Test func unusableLimitsAreUsageErrors() async throws {
        let f = try await AdminFixture.make("cli-limit-usage")
        let cases: [([String], String)] = [
            (["limit", "orders", "--rate", "100"], "N/INTERVAL"),
            (["limit", "orders", "--burst", "3"], "--burst needs --rate"),
            (["limit", "orders", "--concurrency", "0"], "from 1"),
            (["limit", "orders", "--clear", "--concurrency", "2"], "--clear cannot be combined"),
            (["limit", "bad\u{1B}[2Jqueue", "--concurrency", "2"], "queue name"),
            (["run", "--limit", "orders"], "QUEUE=LIMIT"),
            (["run", "--limit", "orders=speed:9"], "unknown limit"),
        ]
        for (arguments, message) in cases {
            let result = try await CLI.run(arguments, on: f)
            #expect(result.status == 2, "\(arguments): \(result)")
            #expect(result.stderr.contains(message), "\(arguments): \(result)")
            #expect(!CLI.hasTerminalControls(result.stderr), "\(arguments): \(result.stderr.debugDescription)")
        }
        #expect(try await f.exists(f.keys.limit("orders")) == false, "nothing was written")
    }
}
