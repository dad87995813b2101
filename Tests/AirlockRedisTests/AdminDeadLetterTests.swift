import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

@testable import AirlockDaemon

/// `RedisAdmin` dead-letter operations: list, show, retry, purge.
@Suite("Admin: dead letters", .timeLimit(.minutes(5)))
struct AdminDeadLetterTests {
    typealias Kit = AdminTestKit

    @Test func listsNewestFirstAcrossQueuesWithALimit() async throws {
        let f = try await AdminFixture.make("dead-list")
        let t = epochMilliseconds()
        try await f.pushDead("a", [Kit.deadEntry(id: "a1", queue: "a", failedAt: t - 5000), Kit.deadEntry(id: "a2", queue: "a", failedAt: t - 1000)])
        try await f.pushDead("b", [Kit.deadEntry(id: "b1", queue: "b", failedAt: t - 3000), Kit.malformedEntry(id: "b2", queue: "b", raw: Array("oops".utf8), failedAt: t)])

        let page = try await f.admin.deadLetters()
        #expect(page.entries.map(\.id) == ["b2", "a2", "b1", "a1"])
        #expect(page.total == 4)
        #expect(page.entries[0].isMalformed)
        #expect(page.entries[0].task == nil)
        #expect(page.entries[1].task == "test.task")
        #expect(page.entries[1].error == "boom")
        #expect(page.entries[1].attempts == 4)
        #expect(page.entries[1].failedAtMilliseconds == t - 1000)
        #expect(page.entries[1].queue == "a")

        let limited = try await f.admin.deadLetters(limit: 2)
        #expect(limited.entries.map(\.id) == ["b2", "a2"])
        #expect(limited.total == 4)
        let onlyA = try await f.admin.deadLetters(queues: ["a"], limit: 0)
        #expect(onlyA.entries.map(\.id) == ["a2", "a1"])
        #expect(onlyA.total == 2)
        await #expect(throws: AdminError.self) { try await f.admin.deadLetters(queues: ["zzz"]) }
    }

    @Test func showsOneEntryInFullOrSaysItIsUnknown() async throws {
        let f = try await AdminFixture.make("dead-show")
        try await f.pushDead("a", [Kit.deadEntry(id: "job-1", queue: "a", extra: ["trace": "abc"]), Kit.deadEntry(id: "job-2", queue: "a")])
        let letter = try await f.admin.deadLetter(id: "job-1")
        #expect(letter.id == "job-1")
        #expect(letter.queue == "a")
        #expect(letter.fields["trace"] == "abc")
        let pretty = letter.prettyJSON
        #expect(pretty.hasPrefix("{\n  \"v\": 1,\n  \"id\": \"job-1\",\n  \"task\": \"test.task\""))
        #expect(try Kit.object(pretty) == letter.fields)

        // A substring of another id is not a match.
        let error = await #expect(throws: AdminError.self) { try await f.admin.deadLetter(id: "job") }
        #expect(error?.kind == .unknownDeadLetter)
        #expect(error?.description.contains("'job'") == true)
    }

