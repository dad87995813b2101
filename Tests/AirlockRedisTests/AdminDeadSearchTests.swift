import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// `RedisAdmin` dead-letter search (task, queue, error text, time range, paging) and the bulk
/// retry and delete of everything a search matches.
@Suite("Admin: dead-letter search", .timeLimit(.minutes(5)))
struct AdminDeadSearchTests {
    typealias Kit = AdminTestKit

    /// Two queues of dead letters with known tasks, errors and times (newest at the left, as the worker writes them).
    func seed(_ f: AdminFixture, at t: Int64) async throws {
        try await f.pushDead("mail", [
            Kit.deadEntry(id: "m1", task: "mail.send", queue: "mail", error: "SMTP timeout", failedAt: t - 50_000),
            Kit.deadEntry(id: "m2", task: "mail.send", queue: "mail", error: "550 mailbox unavailable", failedAt: t - 40_000),
            Kit.malformedEntry(id: "m3", queue: "mail", raw: Array("{broken".utf8), failedAt: t - 30_000),
            Kit.deadEntry(id: "m4", task: "mail.digest", queue: "mail", error: "smtp TIMEOUT again", failedAt: t - 10_000),
        ])
        try await f.pushDead("pay", [
            Kit.deadEntry(id: "p1", task: "pay.charge", queue: "pay", error: "card <script>alert(1)</script> \"declined\"", failedAt: t - 45_000),
            Kit.deadEntry(id: "p2", task: "pay.refund", queue: "pay", error: "timeout", failedAt: t - 20_000),
        ])
    }

