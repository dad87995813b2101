import Airlock
@testable import AirlockWorker
import Testing

/// Which lane waits *taking* its next job while its queue is empty (one round trip less before
/// the job starts), and what that costs the other lanes: nothing an earlier queue would not have
/// taken anyway, and never a running slot.
@Suite struct IdleClaimTests {
    @Test func theOnlyLaneAndTheFirstOfSeveralWithAPrefetchClaimWhileIdle() {
        #expect(Fetcher.claimsWhileIdle(lane: 0, ranks: [0], prefetch: 0))
        #expect(Fetcher.claimsWhileIdle(lane: 0, ranks: [0, 1], prefetch: 1))
        #expect(Fetcher.claimsWhileIdle(lane: 0, ranks: [0, 1, 2], prefetch: 10))
        // Without a prefetch the slot would come out of a later queue's running jobs.
        #expect(!Fetcher.claimsWhileIdle(lane: 0, ranks: [0, 1], prefetch: 0))
        // A later queue never holds a slot an earlier one may need.
        #expect(!Fetcher.claimsWhileIdle(lane: 1, ranks: [0, 1], prefetch: 10))
        #expect(!Fetcher.claimsWhileIdle(lane: 2, ranks: [0, 1, 2], prefetch: 10))
        // The partitions of a first partitioned queue share a rank: none of them holds a slot.
        #expect(!Fetcher.claimsWhileIdle(lane: 0, ranks: [0, 0, 1], prefetch: 10))
        #expect(!Fetcher.claimsWhileIdle(lane: 1, ranks: [0, 0, 1], prefetch: 10))
    }

    /// The first queue's idle fetcher holds one slot of the prefetch: the later queue still runs
    /// `concurrency` jobs at once, and a job arriving on the first queue is taken at once even
    /// while every task slot is busy (it waits in the worker, first in line, not in Redis).
    @Test func theFirstQueueClaimsItsNextJobWhileALaterQueueKeepsEveryTaskSlot() async throws {
        let (queues, probe, gate, run) = try await Self.busyLowQueue(jobs: 6, prefetch: 1)
        try await Engine.enqueue(queues, EngineTests.tokens("high", 1), options: DispatchOptions(queue: "high"))
        try await Engine.eventually("the high job is claimed while both slots are busy") { queues.ready("high").isEmpty }
        #expect(queues.heldCount == 3, "two running, the claimed high job: concurrency + prefetch")
        #expect(probe.events.isEmpty)
        gate.open()
        try await Engine.eventually("all ran") { probe.events.count == 7 }
        try await run.stop()
        #expect(probe.maxRunning == 2)
    }

    /// Without a prefetch nobody claims while idle: the first queue's slot would be one of the
    /// later queue's running ones.
    @Test func withoutAPrefetchALaterQueueStillRunsConcurrencyJobsAtOnce() async throws {
        let (_, probe, gate, run) = try await Self.busyLowQueue(jobs: 4, prefetch: 0)
        gate.open()
        try await Engine.eventually("all ran") { probe.events.count == 4 }
        try await run.stop()
        #expect(probe.maxRunning == 2)
    }

    /// A worker on `high, low` (concurrency 2) with `jobs` jobs on `low` that wait at the gate,
    /// once two of them are running at once.
    static func busyLowQueue(jobs: Int, prefetch: Int) async throws -> (InMemoryQueues, EngineProbe, EngineGate, EngineRun) {
        let queues = InMemoryQueues()
        let probe = EngineProbe()
        let gate = EngineGate()
        try await Engine.enqueue(queues, EngineTests.tokens("low", jobs), options: DispatchOptions(queue: "low"))
        let run = EngineRun(Worker(
            source: queues.makeSource(), configuration: Engine.configuration(queues: ["high", "low"], concurrency: 2, prefetch: prefetch),
            registry: EngineTests.registry(probe, gate: gate, gated: Set((1...jobs).map { "low\($0)" })), logger: Engine.quiet))
        try await Engine.eventually("two low jobs run at once") { gate.waiting == 2 }
        return (queues, probe, gate, run)
    }
}
