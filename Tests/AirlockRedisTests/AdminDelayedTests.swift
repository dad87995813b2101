import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// `RedisAdmin` over delayed sets: list by due time with paging, run now, delete.
@Suite("Admin: delayed jobs", .timeLimit(.minutes(5)))
struct AdminDelayedTests {
    typealias Kit = AdminTestKit

    func delay(_ f: AdminFixture, _ queue: String, id: String, dueIn: Int64, attempt: Int = 0, lastError: String? = nil) async throws -> [UInt8] {
        var extra: [String: JSONValue] = [:]
        if let lastError { extra["last_error"] = .string(lastError) }
        let now = epochMilliseconds()
        var envelope = Envelope(id: id, task: "t.\(queue)", queue: queue, enqueuedAt: now - 1000, eta: now + dueIn, attempt: attempt, extra: extra)
        envelope.maxRetries = 5
        let bytes = envelope.encoded()
        try await f.addQueues(queue)
        _ = try await f.command(bytes: [Array("ZADD".utf8), Array(f.keys.delayed(queue).utf8), Array(String(now + dueIn).utf8), bytes])
        return bytes
    }

    @Test func listsSoonestFirstAcrossQueuesWithPaging() async throws {
        let f = try await AdminFixture.make("delayed-list")
        _ = try await delay(f, "a", id: "a-late", dueIn: 90_000)
        _ = try await delay(f, "a", id: "a-soon", dueIn: 10_000, attempt: 2, lastError: "timeout")
        _ = try await delay(f, "b", id: "b-mid", dueIn: 50_000)
        _ = try await delay(f, "b", id: "b-last", dueIn: 120_000)

        let before = f.admin.roundTrips
        let page = try await f.admin.delayedJobs(limit: 2)
        #expect(f.admin.roundTrips - before == 2)
        #expect(page.total == 4)
        #expect(page.entries.map(\.id) == ["a-soon", "b-mid"])
        #expect(page.entries[0].isRetry)
        #expect(page.entries[0].lastError == "timeout")
        #expect(page.entries[0].attempt == 2)
        #expect(page.entries[0].task == "t.a")
        #expect(!page.entries[1].isRetry)
        #expect(page.entries[0].dueAtMilliseconds < page.entries[1].dueAtMilliseconds)

        let second = try await f.admin.delayedJobs(offset: 2, limit: 2)
        #expect(second.entries.map(\.id) == ["a-late", "b-last"])
        #expect(second.offset == 2)
        let onlyB = try await f.admin.delayedJobs(queues: ["b"])
        #expect(onlyB.entries.map(\.id) == ["b-mid", "b-last"])
        #expect(onlyB.total == 2)
        await #expect(throws: AdminError.self) { try await f.admin.delayedJobs(queues: ["nope"]) }
    }

    @Test func runNowMovesTheJobToTheReadyListWithItsEtaNow() async throws {
        let f = try await AdminFixture.make("delayed-run")
        let keep = try await delay(f, "a", id: "keep", dueIn: 60_000)
        _ = try await delay(f, "a", id: "job-1", dueIn: 60_000, attempt: 1, lastError: "x")
        let before = epochMilliseconds()
        #expect(try await f.admin.runDelayedNow(queue: "a", ids: ["job-1", "job-"]) == 1, "a prefix of an id is not the id")
        let after = epochMilliseconds()
        let ready = try await f.list(f.keys.ready("a"))
        #expect(ready.count == 1)
        let envelope = try Envelope.decode(ready[0])
        #expect(envelope.id == "job-1")
        #expect(envelope.attempt == 1)
        #expect(envelope.extra["last_error"] == "x")
        let eta = try #require(envelope.eta)
        #expect((before...after).contains(eta), "a worker would postpone a job whose eta is still ahead")
        let members = (try await f.command("ZRANGE", f.keys.delayed("a"), "0", "-1").array ?? []).compactMap(\.bytes)
        #expect(members == [keep])
        // Gone already: nothing happens.
        #expect(try await f.admin.runDelayedNow(queue: "a", ids: ["job-1"]) == 0)
        await #expect(throws: AdminError.self) { try await f.admin.runDelayedNow(queue: "zz", ids: ["job-1"]) }
    }

    @Test func deleteRemovesOnlyTheNamedJobs() async throws {
        let f = try await AdminFixture.make("delayed-delete")
        _ = try await delay(f, "a", id: "one", dueIn: 60_000)
        _ = try await delay(f, "a", id: "two\"<b>", dueIn: 70_000)
        let three = try await delay(f, "a", id: "three", dueIn: 80_000)
        #expect(try await f.admin.deleteDelayed(queue: "a", ids: ["one", "two\"<b>", "missing"]) == 2)
        let members = (try await f.command("ZRANGE", f.keys.delayed("a"), "0", "-1").array ?? []).compactMap(\.bytes)
        #expect(members == [three])
        #expect(try await f.list(f.keys.ready("a")).isEmpty)
    }
}
