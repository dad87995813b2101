import Airlock
import AirlockHummingbird
import AirlockRedis
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

/// The request scope over real HTTP: what each outcome of a handler does to what it enqueued.
@Suite("AirlockMiddleware", .timeLimit(.minutes(2)))
struct MiddlewareTests {
    struct Teapot: Error {}

    /// Routes that enqueue a probe, then answer with the status in the path or throw.
    static func probeRoutes(_ router: Router<BasicAirlockRequestContext>) {
        router.post("/t/status/:code") { _, context -> Response in
            let code = try context.parameters.require("code", as: Int.self)
            try Airlock.enqueue(Probe(label: "status-\(code)"))
            return Response(status: .init(code: code))
        }
        router.post("/t/throw/http") { _, _ -> Response in
            try Airlock.enqueue(Probe(label: "throw-http"))
            throw HTTPError(.conflict)
        }
        router.post("/t/throw/plain") { _, _ -> Response in
            try Airlock.enqueue(Probe(label: "throw-plain"))
            throw Teapot()
        }
    }

    @Test("a response below 400 flushes: the job is in the ready list when the client gets the response",
          arguments: [200, 201, 204, 302])
    func successFlushes(status: Int) async throws {
        let harness = try await Harness.make()
        try await harness.withApp(addRoutes: Self.probeRoutes) { client in
            try await client.execute(uri: "/t/status/\(status)", method: .post) { response in
                #expect(response.status.code == status)
            }
            let jobs = try await harness.readyJobs()
            #expect(jobs.map(\.task) == [Probe.name])
            #expect(jobs.first?.kwargs["label"] == .string("status-\(status)"))
        }
    }

    @Test("a 4xx or 5xx response discards", arguments: [400, 404, 409, 422, 500, 503])
    func failureStatusDiscards(status: Int) async throws {
        let harness = try await Harness.make()
        try await harness.withApp(addRoutes: Self.probeRoutes) { client in
            try await client.execute(uri: "/t/status/\(status)", method: .post) { response in
                #expect(response.status.code == status)
            }
            #expect(try await harness.readyJobs().isEmpty)
        }
    }

    @Test("a thrown error discards, whether Hummingbird turns it into a 409 or a 500")
    func thrownErrorDiscards() async throws {
        let harness = try await Harness.make()
        try await harness.withApp(addRoutes: Self.probeRoutes) { client in
            try await client.execute(uri: "/t/throw/http", method: .post) { response in
                #expect(response.status == .conflict)
            }
            try await client.execute(uri: "/t/throw/plain", method: .post) { response in
                #expect(response.status == .internalServerError)
            }
            #expect(try await harness.readyJobs().isEmpty)
        }
    }

    @Test("the scope is reachable as context.airlockScope and Airlock.currentScope, and is per request")
    func scopeIsInspectable() async throws {
        let harness = try await Harness.make()
        try await harness.withApp(addRoutes: { router in
            router.get("/t/inspect") { _, context -> String in
                try Airlock.enqueue(Probe(label: "one"))
                try Airlock.enqueue(Probe(label: "two"))
                guard let scope = context.airlockScope else { return "no scope in the context" }
                return [
                    "same=\(scope === Airlock.currentScope)",
                    "active=\(scope.isActive)",
                    "intents=\(scope.intents.count)",
                    "parent=\(scope.parent == nil ? "none" : "some")",
                ].joined(separator: " ")
            }
        }) { client in
            for _ in 0..<2 {  // a fresh scope each time: the count does not grow
                try await client.execute(uri: "/t/inspect", method: .get) { response in
                    #expect(response.body.text == "same=true active=true intents=2 parent=none")
                }
            }
            #expect(try await harness.readyJobs().count == 4)
        }
    }

