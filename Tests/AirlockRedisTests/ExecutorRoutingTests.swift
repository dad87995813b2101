import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// Where each intent lands: which queue, which end of the ready list, or the delayed set.
@Suite("RedisExecutor routing, ordering and delays", .timeLimit(.minutes(5)))
struct ExecutorRoutingTests {
    typealias Kit = ExecutorTestKit

    // MARK: Ready list order

    @Test func producersPushLeftAndConsumersTakeTheOldestFromTheRight() async throws {
        let fixture = try await ExecutorFixture.make("route-fifo")
        try await fixture.flush {
            for n in 0..<5 { try Airlock.enqueue(name: "job", args: [.int(n)]) }
        }
        try await fixture.flush {
            for n in 5..<8 { try Airlock.enqueue(name: "job", args: [.int(n)]) }
        }
        // Left end is the newest …
        let raw = try await fixture.ready("default").map { try Envelope.decode($0).args }
        #expect(raw == (0..<8).reversed().map { [.int($0)] })
        // … and RPOP hands them out oldest first, in enqueue order across flushes.
        var popped: [JSONValue] = []
        while let envelope = try await fixture.popReady("default") { popped.append(contentsOf: envelope.args) }
        #expect(popped == (0..<8).map { .int($0) })
    }

    @Test func queueNamesAreRegisteredInTheQueuesSet() async throws {
        let fixture = try await ExecutorFixture.make("route-set")
        try await fixture.flush {
            try Airlock.enqueue(name: "a")
            try Airlock.enqueue(name: "b", options: DispatchOptions(queue: "mail"))
            try Airlock.enqueue(name: "c", options: DispatchOptions(queue: "reports", countdown: .seconds(60)))
            try Airlock.enqueue(name: "d", options: DispatchOptions(queue: "mail"))
        }
        #expect(try await fixture.queueNames() == ["default", "mail", "reports"])
        #expect(try await fixture.command("TYPE", fixture.keys.queues) == .status("set"))
        #expect(try await fixture.ready("mail").count == 2)
        #expect(try await fixture.ready("default").count == 1)
        #expect(try await fixture.delayed("reports").count == 1)
        #expect(try await fixture.ready("reports").isEmpty)
    }

    @Test func intentsWithoutAQueueGoToTheExecutorsDefaultQueue() async throws {
        let fixture = try await ExecutorFixture.make("route-default", defaultQueue: "fallback")
        try await fixture.flush {
            try Airlock.enqueue(name: "no.queue")
            try Airlock.enqueue(name: "routed", options: DispatchOptions(queue: "elsewhere"))
        }
        let fallback = try await fixture.readyEnvelopes("fallback")
        #expect(fallback.map(\.task) == ["no.queue"])
        #expect(fallback.first?.queue == "fallback")
        #expect(try await fixture.readyEnvelopes("elsewhere").map(\.task) == ["routed"])
        #expect(try await fixture.ready("default").isEmpty)
        #expect(try await fixture.allKeys() == [fixture.keys.ready("elsewhere"), fixture.keys.ready("fallback"), fixture.keys.queues].sorted())
    }

    @Test func keysUseTheNamespaceAndAHashTaggedQueue() async throws {
        let fixture = try await ExecutorFixture.make("route-keys")
        try await fixture.flush {
            try Airlock.enqueue(name: "now", options: DispatchOptions(queue: "q1"))
            try Airlock.enqueue(name: "later", options: DispatchOptions(queue: "q1", countdown: .seconds(30)))
        }
        let ns = fixture.namespace
        #expect(try await fixture.allKeys() == ["\(ns):queues", "\(ns):{q1}:delayed", "\(ns):{q1}:ready", "\(ns):{q1}:wake"].sorted())
    }

    // MARK: Delays