    @Test func retryPutsTheJobBackWithAttemptZeroAndNoDeadLetterFields() async throws {
        let f = try await AdminFixture.make("dead-retry")
        let keep = Kit.deadEntry(id: "other", queue: "a")
        let entry = Kit.deadEntry(id: "job-1", queue: "a", error: "smtp down", attempts: 4, attempt: 3, extra: ["trace": "abc", "last_error": "x"])
        try await f.pushDead("a", [entry, keep])

        let results = try await f.admin.retryDeadLetters(ids: ["job-1"])
        #expect(results == [DeadLetterRetry(queue: "a", id: "job-1", task: "test.task", outcome: .requeued)])
        #expect(try await f.list(f.keys.dead("a")) == [keep])
        let ready = try await f.list(f.keys.ready("a"))
        #expect(ready.count == 1)
        let envelope = try Envelope.decode(ready[0])
        #expect(envelope.id == "job-1")
        #expect(envelope.attempt == 0)
        #expect(envelope.task == "test.task")
        #expect(envelope.args == [1, "two"])
        #expect(envelope.kwargs == ["k": true])
        #expect(envelope.maxRetries == 3)
        #expect(envelope.extra == ["trace": "abc"])
        let fields = try Kit.object(ready[0])
        for gone in ["error", "failed_at", "attempts", "last_error"] { #expect(fields[gone] == nil) }

        // Retrying it again finds nothing: it is no longer a dead letter.
        await #expect(throws: AdminError.self) { try await f.admin.retryDeadLetters(ids: ["job-1"]) }
        #expect(try await f.list(f.keys.ready("a")).count == 1)
    }

    @Test func anUnknownIdFailsTheWholeRetryBeforeMovingAnything() async throws {
        let f = try await AdminFixture.make("dead-retry-unknown")
        try await f.pushDead("a", [Kit.deadEntry(id: "job-1", queue: "a")])
        let error = await #expect(throws: AdminError.self) { try await f.admin.retryDeadLetters(ids: ["job-1", "nope"]) }
        #expect(error?.kind == .unknownDeadLetter)
        #expect(error?.description.contains("'nope'") == true)
        #expect(try await f.list(f.keys.dead("a")).count == 1)
        #expect(try await f.list(f.keys.ready("a")).isEmpty)
    }

    @Test func aMalformedMessageGoesBackAsItsRawBytes() async throws {
        let f = try await AdminFixture.make("dead-retry-raw")
        let binary: [UInt8] = [0xFF, 0xFE, 0x00, 0x41]
        try await f.pushDead("a", [
            Kit.malformedEntry(id: "m-text", queue: "a", raw: Array("{not json".utf8)),
            Kit.malformedEntry(id: "m-bin", queue: "a", raw: binary),
        ])
        let letter = try await f.admin.deadLetter(id: "m-text")
        #expect(letter.isMalformed)
        let results = try await f.admin.retryDeadLetters(ids: ["m-text", "m-bin"])
        #expect(Set(results.map(\.outcome)) == [.requeuedRaw])
        let ready = try await f.list(f.keys.ready("a"))
        #expect(Set(ready) == [Array("{not json".utf8), binary])
        #expect(try await f.list(f.keys.dead("a")).isEmpty)
    }

    @Test func retryAllMovesEveryEntryOldestFirstAndHonoursTheQueueFilter() async throws {
        let f = try await AdminFixture.make("dead-retry-all")
        let t = epochMilliseconds()
        // LPUSH order: o1 is oldest (rightmost), o3 newest.
        try await f.pushDead("a", (1...3).map { Kit.deadEntry(id: "o\($0)", queue: "a", failedAt: t - Int64(10 - $0)) })
        try await f.pushDead("b", [Kit.deadEntry(id: "b1", queue: "b")])

        let results = try await f.admin.retryAllDeadLetters(queues: ["a"])
        #expect(results.map(\.id) == ["o1", "o2", "o3"])
        #expect(results.allSatisfy { $0.outcome == .requeued })
        // Workers take from the right: the oldest failure runs first.
        let ready = try await f.list(f.keys.ready("a")).map { try Envelope.decode($0).id }
        #expect(ready == ["o3", "o2", "o1"])
        #expect(try await f.list(f.keys.dead("a")).isEmpty)
        #expect(try await f.list(f.keys.dead("b")).count == 1)

        let rest = try await f.admin.retryAllDeadLetters()
        #expect(rest.map(\.id) == ["b1"])
        #expect(try await f.list(f.keys.dead("b")).isEmpty)
    }

    @Test func retryAllOfManyEntriesIsChunkedAndLosesNone() async throws {
        let f = try await AdminFixture.make("dead-retry-many")
        let entries = (0..<1_234).map { Kit.deadEntry(id: "j\($0)", queue: "a") }
        try await f.pushDead("a", entries)
        let results = try await f.admin.retryAllDeadLetters()
        #expect(results.count == 1_234)
        #expect(results.allSatisfy { $0.outcome == .requeued })
        #expect(try await f.command("LLEN", f.keys.ready("a")).int == 1_234)
        #expect(try await f.command("LLEN", f.keys.dead("a")).int == 0)
        let ids = Set(try await f.list(f.keys.ready("a")).map { try Envelope.decode($0).id })
        #expect(ids == Set((0..<1_234).map { "j\($0)" }))
    }

    @Test func aMalformedEntryWithoutRawIsSkippedByRetryAllAndRefusedById() async throws {
        let f = try await AdminFixture.make("dead-no-raw")
        var bare: [UInt8] = []
        JSONWriter.write(["v": 1, "id": "bare", "task": nil, "queue": "a", "error": "x", "failed_at": 1, "attempts": 0], into: &bare)
        try await f.pushDead("a", [bare, Kit.deadEntry(id: "fine", queue: "a")])
        let error = await #expect(throws: AdminError.self) { try await f.admin.retryDeadLetters(ids: ["bare"]) }
        #expect(error?.kind == .invalidInput)
        let results = try await f.admin.retryAllDeadLetters()
        #expect(results.first { $0.id == "bare" }.map { if case .skipped = $0.outcome { true } else { false } } == true)
        #expect(results.first { $0.id == "fine" }?.outcome == .requeued)
        #expect(try await f.list(f.keys.dead("a")) == [bare])
    }

    @Test func anExpiredJobIsRequeuedWithANote() async throws {
        let f = try await AdminFixture.make("dead-expired")
        let expired = epochMilliseconds() - 1000
        try await f.pushDead("a", [Kit.deadEntry(id: "late", queue: "a", expires: expired)])
        let result = try #require(try await f.admin.retryDeadLetters(ids: ["late"]).first)
        #expect(result.outcome == .requeued)
        #expect(result.expiredAtMilliseconds == expired)
    }

    @Test func purgeRemovesEveryEntryOrOnlyTheSelectedOnes() async throws {
        let f = try await AdminFixture.make("dead-purge")
        try await f.pushDead("a", [Kit.deadEntry(id: "a1", queue: "a"), Kit.malformedEntry(id: "a2", queue: "a", raw: Array("x".utf8))])
        try await f.pushDead("b", (0..<5).map { Kit.deadEntry(id: "b\($0)", queue: "b") })
        try await f.addQueues("c")

        #expect(try await f.admin.deleteDeadLetters(ids: ["a2"]) == 1)
        #expect(try await f.list(f.keys.dead("a")).count == 1)
        await #expect(throws: AdminError.self) { try await f.admin.deleteDeadLetters(ids: ["a2"]) }

        #expect(try await f.admin.purgeDeadLetters(queues: ["b"]) == ["b": 5])
        #expect(try await f.admin.purgeDeadLetters() == ["a": 1])
        #expect(try await f.admin.purgeDeadLetters() == [:])
        #expect(try await f.admin.deadLetters().total == 0)
        #expect(try await f.admin.queueNames() == ["a", "b", "c"])
    }

    @Test func jsonFollowsTheDocumentedSchema() async throws {
        let f = try await AdminFixture.make("dead-json")
        try await f.pushDead("a", [Kit.deadEntry(id: "a1", queue: "a"), Kit.malformedEntry(id: "a2", queue: "a", raw: Array("x".utf8))])
        let json = try Kit.object(try await f.admin.deadLetters().json)
        let documented = try Kit.documentedExample("airlock.dead/1")
        #expect(Kit.keyPaths(.object(json)) == Kit.keyPaths(.object(documented)))
        #expect(json["total"] == 2)
        let entries = try #require(json["entries"]?.arrayValue)
        #expect(entries.map { $0["id"] } == ["a2", "a1"])
        #expect(entries[0]["malformed"] == true)
        #expect(entries[0]["task"] == .null)
        #expect(entries[1]["entry"]?["kwargs"] == ["k": true])
    }
}
