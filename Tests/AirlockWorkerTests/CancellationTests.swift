import Airlock
import AirlockWorker
import Foundation
import Testing

/// An operator's cancel, through the engine, over in-memory queues: what is dropped, what is
/// cancelled while running, and that nothing cancelled is retried.
@Suite("Cancelling jobs in memory")
struct InMemoryCancellationTests {
    static func ids(_ queues: InMemoryQueues, _ queue: String = "default") -> [String] {
        queues.ready(queue).compactMap { DecodedJob.readableID(of: $0) }
    }

    @Test func aReadyJobIsRemovedAndCounted() async throws {
        let queues = InMemoryQueues()
        try await Engine.enqueue(queues, [("slow", [:]), ("slow", [:])])
        let victim = try #require(Self.ids(queues).first)
        #expect(queues.cancel(jobID: victim) == "ready")
        #expect(!Self.ids(queues).contains(victim) && Self.ids(queues).count == 1)
        #expect(queues.counters("default")["cancelled"] == 1)
        #expect(queues.cancel(jobID: victim) == nil)
    }

    @Test func aRunningTaskIsCancelledAndNeverRetried() async throws {
        let queues = InMemoryQueues()
        let gate = EngineGate()
        let probe = EngineProbe()
        var tasks = TaskRegistry()
        tasks.register("slow", maxRetries: 5) { _, _ in
            probe.record("started")
            do {
                try await gate.wait()
            } catch {
                probe.record(error is CancellationError ? "saw cancellation" : "other error")
                throw error
            }
        }
        try await Engine.enqueue(queues, [("slow", [:])])
        let id = try #require(Self.ids(queues).first)
        let run = EngineRun(Worker(source: queues.makeSource(), configuration: Engine.configuration(concurrency: 1), registry: tasks, logger: Engine.quiet))
        try await Engine.eventually("the task started") { probe.count("started") == 1 }
        #expect(queues.cancel(jobID: id)?.hasPrefix("held by ") == true)
        try await Engine.eventually("the job settled as cancelled") { queues.counters("default")["cancelled"] == 1 }
        try await run.stop()

        #expect(probe.events == ["started", "saw cancellation"])
        #expect(queues.counters("default")["failed"] == nil && queues.counters("default")["retried"] == nil)
        #expect(queues.delayed("default").isEmpty && queues.dead("default").isEmpty && queues.ready("default").isEmpty)
    }

    /// A slot runs its jobs in one task; after a cancel, the next job on the same slot must not
    /// inherit the cancellation (one slot, so the same slot runs both).
    @Test func theNextJobOnACancelledJobsSlotRunsUncancelled() async throws {
        let queues = InMemoryQueues()
        let gate = EngineGate()
        let probe = EngineProbe()
        var tasks = TaskRegistry()
        tasks.register("slow") { _, _ in
            probe.record("slow started")
            do { try await gate.wait() } catch { probe.record(error is CancellationError ? "slow saw cancellation" : "other error"); throw error }
        }
        tasks.register("quick") { _, _ in
            probe.record(Task.isCancelled ? "quick ran cancelled" : "quick ran")
            try await Task.sleep(for: .milliseconds(1))  // throws if this task were cancelled
            probe.record("quick finished")
        }
        try await Engine.enqueue(queues, [("slow", [:])])
        let id = try #require(Self.ids(queues).first)
        let run = EngineRun(Worker(
            source: queues.makeSource(), configuration: Engine.configuration(concurrency: 1, prefetch: 1), registry: tasks, logger: Engine.quiet))
        try await Engine.eventually("the slow task started") { probe.count("slow started") == 1 }
        #expect(queues.cancel(jobID: id)?.hasPrefix("held by ") == true)
        try await Engine.eventually("the slow job settled as cancelled") { queues.counters("default")["cancelled"] == 1 }
        try await Engine.enqueue(queues, [("quick", [:]), ("quick", [:])])
        try await Engine.eventually("both quick jobs succeeded") { queues.counters("default")["processed"] == 2 }
        try await run.stop()
        #expect(probe.events == ["slow started", "slow saw cancellation", "quick ran", "quick finished", "quick ran", "quick finished"])
        #expect(queues.counters("default")["failed"] == nil && queues.dead("default").isEmpty)
    }

    @Test func aPrefetchedJobIsDroppedUnrunWhileItsNeighbourRuns() async throws {
        let queues = InMemoryQueues()
        let gate = EngineGate()
        let probe = EngineProbe()
        var tasks = TaskRegistry()
        tasks.register("slow") { arguments, _ in
            let name = arguments.kwargs["name"]?.stringValue ?? "?"
            probe.record("started \(name)")
            try await gate.wait()
        }
        try await Engine.enqueue(queues, [("slow", ["name": "first"]), ("slow", ["name": "second"])])
        var idByName: [String: String] = [:]
        for raw in queues.ready("default") {
            let fields = try Engine.object(raw)
            idByName[fields["kwargs"]?.objectValue?["name"]?.stringValue ?? "?"] = fields["id"]?.stringValue
        }
        let run = EngineRun(Worker(
            source: queues.makeSource(), configuration: Engine.configuration(concurrency: 1, prefetch: 1), registry: tasks, logger: Engine.quiet))
        try await Engine.eventually("the first runs and the second is prefetched") {
            probe.count("started first") + probe.count("started second") == 1 && queues.ready("default").isEmpty
        }
        let waiting = try #require(idByName[probe.count("started first") == 1 ? "second" : "first"])
        #expect(queues.cancel(jobID: waiting)?.hasPrefix("held by ") == true)
        try await Engine.eventually("the prefetched job settled as cancelled") { queues.counters("default")["cancelled"] == 1 }
        gate.open()
        try await Engine.eventually("the running job finished") { queues.counters("default")["processed"] == 1 }
        try await run.stop()
        #expect(probe.events.count == 1, "the cancelled job never ran: \(probe.events)")
    }

    @Test func aTaskThatFinishesDespiteTheCancelCountsAsProcessed() async throws {
        let queues = InMemoryQueues()
        let gate = EngineGate()
        let probe = EngineProbe()
        var tasks = TaskRegistry()
        tasks.register("stubborn") { _, _ in
            probe.record("started")
            try? await gate.wait()   // ignores the cancellation and succeeds
            probe.record("finished")
        }
        try await Engine.enqueue(queues, [("stubborn", [:])])
        let id = try #require(Self.ids(queues).first)
        let run = EngineRun(Worker(source: queues.makeSource(), configuration: Engine.configuration(concurrency: 1), registry: tasks, logger: Engine.quiet))
        try await Engine.eventually("the task started") { probe.count("started") == 1 }
        queues.cancel(jobID: id)
        try await Engine.eventually("it finished") { queues.counters("default")["processed"] == 1 }
        try await run.stop()
        #expect(probe.events == ["started", "finished"])
        #expect(queues.counters("default")["cancelled"] == nil)
    }
}