    @Test func countdownGoesToTheDelayedSetScoredByDueTime() async throws {
        let fixture = try await ExecutorFixture.make("route-countdown")
        let before = epochMilliseconds()
        let intent = try await fixture.flush { try Airlock.enqueue(name: "later", options: DispatchOptions(countdown: .seconds(30))) }
        let after = epochMilliseconds()

        #expect(try await fixture.ready("default").isEmpty)
        let delayed = try await fixture.delayed("default")
        try #require(delayed.count == 1)
        let score = delayed[0].score
        #expect(((before + 30_000)...(after + 30_000)).contains(score), "score \(score) not within now+30 s [\(before + 30_000), \(after + 30_000)]")
        let envelope = try Envelope.decode(delayed[0].bytes)
        #expect(envelope.id == Kit.wireID(intent))
        #expect(envelope.eta == score, "the envelope's eta is the due time")
        #expect(abs(score - (envelope.enqueuedAt + 30_000)) <= 1)
        // The wake list tells a sleeping promoter about the new due time.
        #expect(try await fixture.list(fixture.keys.wake("default")).map { String(decoding: $0, as: UTF8.self) } == [String(score)])
        #expect(try await fixture.queueNames() == ["default"])
    }

    @Test func subSecondCountdownKeepsMillisecondPrecision() async throws {
        let fixture = try await ExecutorFixture.make("route-ms")
        try await fixture.flush { try Airlock.enqueue(name: "soon", options: DispatchOptions(countdown: .milliseconds(1_500))) }
        let delayed = try await fixture.delayed("default")
        try #require(delayed.count == 1)
        let envelope = try Envelope.decode(delayed[0].bytes)
        #expect(abs(delayed[0].score - (envelope.enqueuedAt + 1_500)) <= 1)
    }