    @Test("the flush rule is a value: .status(below: 300) discards a redirect, a closure sees the response")
    func customFlushRules() async throws {
        let harness = try await Harness.make()
        try await harness.withApp(addRoutes: { router in
            // Groups with a middleware of their own: an inner request scope inside the app-wide one.
            // What the inner scope discards never reaches the outer; what it flushes, the outer captures.
            router.group("t/strict")
                .add(middleware: AirlockMiddleware(flushWhen: .status(below: 300), executor: harness.executor))
                .post("redirect") { _, _ -> Response in
                    try Airlock.enqueue(Probe(label: "redirect"))
                    return Response.redirect(to: "/elsewhere")
                }
            let custom = router.group("t/custom")
                .add(middleware: AirlockMiddleware(flushWhen: FlushRule { response in
                    response.status.code < 400 && response.headers[.init("X-Dry-Run")!] == nil
                }, executor: harness.executor))
            custom.post("dry") { _, _ -> Response in
                try Airlock.enqueue(Probe(label: "dry"))
                return Response(status: .ok, headers: [.init("X-Dry-Run")!: "1"])
            }
            custom.post("wet") { _, _ -> Response in
                try Airlock.enqueue(Probe(label: "wet"))
                return Response(status: .ok)
            }
        }) { client in
            try await client.execute(uri: "/t/strict/redirect", method: .post) { #expect($0.status == .seeOther) }
            try await client.execute(uri: "/t/custom/dry", method: .post) { #expect($0.status == .ok) }
            try await client.execute(uri: "/t/custom/wet", method: .post) { #expect($0.status == .ok) }
            // All three answered below 400, so the app-wide scope flushed each time; only "wet" escaped.
            #expect(try await harness.readyJobs().map(\.kwargs["label"]) == [.string("wet")])
        }
    }

    @Test("a handler that enqueues nothing never calls the executor, and a missing route still answers 404")
    func emptyAndNotFound() async throws {
        let harness = try await Harness.make()
        try await harness.withApp(addRoutes: { router in
            router.get("/t/quiet") { _, _ in "quiet" }
        }) { client in
            try await client.execute(uri: "/t/quiet", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/t/nowhere", method: .get) { #expect($0.status == .notFound) }
            #expect(try await harness.readyJobs().isEmpty)
        }
    }

    /// Fails every dispatch, as a Redis that is down would.
    struct UnreachableExecutor: Executor {
        struct Down: Error, CustomStringConvertible {
            var description: String { "executor back end unreachable" }
        }
        func dispatch(_ intents: [Intent]) async throws {
            throw DispatchError(dispatched: [], notDispatched: intents, underlying: Down())
        }
    }

    /// A behaviour that flushes even when the handler threw.
    struct FlushOnError: ScopeBehavior {
        func shouldFlush(_ scope: Scope, error: (any Error)?) -> Bool { true }
    }

    /// Keeps the error the rest of the chain threw (it sits outside the airlock middleware).
    final class ErrorRecorder<Context: RequestContext>: RouterMiddleware, Sendable {
        private let state = Mutex<(any Error)?>(nil)
        var error: (any Error)? { state.withLock { $0 } }
        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            do {
                return try await next(request, context)
            } catch {
                state.withLock { $0 = error }
                throw error
            }
        }
    }

    @Test("both the handler and the flush fail → one DispatchError that carries the handler's error; the client gets a 500")
    func handlerAndFlushBothFail() async throws {
        let recorder = ErrorRecorder<BasicAirlockRequestContext>()
        let router = Router(context: BasicAirlockRequestContext.self)
        router.add(middleware: recorder)
        router.add(middleware: AirlockMiddleware(executor: UnreachableExecutor(), behavior: FlushOnError()))
        router.post("/t/both") { _, _ -> Response in
            try Airlock.enqueue(Probe(label: "both"))
            throw HTTPError(.conflict, message: "the handler's own failure")
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: quietLogger)
        try await app.test(.live) { client in
            try await client.execute(uri: "/t/both", method: .post) { response in
                #expect(response.status == .internalServerError)
            }
        }
        let error = try #require(recorder.error as? DispatchError)
        #expect((error.bodyError as? HTTPError)?.status == .conflict)
        #expect(error.underlying is UnreachableExecutor.Down)
        #expect(error.notDispatched.map(\.taskName) == [Probe.name])
        #expect(error.dispatched.isEmpty)
    }
}
