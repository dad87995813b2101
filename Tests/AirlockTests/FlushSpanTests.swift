import AirlockTracingTestSupport
import Synchronization
import Testing
import Tracing

@testable import Airlock

extension AirlockCore {
    /// The `airlock.flush` span. The tracer is a task-local override (`withTracer`), so nothing
    /// process-wide is bootstrapped and the rest of the suite runs with no tracer at all.
    @Suite("Flush spans")
    struct FlushSpanTests {
        /// Keeps the `traceparent` the tracer injects for the context it dispatches in.
        final class ContextRecorder: Executor {
            private let seen = Mutex<[String?]>([])
            let fails: Bool
            init(fails: Bool = false) { self.fails = fails }

            func dispatch(_ intents: [Intent]) async throws {
                var headers: [String: String] = [:]
                if let context = ServiceContext.current {
                    InstrumentationSystem.instrument.inject(context, into: &headers, using: Headers())
                }
                seen.withLock { $0.append(headers["traceparent"]) }
                if fails { throw Boom("executor down") }
            }

            var traceparents: [String?] { seen.withLock { $0 } }
        }

        struct Headers: Injector {
            func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
        }

        @Test func aFlushThatDispatchesRecordsOneProducerSpanTheExecutorRunsInside() async throws {
            let tracer = W3CTestTracer()
            let executor = ContextRecorder()
            try await withTracer(tracer) {
                try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                    try Airlock.enqueue(name: "a")
                    try Airlock.enqueue(name: "b")
                    try Airlock.enqueue(name: "c")
                }
            }
            let spans = tracer.finishedSpans
            try #require(spans.count == 1, "\(spans)")
            let flush = spans[0]
            #expect(flush.name == "airlock.flush")
            #expect(flush.kind == .producer)
            #expect(flush.attributes["airlock.intents"] == "3")
            #expect(flush.attributes["airlock.executor"] == "ContextRecorder")
            #expect(executor.traceparents == ["00-\(flush.traceID)-\(flush.spanID)-01"], "the executor sees the flush span as current")
        }

        @Test func aFlushInsideARequestSpanIsItsChild() async throws {
            let tracer = W3CTestTracer()
            _ = try await withTracer(tracer) {
                try await tracer.withSpan("GET /checkout", ofKind: .server) { _ in
                    try await Airlock.scope(policy: AllowAll(), executor: RecordingExecutor(), behavior: DefaultScopeBehavior()) {
                        try Airlock.enqueue(name: "mail.send")
                    }
                }
            }
            let flush = try #require(tracer.finishedSpans.first { $0.name == "airlock.flush" })
            let request = try #require(tracer.finishedSpans.first { $0.name == "GET /checkout" })
            #expect(flush.traceID == request.traceID)
            #expect(flush.parentSpanID == request.spanID)
        }

        @Test func aFailedDispatchMarksTheSpanFailedAndEmptyOrDiscardedScopesRecordNone() async throws {
            let tracer = W3CTestTracer()
            await withTracer(tracer) {
                await #expect(throws: DispatchError.self) {
                    try await Airlock.scope(policy: AllowAll(), executor: ContextRecorder(fails: true), behavior: DefaultScopeBehavior()) {
                        try Airlock.enqueue(name: "a")
                    }
                }
                try? await Airlock.scope(policy: AllowAll(), executor: ContextRecorder(), behavior: DefaultScopeBehavior()) {}
                try? await Airlock.scope(policy: DropAll(), executor: ContextRecorder(), behavior: DefaultScopeBehavior()) {
                    _ = try Airlock.enqueue(name: "dropped")
                }
                try? await Airlock.scope(policy: AllowAll(), executor: ContextRecorder(), behavior: DefaultScopeBehavior()) {
                    try Airlock.enqueue(name: "discarded")
                    throw Boom()
                }
            }
            let spans = tracer.finishedSpans
            try #require(spans.count == 1, "only the flush that dispatched: \(spans)")
            #expect(spans[0].failed)
            #expect(spans[0].errors.first?.contains("executor down") == true)
        }

        @Test func withoutATracerTheExecutorRunsWithNoSpan() async throws {
            let executor = ContextRecorder()
            try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                try Airlock.enqueue(name: "a")
            }
            #expect(executor.traceparents == [nil])
        }
    }
}
