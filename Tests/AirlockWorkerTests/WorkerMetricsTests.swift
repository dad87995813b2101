import Airlock
import AirlockTracingTestSupport
import AirlockWorker
import Foundation
import Metrics
import MetricsTestKit
import Testing
import Tracing

// The engine's metrics and spans over in-memory queues. Each worker gets its own TestMetrics
// factory and each test its own tracer (a task-local override): nothing process-wide is
// bootstrapped, so these run in parallel with every other suite.

@Suite("Worker metrics and spans over in-memory queues")
struct WorkerMetricsTests {
    static func jobs(_ metrics: TestMetrics, task: String, outcome: String, queue: String = "default") -> Int64 {
        metrics.counterTotal(label: AirlockMetrics.jobs.name, dimensions: [("queue", queue), ("task", task), ("outcome", outcome)])
    }

    static func timerCount(_ metrics: TestMetrics, _ label: String, _ dimensions: [(String, String)]) -> Int {
        metrics.timers(label: label, dimensions: dimensions).reduce(0) { $0 + $1.values.count }
    }

    @Test func everyOutcomeIsCountedByQueueTaskAndOutcomeAndUnknownNamesNeverBecomeLabels() async throws {
        let queues = InMemoryQueues()
        let metrics = TestMetrics()
        var registry = TaskRegistry()
        registry.register("ok") { _, _ in }
        registry.register("flaky", maxRetries: 1) { _, _ in throw TestFailure("flaky failed") }
        registry.register("perm") { _, _ in throw PermanentFailure("no point retrying") }
        try await Engine.enqueue(queues, [("ok", [:]), ("ok", [:]), ("ok", [:]), ("flaky", [:]), ("perm", [:])])
        queues.push(Envelope(id: "u1", task: "no.such.task", queue: "default", enqueuedAt: epochMilliseconds()).encoded(), to: "default")
        queues.push(Array("not json".utf8), to: "default")
        queues.push(Envelope(id: "e1", task: "ok", queue: "default", enqueuedAt: 1, expires: 2).encoded(), to: "default")

        let run = EngineRun(Worker(
            source: queues.makeSource(), configuration: Engine.configuration(), registry: registry, logger: Engine.quiet, metricsFactory: metrics))
        try await Engine.eventually("every job settled") {
            queues.counters("default")["processed"] == 3 && queues.dead("default").count == 4 && queues.counters("default")["expired"] == 1
        }
        try await run.stop()

        #expect(Self.jobs(metrics, task: "ok", outcome: "succeeded") == 3)
        #expect(Self.jobs(metrics, task: "ok", outcome: "expired") == 1)
        #expect(Self.jobs(metrics, task: "flaky", outcome: "retried") == 1)
        #expect(Self.jobs(metrics, task: "flaky", outcome: "dead") == 1)
        #expect(Self.jobs(metrics, task: "perm", outcome: "dead") == 1)
        #expect(Self.jobs(metrics, task: AirlockMetrics.unknownTask, outcome: "dead") == 2, "an unknown task and an unreadable message")
        let taskLabels = Set(metrics.counters(label: AirlockMetrics.jobs.name).compactMap { counter in
            counter.dimensions.first { $0.0 == "task" }?.1
        })
        #expect(taskLabels == ["ok", "flaky", "perm", AirlockMetrics.unknownTask], "only registered names and 'unknown'")
        #expect(metrics.counterTotal(label: AirlockMetrics.jobs.name) == 9)
        // Attempts that ran: three ok, two of flaky, one perm; the expired and unreadable never ran.
        #expect(Self.timerCount(metrics, AirlockMetrics.runDuration.name, [("queue", "default"), ("task", "ok")]) == 3)
        #expect(Self.timerCount(metrics, AirlockMetrics.runDuration.name, [("queue", "default"), ("task", "flaky")]) == 2)
        #expect(Self.timerCount(metrics, AirlockMetrics.queueWait.name, [("queue", "default")]) == 6)
        #expect(try metrics.expectGauge(AirlockMetrics.concurrency.name).lastValue == 2)
    }

    @Test func queueWaitIsMeasuredFromTheDueTimeAndAProducerClockAheadCountsAsZero() async throws {
        let queues = InMemoryQueues()
        let metrics = TestMetrics()
        var registry = TaskRegistry()
        registry.register("ok") { _, _ in }
        let now = epochMilliseconds()
        // Enqueued ten minutes ago but only due a second ago: it has waited about a second.
        queues.push(Envelope(id: "due", task: "ok", queue: "a", enqueuedAt: now - 600_000, eta: now - 1000).encoded(), to: "a")
        // A producer whose clock runs an hour ahead.
        queues.push(Envelope(id: "ahead", task: "ok", queue: "b", enqueuedAt: now + 3_600_000).encoded(), to: "b")
        let run = EngineRun(Worker(
            source: queues.makeSource(), configuration: Engine.configuration(queues: ["a", "b"]), registry: registry, logger: Engine.quiet,
            metricsFactory: metrics))
        try await Engine.eventually("both ran") { queues.counters("a")["processed"] == 1 && queues.counters("b")["processed"] == 1 }
        try await run.stop()
        let due = try metrics.expectTimer(AirlockMetrics.queueWait.name, [("queue", "a")]).values
        let ahead = try metrics.expectTimer(AirlockMetrics.queueWait.name, [("queue", "b")]).values
        #expect(due.count == 1 && due[0] >= 1_000_000_000 && due[0] < 600_000_000_000, "\(due) ns")
        #expect(ahead == [0])
    }

