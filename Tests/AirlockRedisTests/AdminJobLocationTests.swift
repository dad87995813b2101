import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// `RedisAdmin.locateJob`: ready (with the jobs ahead), delayed, in flight on which worker, dead, or nowhere.
@Suite("Admin: where is a job", .timeLimit(.minutes(5)))
struct AdminJobLocationTests {
    typealias Kit = AdminTestKit

    @Test func findsTheJobWhereverItIs() async throws {
        let f = try await AdminFixture.make("locate")
        // ready: next in line is at the right; "r-2" has one job ahead of it.
        try await f.pushReady("mail", [Kit.envelope(id: "r-1", queue: "mail"), Kit.envelope(id: "r-2", queue: "mail"), Kit.envelope(id: "r-3", queue: "mail")])
        // The pushReady order: r-1 pushed first, so it is rightmost (taken next).
        let due = epochMilliseconds() + 60_000
        _ = try await f.command(bytes: [Array("ZADD".utf8), Array(f.keys.delayed("mail").utf8), Array(String(due).utf8), Kit.envelope(id: "d-1", queue: "mail")])
        try await f.registerWorker("w-1", alive: true, queues: ["mail", "other"])
        try await f.addQueues("other")
        _ = try await f.command(bytes: [Array("LPUSH".utf8), Array(f.keys.inflight("other", worker: "w-1").utf8), Kit.envelope(id: "f-1", queue: "other")])
        try await f.pushDead("mail", [Kit.deadEntry(id: "x-1", queue: "mail"), Kit.deadEntry(id: "x-2", queue: "mail")])

        let before = f.admin.roundTrips
        let ready = try await f.admin.locateJob(id: "r-2")
        #expect(f.admin.roundTrips - before == 2)
        #expect(ready.complete)
        #expect(ready.queuesSearched == 2)
        #expect(ready.locations.map(\.queue) == ["mail"])
        #expect(ready.locations.first?.place == .ready(ahead: 1))
        #expect(ready.locations.first?.fields["task"] == "test.task")
        #expect(try await f.admin.locateJob(id: "r-1").locations.first?.place == .ready(ahead: 0))
        #expect(try await f.admin.locateJob(id: "r-3").locations.first?.place == .ready(ahead: 2))

        let delayed = try await f.admin.locateJob(id: "d-1")
        #expect(delayed.locations.first?.place == .delayed(dueAtMilliseconds: due))
        let inFlight = try await f.admin.locateJob(id: "f-1")
        #expect(inFlight.locations.first?.place == .inFlight(worker: "w-1"))
        #expect(inFlight.locations.first?.queue == "other")
        let dead = try await f.admin.locateJob(id: "x-1")
        #expect(dead.locations.first?.place == .dead(index: 1))

        let nowhere = try await f.admin.locateJob(id: "r-")
        #expect(nowhere.isNotFound, "a prefix of ids is no id")
        #expect(nowhere.complete)
    }

    @Test func aJobInTwoPlacesIsReportedInBothAndTheScanLimitIsReported() async throws {
        let f = try await AdminFixture.make("locate-two")
        let id = "dup\"\\<id>"
        try await f.pushReady("q", [Kit.envelope(id: id, queue: "q")] + (0..<5).map { _ in Kit.envelope(queue: "q") })
        try await f.pushDead("q", [Kit.deadEntry(id: id, queue: "q")])
        let both = try await f.admin.locateJob(id: id)
        #expect(both.locations.map(\.place) == [.ready(ahead: 0), .dead(index: 0)], "ids with quotes and backslashes are found as the JSON writer stores them")

        // Only the first 2 from the consuming end are searched: the job is found there, and the search says it was cut.
        let limited = try await f.admin.locateJob(id: id, scanLimit: 2)
        #expect(!limited.complete)
        #expect(limited.locations.map(\.place) == [.ready(ahead: 0), .dead(index: 0)])
        let missed = try await f.admin.locateJob(id: "not-there", scanLimit: 2)
        #expect(missed.isNotFound)
        #expect(!missed.complete)
    }
}
