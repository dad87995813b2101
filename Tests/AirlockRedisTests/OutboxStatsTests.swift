import Airlock
import AirlockRedis
import AirlockRedisClient
import Foundation
import Testing

/// The outbox section of `airlock-workerd stats`: read from the reports PostgreSQL outbox relays
/// publish in Redis (`<ns>:outbox:relay:<id>`), so the daemon never connects to PostgreSQL.
@Suite("Admin: outbox relay reports", .timeLimit(.minutes(5)))
struct OutboxStatsTests {
    @Test("no relay → 'no relay reporting' and null figures; two relays → the latest report's depth, deliveries summed, escaped error")
    func statsShowTheRelaysReports() async throws {
        let f = try await AdminFixture.make("outbox-stats")
        try await f.addQueues("default")
        let none = try await CLI.run(["stats", "--no-rate"], on: f)
        #expect(none.status == 0, "\(none)")
        #expect(none.stdout.contains("outbox: no relay reporting"), "\(none)")
        let noneJSON = try AdminTestKit.object(try await CLI.run(["stats", "--no-rate", "--json"], on: f).stdout)
        #expect(noneJSON["outbox"]?["relays"] == 0)
        #expect(noneJSON["outbox"]?["pending"] == .null)

        let now = epochMilliseconds()
        try await OutboxRelayReport(relayID: "host-1-a", pending: 7, oldestPendingAgeMilliseconds: 4_200, parked: 1, delivered: 10,
                                    lastError: nil, reportedAtMilliseconds: now - 3_000)
            .publish(on: f.raw, keys: f.keys, ttl: .seconds(60))
        try await OutboxRelayReport(relayID: "host-2-b", pending: 5, oldestPendingAgeMilliseconds: 2_000, parked: 1, delivered: 32,
                                    lastError: "Redis said \u{1B}[2Jno", reportedAtMilliseconds: now)
            .publish(on: f.raw, keys: f.keys, ttl: .seconds(60))
        #expect(try await f.command("PTTL", f.keys.outboxRelay("host-2-b")).integer() > 0, "a report expires unless refreshed")

        let summary = try await f.admin.outboxSummary()
        #expect(summary.relays.map(\.relayID) == ["host-2-b", "host-1-a"])
        let text = try await CLI.run(["stats", "--no-rate"], on: f)
        #expect(text.status == 0, "\(text)")
        #expect(text.stdout.contains("outbox: 5 pending (oldest 2.0s), 1 parked · 2 relays, last report"), "\(text)")
        #expect(text.stdout.contains(#"last error: Redis said \x1b[2Jno"#), "\(text)")
        #expect(!CLI.hasTerminalControls(text.stdout))
        let json = try AdminTestKit.object(try await CLI.run(["stats", "--no-rate", "--json"], on: f).stdout)
        #expect(json["outbox"]?["relays"] == 2)
        #expect(json["outbox"]?["pending"] == 5)
        #expect(json["outbox"]?["parked"] == 1)
        #expect(json["outbox"]?["delivered"] == 42)
        #expect(json["outbox"]?["oldest_pending_age_ms"] == 2_000)

        // An expired report is left out.
        try await f.command("DEL", f.keys.outboxRelay("host-2-b"))
        #expect(try await f.admin.outboxSummary().relays.map(\.relayID) == ["host-1-a"])
    }
}