    @Test func theInFlightGaugeCountsRunningTasksAndACancelledAtShutdownJobCountsAsCancelled() async throws {
        let queues = InMemoryQueues()
        let metrics = TestMetrics()
        let gate = EngineGate()
        var registry = TaskRegistry()
        registry.register("wait") { _, _ in try await gate.wait() }
        try await Engine.enqueue(queues, [("wait", [:]), ("wait", [:])])
        var configuration = Engine.configuration(concurrency: 2)
        configuration.shutdownTimeout = .milliseconds(50)
        let run = EngineRun(Worker(source: queues.makeSource(), configuration: configuration, registry: registry, logger: Engine.quiet, metricsFactory: metrics))
        let inFlight = try await {
            try await Engine.eventually("the meter exists") { !metrics.meters(label: AirlockMetrics.inFlight.name).isEmpty }
            return try metrics.expectMeter(AirlockMetrics.inFlight.name, [("queue", "default")])
        }()
        try await Engine.eventually("both wait at the gate") { gate.waiting == 2 }
        #expect(inFlight.lastValue == 2)
        try await run.stop()
        #expect(inFlight.lastValue == 0)
        #expect(Self.jobs(metrics, task: "wait", outcome: "cancelled") == 2)
        #expect(Self.jobs(metrics, task: "wait", outcome: "retried") == 0, "a shutdown is not a failure")
        #expect(queues.ready("default").count == 2)
    }

    @Test func theReaperCountsTheJobsItRecoveredFromADeadWorker() async throws {
        let queues = InMemoryQueues()
        let gate = EngineGate()
        var registry = TaskRegistry()
        registry.register("wait") { _, _ in try await gate.wait() }
        try await Engine.enqueue(queues, [("wait", [:]), ("wait", [:]), ("wait", [:])])
        let zombie = EngineRun(Worker(
            source: queues.makeSource(), configuration: Engine.configuration(concurrency: 1, prefetch: 2), registry: registry, logger: Engine.quiet))
        try await Engine.eventually("the zombie holds all three") { queues.heldCount == 3 && gate.waiting == 1 }
        let metrics = TestMetrics()
        let rescuer = EngineRun(Worker(
            source: queues.makeSource(), configuration: Engine.configuration(concurrency: 3), registry: registry, logger: Engine.quiet, metricsFactory: metrics))
        try await Engine.eventually("reaped") {
            queues.expireHeartbeat(of: zombie.worker.id)
            return metrics.counterTotal(label: AirlockMetrics.reaperRecovered.name) > 0
        }
        gate.open()
        try await Engine.eventually("all settled") { queues.counters("default")["processed"] ?? 0 >= 3 && queues.heldCount == 0 }
        try await rescuer.stop()
        try await zombie.stop()
        #expect(metrics.counterTotal(label: AirlockMetrics.reaperRecovered.name) == 3)
    }

    @Test func aJobRunContinuesTheTraceOfTheFlushThatEnqueuedItAndItsFollowUpsContinueTheRun() async throws {
        let tracer = W3CTestTracer()
        let queues = InMemoryQueues()
        var registry = TaskRegistry()
        registry.register("parent") { _, _ in try Airlock.enqueue(name: "child") }
        registry.register("child") { _, _ in }
        try await withTracer(tracer) {
            try await Engine.enqueue(queues, [("parent", [:])])
            let envelope = try Envelope.decode(#require(queues.ready("default").first))
            let flush = try #require(tracer.finishedSpans.first { $0.name == "airlock.flush" })
            #expect(envelope.trace?.traceparent == "00-\(flush.traceID)-\(flush.spanID)-01")
            let run = EngineRun(Worker(source: queues.makeSource(), configuration: Engine.configuration(), registry: registry, logger: Engine.quiet))
            try await Engine.eventually("parent and child ran") { queues.counters("default")["processed"] == 2 }
            try await run.stop()
        }
        let spans = tracer.finishedSpans
        let flushes = spans.filter { $0.name == "airlock.flush" }
        let parentRun = try #require(spans.first { $0.name == "airlock.run parent" })
        let childRun = try #require(spans.first { $0.name == "airlock.run child" })
        #expect(flushes.count == 2, "the producer's flush and the parent task's follow-up flush: \(spans)")
        #expect(Set(spans.map(\.traceID)).count == 1, "one trace: \(spans)")
        #expect(parentRun.parentSpanID == flushes[0].spanID)
        #expect(parentRun.kind == .consumer && flushes[0].kind == .producer)
        let followUp = try #require(flushes.first { $0.parentSpanID == parentRun.spanID })
        #expect(childRun.parentSpanID == followUp.spanID)
        #expect(parentRun.attributes["airlock.task"] == "parent" && parentRun.attributes["airlock.queue"] == "default")
    }

    @Test func withoutATracerNoTraceContextIsWrittenAndNoSpanIsRecorded() async throws {
        let tracer = W3CTestTracer()
        let queues = InMemoryQueues()
        try await Engine.enqueue(queues, [("ok", [:])])
        let raw = try #require(queues.ready("default").first)
        #expect(try Envelope.decode(raw).trace == nil)
        #expect(!String(decoding: raw, as: UTF8.self).contains("traceparent"))
        #expect(tracer.finishedSpans.isEmpty)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