    @Test func futureEtaGoesToTheDelayedSetWithThatExactScore() async throws {
        let fixture = try await ExecutorFixture.make("route-eta")
        let eta = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 3_600).rounded() + 0.25)
        try await fixture.flush { try Airlock.enqueue(name: "at.eta", options: DispatchOptions(queue: "sched", eta: eta)) }
        let delayed = try await fixture.delayed("sched")
        try #require(delayed.count == 1)
        #expect(delayed[0].score == epochMilliseconds(eta))
        #expect(try Envelope.decode(delayed[0].bytes).eta == epochMilliseconds(eta))
        #expect(try await fixture.ready("sched").isEmpty)
        #expect(try await fixture.queueNames() == ["sched"])
    }

    @Test func pastEtaGoesStraightToReady() async throws {
        let fixture = try await ExecutorFixture.make("route-past")
        let eta = Date(timeIntervalSinceNow: -600)
        try await fixture.flush { try Airlock.enqueue(name: "overdue", options: DispatchOptions(eta: eta)) }
        #expect(try await fixture.delayed("default").isEmpty)
        let ready = try await fixture.readyEnvelopes("default")
        try #require(ready.count == 1)
        #expect(ready[0].eta == epochMilliseconds(eta), "the envelope still records the requested eta")
        #expect(try await fixture.command("EXISTS", fixture.keys.wake("default")) == .integer(0))
    }

    @Test func zeroCountdownIsReadyAtOnce() async throws {
        let fixture = try await ExecutorFixture.make("route-zero")
        try await fixture.flush { try Airlock.enqueue(name: "now", options: DispatchOptions(countdown: .zero)) }
        #expect(try await fixture.delayed("default").isEmpty)
        #expect(try await fixture.ready("default").count == 1)
    }

    @Test func theLaterOfCountdownAndEtaWins() async throws {
        let fixture = try await ExecutorFixture.make("route-later")
        let nearEta = Date(timeIntervalSinceNow: 10)
        let farEta = Date(timeIntervalSinceNow: 7_200)
        let before = epochMilliseconds()
        try await fixture.flush {
            try Airlock.enqueue(name: "countdown.wins", options: DispatchOptions(countdown: .seconds(600), eta: nearEta))
            try Airlock.enqueue(name: "eta.wins", options: DispatchOptions(countdown: .seconds(5), eta: farEta))
            try Airlock.enqueue(name: "past.eta.countdown.wins", options: DispatchOptions(countdown: .seconds(120), eta: Date(timeIntervalSinceNow: -60)))
        }
        let after = epochMilliseconds()
        let byTask = Dictionary(uniqueKeysWithValues: try await fixture.delayed("default").map { (try Envelope.decode($0.bytes).task, $0.score) })
        #expect(byTask.count == 3)
        #expect(((before + 600_000)...(after + 600_000)).contains(byTask["countdown.wins"] ?? 0))
        #expect(byTask["eta.wins"] == epochMilliseconds(farEta))
        #expect(((before + 120_000)...(after + 120_000)).contains(byTask["past.eta.countdown.wins"] ?? 0))
        #expect(try await fixture.ready("default").isEmpty)
    }

    @Test func wakeListHoldsOneDueTimeFromTheLatestFlush() async throws {
        // The wake list is a doorbell: at most one entry, a due time from the most recent flush
        // that added delayed jobs. The promoter re-reads the delayed set, so which of that
        // flush's due times it holds is not part of the contract.
        let fixture = try await ExecutorFixture.make("route-wake")
        try await fixture.flush {
            try Airlock.enqueue(name: "a", options: DispatchOptions(countdown: .seconds(100)))
            try Airlock.enqueue(name: "b", options: DispatchOptions(countdown: .seconds(50)))
        }
        let afterFirst = try await fixture.list(fixture.keys.wake("default")).map { String(decoding: $0, as: UTF8.self) }
        let firstScores = Set(try await fixture.delayed("default").map { String($0.score) })
        #expect(afterFirst.count == 1)
        #expect(afterFirst.allSatisfy(firstScores.contains), "\(afterFirst) not among \(firstScores)")

        try await fixture.flush { try Airlock.enqueue(name: "c", options: DispatchOptions(countdown: .seconds(200))) }
        let delayed = try await fixture.delayed("default")
        let cScore = try #require(try delayed.first { try Envelope.decode($0.bytes).task == "c" }?.score)
        #expect(try await fixture.list(fixture.keys.wake("default")).map { String(decoding: $0, as: UTF8.self) } == [String(cScore)])
        // Delayed entries come out in due order whatever the enqueue order.
        #expect(try delayed.map { try Envelope.decode($0.bytes).task } == ["b", "a", "c"])
    }

    // MARK: Priority

    @Test func positivePriorityJumpsToTheConsumingEnd() async throws {
        let fixture = try await ExecutorFixture.make("route-prio")
        try await fixture.flush {
            try Airlock.enqueue(name: "first")
            try Airlock.enqueue(name: "second")
            try Airlock.enqueue(name: "zero", options: DispatchOptions(priority: 0))
            try Airlock.enqueue(name: "negative", options: DispatchOptions(priority: -5))
        }
        try await fixture.flush { try Airlock.enqueue(name: "urgent", options: DispatchOptions(priority: 9)) }
        var order: [String] = []
        while let envelope = try await fixture.popReady("default") { order.append(envelope.task) }
        #expect(order == ["urgent", "first", "second", "zero", "negative"])
    }

    @Test func priorityJobsAmongThemselvesAreTakenNewestFirst() async throws {
        // RPUSH puts each new priority job at the very end, ahead of earlier priority jobs:
        // priority is "jump the line", not an ordered scale (see docs/PROTOCOL.md).
        let fixture = try await ExecutorFixture.make("route-prio2")
        try await fixture.flush {
            try Airlock.enqueue(name: "normal")
            try Airlock.enqueue(name: "p1", options: DispatchOptions(priority: 1))
            try Airlock.enqueue(name: "p9", options: DispatchOptions(priority: 9))
        }
        var order: [String] = []
        while let envelope = try await fixture.popReady("default") { order.append(envelope.task) }
        #expect(order == ["p9", "p1", "normal"])
    }

    @Test func priorityDoesNotBypassADelay() async throws {
        let fixture = try await ExecutorFixture.make("route-prio-delay")
        try await fixture.flush {
            try Airlock.enqueue(name: "delayed.urgent", options: DispatchOptions(countdown: .seconds(60), priority: 9))
        }
        #expect(try await fixture.ready("default").isEmpty)
        let delayed = try await fixture.delayed("default")
        #expect(delayed.count == 1)
        #expect(try delayed.map { try Envelope.decode($0.bytes).priority } == [9])
    }
}
