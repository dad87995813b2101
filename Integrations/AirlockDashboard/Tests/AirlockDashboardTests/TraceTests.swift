import Airlock
import AirlockDashboard
import AirlockRedis
import AirlockTracingTestSupport
import Foundation
import Hummingbird
import Testing
import Tracing

/// "Follow a trace from a web request into the job it caused": a real HTTP request to a
/// Hummingbird application (Hummingbird's own `TracingMiddleware` opens the request span) enqueues
/// a job in a scope; a real `Worker` over the real Redis runs it and fails it twice; the in-memory
/// W3C tracer records every span. The tracer is a task-local override (`withTracer`) that the
/// server's and the worker's tasks inherit, so nothing process-wide is bootstrapped.
@Suite("Dashboard: a trace from a web request into its job", .timeLimit(.minutes(2)))
struct TraceTests {
    /// The error the task throws: markup, to show the waterfall escapes what spans carry.
    static let error = "smtp 550 mailbox unavailable <script>window.__pwned = 5</script>"

    @Test func theRequestTheFlushAndEveryAttemptShareOneTraceAndTheDashboardLinksIt() async throws {
        let h = try await DashboardHarness.start("trace") { $0.traceLink = try TraceLinkTemplate("https://tempo.example/trace/{trace_id}") }
        defer { h.stop() }
        let redis = try RedisConfiguration(url: try TestRedis.url())
        let client = RedisClient(configuration: redis, name: "trace-app", logger: DashboardHarness.quiet)
        let executor = RedisExecutor(client: client, namespace: h.namespace, origin: "signup-app", logger: DashboardHarness.quiet)
        let tracer = W3CTestTracer()

        // The application: request span outside, the scope inside the handler, as AirlockMiddleware
        // would wrap it (the flush happens while the request span is in force).
        let router = Router()
        router.add(middleware: TracingMiddleware())
        router.post("/signup") { _, _ -> String in
            var id = ""
            try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                id = try Airlock.enqueue(name: "mail.welcome", kwargs: ["user": "ada@example.com"]).id.uuidString.lowercased()
            }
            return id
        }
        let bound = PortBox()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in bound.set(channel.localAddress?.port ?? -1) }, logger: DashboardHarness.quiet)

        var registry = TaskRegistry()
        registry.register("mail.welcome", maxRetries: 1, retry: .fixed(.milliseconds(50))) { _, _ in throw TraceTestFailure(Self.error) }
        var configuration = WorkerConfiguration(queues: ["default"])
        configuration.name = "trace-worker"
        var source = RedisJobSource.Configuration(redis: redis)
        source.namespace = h.namespace
        let worker = Worker(source: RedisJobSource(configuration: source, logger: DashboardHarness.quiet), configuration: configuration,
                            registry: registry, logger: DashboardHarness.quiet)

        // Unstructured tasks inherit task-local values: both see the test's tracer.
        let (server, running) = withTracer(tracer) { (Task { try await app.run() }, Task { try await worker.run() }) }
        defer { server.cancel() }
        let port = try await bound.wait()
        let response = try await HTTPClient.send(port: port, method: "POST", path: "/signup")
        #expect(response.status == 200)
        let jobID = response.body
        try await eventually("the job is dead-lettered after its two attempts") {
            try await h.command("LLEN", h.keys.dead("default")).integer() == 1
        }
        worker.shutdown()
        try await running.value
        try await eventually("the request span ended") { tracer.finishedSpans.contains { $0.kind == .server } }

        let spans = tracer.finishedSpans
        let request = try #require(spans.first { $0.kind == .server }, "\(spans)")
        let flush = try #require(spans.first { $0.name == "airlock.flush" }, "\(spans)")
        let runs = spans.filter { $0.name == "airlock.run mail.welcome" }.sorted { $0.startNanoseconds < $1.startNanoseconds }
        #expect(request.name == "/signup" && request.parentSpanID == nil, "the request starts the trace: \(request)")
        #expect(flush.traceID == request.traceID && flush.parentSpanID == request.spanID && flush.kind == .producer, "\(flush)")
        #expect(runs.count == 2, "\(spans)")
        for (attempt, run) in runs.enumerated() {
            #expect(run.traceID == request.traceID && run.parentSpanID == flush.spanID && run.kind == .consumer, "\(run)")
            #expect(run.attributes["airlock.attempt"] == String(attempt) && run.attributes["airlock.job_id"] == jobID)
            #expect(run.errors.contains { $0.contains("mailbox unavailable") }, "the attempt recorded its error: \(run.errors)")
        }

        // The operator's side: the dead letter and the job page show the trace id, linked.
        let link = "https://tempo.example/trace/\(request.traceID)"
        for path in ["/dead/show?id=\(jobID)", "/job?id=\(jobID)"] {
            let page = try await h.get(path)
            #expect(page.status == 200)
            #expect(page.body.contains("<code class=\"trace-id\">\(request.traceID)</code>"), "\(path) shows the trace id")
            #expect(page.body.contains("href=\"\(link)\""), "\(path) links the trace")
        }

        // The recorded trace as a waterfall page, for the browser suite to check and screenshot.
        let file = try TraceWaterfall.write(spans, traceID: request.traceID, jobID: jobID, name: "trace-waterfall.html")
        #expect(FileManager.default.fileExists(atPath: file))
        await client.close()
    }

    @Test func aTraceLinkTemplateMustBeAnHTTPURLWithThePlaceholder() throws {
        #expect(throws: DashboardError.self) { try TraceLinkTemplate("javascript:alert(1)//{trace_id}") }
        #expect(throws: DashboardError.self) { try TraceLinkTemplate("https://tempo.example/trace/") }
        #expect(throws: DashboardError.self) { try TraceLinkTemplate("https://tempo.example/trace/{trace_id} x") }
        #expect(try TraceLinkTemplate("HTTPS://tempo.example/t/{trace_id}").description == "HTTPS://tempo.example/t/{trace_id}")
    }

    @Test func onlyAWellFormedTraceparentIsShown() async throws {
        let h = try await DashboardHarness.start("trace-hostile") { $0.traceLink = try TraceLinkTemplate("https://tempo.example/trace/{trace_id}") }
        defer { h.stop() }
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let hostile = #"00-"><script>window.__pwned=6</script>-00f067aa0ba902b7-01"#
        func traced(_ id: String, _ traceparent: String) -> [UInt8] {
            Envelope(id: id, task: "t.task", queue: "mail", enqueuedAt: epochMilliseconds(), trace: TraceContext(traceparent: traceparent)).encoded()
        }
        try await h.pushReady("mail", [
            traced("traced", good), traced("forged", hostile), traced("zero", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        ])
        let traced = try await h.get("/job?id=traced")
        #expect(traced.body.contains("<code class=\"trace-id\">4bf92f3577b34da6a3ce929d0e0e4736</code>"))
        #expect(traced.body.contains("href=\"https://tempo.example/trace/4bf92f3577b34da6a3ce929d0e0e4736\""))
        for id in ["forged", "zero"] {
            let page = try await h.get("/job?id=\(id)")
            #expect(page.status == 200 && !page.body.contains("class=\"trace"), "\(id): no trace line")
            #expect(!page.body.contains("<script>window.__pwned"), "\(id): the envelope is escaped")
        }
    }
}

struct TraceTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Polls `condition` every 20 ms until it holds; fails after 60 s (a hang guard, not a bound).
func eventually(_ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(60)
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw HarnessError("timed out waiting for \(what)")
}