    @Test func deadListSearchesByTaskErrorTextAndTime() async throws {
        let f = try await AdminFixture.make("dead-search-cli")
        let t = epochMilliseconds()
        try await seed(f, at: t)
        func ids(_ arguments: [String]) async throws -> [String] {
            let result = try await CLI.run(["dead", "list", "--json"] + arguments, on: f)
            #expect(result.status == 0, "\(arguments): \(result)")
            return try Kit.object(result.stdout)["entries"]?.arrayValue?.compactMap { $0.objectValue?["id"]?.stringValue } ?? []
        }
        #expect(try await ids(["--task", "MAIL", "--grep", "timeout"]) == ["m4", "m1"])
        #expect(try await ids(["--grep", "<script>", "--queue", "pay"]) == ["p1"])
        // Within 35 s of the CLI's clock, a little after `t`: m4 (t − 10 s) and p2 (t − 20 s) surely,
        // nothing that failed 40 s or more before `t`.
        let recent = try await ids(["--since", "35s"])
        #expect(recent.starts(with: ["m4", "p2"]) && recent.allSatisfy { ["m4", "p2", "m3"].contains($0) }, "\(recent)")
        let stamp = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(t - 25_000) / 1000))
        #expect(try await ids(["--since", stamp]) == ["m4", "p2"])
        #expect(try await ids(["--task", "no-such-task"]).isEmpty)

        let table = try await CLI.run(["dead", "list", "--grep", "timeout", "--limit", "1"], on: f)
        #expect(table.status == 0 && table.stdout.contains("m4") && table.stdout.contains("showing 1 of 3 dead letters"), "\(table)")
        let bad = try await CLI.run(["dead", "list", "--since", "yesterday"], on: f)
        #expect(bad.status == 2 && bad.stderr.contains("--since needs a duration"), "\(bad)")
    }

    @Test func searchesByTaskErrorQueueAndTimeNewestFirstWithPaging() async throws {
        let f = try await AdminFixture.make("dead-search")
        let t = epochMilliseconds()
        try await seed(f, at: t)

        let before = f.admin.roundTrips
        let all = try await f.admin.searchDeadLetters(DeadLetterQuery())
        #expect(f.admin.roundTrips - before == 2)
        #expect(all.total == 6)
        #expect(all.entries.map(\.id) == ["m4", "p2", "m3", "m2", "p1", "m1"])

        let timeouts = try await f.admin.searchDeadLetters(DeadLetterQuery(error: "TimeOut"))
        #expect(timeouts.entries.map(\.id) == ["m4", "p2", "m1"], "error text, ASCII case-insensitive")
        #expect(timeouts.total == 3)
        let mailTask = try await f.admin.searchDeadLetters(DeadLetterQuery(task: "MAIL."))
        #expect(mailTask.entries.map(\.id) == ["m4", "m2", "m1"], "the malformed entry has no task")
        let both = try await f.admin.searchDeadLetters(DeadLetterQuery(task: "mail.send", error: "timeout"))
        #expect(both.entries.map(\.id) == ["m1"])
        let onlyPay = try await f.admin.searchDeadLetters(DeadLetterQuery(queues: ["pay"], error: "timeout"))
        #expect(onlyPay.entries.map(\.id) == ["p2"])
        let window = try await f.admin.searchDeadLetters(DeadLetterQuery(failedFromMilliseconds: t - 45_000, failedBeforeMilliseconds: t - 20_000))
        #expect(window.entries.map(\.id) == ["m3", "m2", "p1"], "from is inclusive, before exclusive")
        let hostile = try await f.admin.searchDeadLetters(DeadLetterQuery(error: "<script>alert(1)</script> \"declined\""))
        #expect(hostile.entries.map(\.id) == ["p1"], "a needle with quotes is matched on the decoded text")
        #expect(try await f.admin.searchDeadLetters(DeadLetterQuery(task: "nothing")).total == 0)

        let page2 = try await f.admin.searchDeadLetters(DeadLetterQuery(), offset: 2, limit: 2)
        #expect(page2.entries.map(\.id) == ["m3", "m2"])
        #expect(page2.total == 6)
        #expect(page2.offset == 2)
        let filteredPage = try await f.admin.searchDeadLetters(DeadLetterQuery(error: "timeout"), offset: 1, limit: 1)
        #expect(filteredPage.entries.map(\.id) == ["p2"])
        #expect(filteredPage.total == 3)
        await #expect(throws: AdminError.self) { try await f.admin.searchDeadLetters(DeadLetterQuery(queues: ["nope"])) }

        // The server-side test and the Swift one agree.
        let query = DeadLetterQuery(task: "mail", error: "timeout")
        #expect(all.entries.filter(query.matches).map(\.id) == ["m4", "m1"])
    }

    @Test func retriesEverythingAMatchMovesAndNothingElse() async throws {
        let f = try await AdminFixture.make("dead-retry-match")
        let t = epochMilliseconds()
        try await seed(f, at: t)
        let keptMail = try await f.list(f.keys.dead("mail")).filter { try Kit.object($0)["id"] != "m1" && Kit.object($0)["id"] != "m4" }

        let before = f.admin.roundTrips
        let results = try await f.admin.retryDeadLetters(matching: DeadLetterQuery(queues: ["mail"], error: "timeout"))
        #expect(f.admin.roundTrips - before == 3)
        #expect(results.map(\.id) == ["m1", "m4"], "oldest first")
        #expect(results.allSatisfy { $0.outcome == .requeued })
        // The rest of the list is untouched, in order.
        #expect(try await f.list(f.keys.dead("mail")) == keptMail)
        // Oldest failure nearest the consuming end (the right).
        let ready = try await f.list(f.keys.ready("mail")).map { try Envelope.decode($0) }
        #expect(ready.map(\.id) == ["m4", "m1"])
        #expect(ready.allSatisfy { $0.attempt == 0 })
        #expect(try await f.list(f.keys.dead("pay")).count == 2, "other queues are not touched")

        // A second run finds nothing left to move.
        #expect(try await f.admin.retryDeadLetters(matching: DeadLetterQuery(queues: ["mail"], error: "timeout")).isEmpty)
    }

    @Test func deletesEverythingAMatchSelects() async throws {
        let f = try await AdminFixture.make("dead-delete-match")
        let t = epochMilliseconds()
        try await seed(f, at: t)
        #expect(try await f.admin.deleteDeadLetters(matching: DeadLetterQuery(error: "timeout")) == 3)
        let left = try await f.admin.searchDeadLetters(DeadLetterQuery())
        #expect(left.entries.map(\.id) == ["m3", "m2", "p1"])
        #expect(try await f.list(f.keys.ready("mail")).isEmpty, "deleting pushes nothing")
        // No criteria: whole lists.
        #expect(try await f.admin.deleteDeadLetters(matching: DeadLetterQuery(queues: ["pay"])) == 1)
        #expect(try await f.admin.searchDeadLetters(DeadLetterQuery()).total == 2)
    }

    @Test func aLargeListIsSearchedAndRetriedInChunks() async throws {
        let f = try await AdminFixture.make("dead-bulk")
        let t = epochMilliseconds()
        // 6000 entries, every third one matching: more than one bulk chunk and many read chunks.
        var entries: [[UInt8]] = []
        for i in 0..<6000 {
            entries.append(Kit.deadEntry(id: "e\(i)", task: i % 3 == 0 ? "bulk.hit" : "bulk.miss", queue: "bulk", failedAt: t - Int64(6000 - i)))
        }
        for start in stride(from: 0, to: entries.count, by: 1000) {
            try await f.pushDead("bulk", Array(entries[start..<start + 1000]))
        }
        let page = try await f.admin.searchDeadLetters(DeadLetterQuery(task: "bulk.hit"), offset: 1990, limit: 20)
        #expect(page.total == 2000)
        #expect(page.entries.count == 10)
        #expect(page.entries.first?.id == "e27")
        let results = try await f.admin.retryDeadLetters(matching: DeadLetterQuery(task: "hit"))
        #expect(results.count == 2000)
        #expect(results.allSatisfy { $0.outcome == .requeued })
        #expect(try await f.command("LLEN", f.keys.ready("bulk")).integer() == 2000)
        let left = try await f.list(f.keys.dead("bulk"))
        #expect(left.count == 4000)
        #expect(try left.allSatisfy { try Kit.object($0)["task"] == "bulk.miss" })
    }
}
