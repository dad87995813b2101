import Airlock
import AirlockRedis
import AirlockRedisClient
import AirlockTestSupport
import AirlockTracingTestSupport
import AirlockWorker
import Foundation
import Testing
import Tracing

// The W3C trace context from a producer's flush, through the bytes in Redis, to the worker's run
// span — with a real server. The tracer is a task-local override (`withTracer`): nothing is
// bootstrapped, so the other suites run with no tracer.

@Suite("Trace propagation through Redis")
struct TracePropagationTests {
    @Test func aRedisJobCarriesTheFlushSpanAndItsRunIsThatSpansChild() async throws {
        let harness = try await WorkerHarness.make("trace")
        let tracer = W3CTestTracer()
        var registry = TaskRegistry()
        registry.register("traced.job") { _, _ in }
        try await withTracer(tracer) {
            try await tracer.withSpan("POST /orders", ofKind: .server) { _ in
                try await harness.enqueue { _ = try Airlock.enqueue(name: "traced.job", kwargs: ["n": 1]) }
            }
            let raw = try #require(try await harness.list(harness.keys.ready("default")).first)
            let flush = try #require(tracer.finishedSpans.first { $0.name == "airlock.flush" })
            #expect(try WorkerKit.object(raw)["traceparent"] == .string("00-\(flush.traceID)-\(flush.spanID)-01"), "the envelope in Redis")
            try await harness.withWorker(try harness.configuration(), registry: registry) { _ in
                try await WorkerKit.eventually("the job ran") { try await harness.stats()["processed"] == 1 }
            }
        }
        let spans = tracer.finishedSpans
        let request = try #require(spans.first { $0.name == "POST /orders" })
        let flush = try #require(spans.first { $0.name == "airlock.flush" })
        let run = try #require(spans.first { $0.name == "airlock.run traced.job" }, "\(spans)")
        #expect(flush.parentSpanID == request.spanID)
        #expect(run.traceID == request.traceID && run.parentSpanID == flush.spanID, "\(spans)")
        #expect(run.kind == .consumer && run.attributes["airlock.attempt"] == "0")
    }

    @Test func aCeleryMessageCarriesItInItsHeadersAndACeleryWorkerContinuesIt() async throws {
        let harness = try await WorkerHarness.make("trace-celery")
        let client = RedisClient(configuration: try RedisConfiguration(url: harness.url), name: "trace-celery", logger: WorkerKit.quiet)
        // kombu's keys are not namespaced: a queue name of its own keeps this test apart.
        let queue = harness.namespace
        let tracer = W3CTestTracer()
        var registry = TaskRegistry()
        registry.register("proj.tasks.add") { _, _ in }
        var configuration = try harness.configuration(queues: [queue])
        configuration.wireProtocol = .celery
        try await withTracer(tracer) {
            try await Airlock.scope(policy: AllowAll(), executor: CeleryExecutor(client: client, defaultQueue: queue), behavior: DefaultScopeBehavior()) {
                try Airlock.enqueue(name: "proj.tasks.add", args: [2, 2])
            }
            let raw = try #require(try await client.send("LINDEX", queue, "0").bytes)
            let flush = try #require(tracer.finishedSpans.first { $0.name == "airlock.flush" })
            #expect(try CeleryMessage.decode(raw).headers["traceparent"] == .string("00-\(flush.traceID)-\(flush.spanID)-01"))
            try await harness.withWorker(configuration, registry: registry) { _ in
                try await WorkerKit.eventually("the Celery job ran") { tracer.finishedSpans.contains { $0.name == "airlock.run proj.tasks.add" } }
            }
        }
        let flush = try #require(tracer.finishedSpans.first { $0.name == "airlock.flush" })
        let run = try #require(tracer.finishedSpans.first { $0.name == "airlock.run proj.tasks.add" })
        #expect(run.traceID == flush.traceID && run.parentSpanID == flush.spanID)
        await client.close()
    }

    @Test func withoutATracerNothingTraceRelatedIsWritten() async throws {
        let harness = try await WorkerHarness.make("untraced")
        try await harness.enqueue { try Airlock.enqueue(name: "traced.job") }
        let raw = try #require(try await harness.list(harness.keys.ready("default")).first)
        let text = String(decoding: raw, as: UTF8.self)
        #expect(!text.contains("traceparent") && !text.contains("tracestate"), "\(text)")
    }
}
