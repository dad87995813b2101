import Airlock
import AirlockRedis
import AirlockVapor
import Synchronization
import Testing
import Vapor
import VaporTesting

/// The request scope over real HTTP: what each outcome of a handler does to what it enqueued.
@Suite("AirlockMiddleware", .timeLimit(.minutes(2)))
struct MiddlewareTests {
    /// Routes that enqueue a probe, then answer with the status in the path or throw.
    static func probeRoutes(_ app: Application) {
        app.post("t", "status", ":code") { req async throws -> Response in
            let code = try #require(req.parameters.get("code", as: UInt.self))
            try Airlock.enqueue(Probe(label: "status-\(code)"))
            return Response(status: .init(statusCode: Int(code)))
        }
        app.post("t", "throw", "abort") { _ async throws -> Response in
            try Airlock.enqueue(Probe(label: "throw-abort"))
            throw Abort(.conflict)
        }
        app.post("t", "throw", "plain") { _ async throws -> Response in
            try Airlock.enqueue(Probe(label: "throw-plain"))
            throw Teapot()
        }
    }

    @Test("a response below 400 flushes: the job is in the ready list when the client gets the response",
          arguments: [200, 201, 204, 302])
    func successFlushes(status: Int) async throws {
        let harness = try await Harness.make()
        try await harness.withApp(configure: Self.probeRoutes) { app in
            try await app.testing(method: live).test(.POST, "t/status/\(status)") { response in
                #expect(response.status.code == status)
            }
            let jobs = try await harness.readyJobs()
            #expect(jobs.map(\.task) == [Probe.name])
            #expect(jobs.first?.kwargs["label"] == .string("status-\(status)"))
        }
    }

    @Test("a 4xx or 5xx response discards: nothing reaches Redis", arguments: [400, 404, 409, 422, 500, 503])
    func failureStatusDiscards(status: Int) async throws {
        let harness = try await Harness.make()
        try await harness.withApp(configure: Self.probeRoutes) { app in
            try await app.testing(method: live).test(.POST, "t/status/\(status)") { response in
                #expect(response.status.code == status)
            }
            #expect(try await harness.readyJobs().isEmpty)
        }
    }

    @Test("a thrown error discards, whether Vapor turns it into a 409 (Abort) or a 500")
    func thrownErrorDiscards() async throws {
        let harness = try await Harness.make()
        try await harness.withApp(configure: Self.probeRoutes) { app in
            let tester = try app.testing(method: live)
            try await tester.test(.POST, "t/throw/abort") { #expect($0.status == .conflict) }
            try await tester.test(.POST, "t/throw/plain") { #expect($0.status == .internalServerError) }
            #expect(try await harness.readyJobs().isEmpty)
        }
    }

    @Test("req.airlock is the request's scope (the same as Airlock.currentScope), fresh for each request")
    func scopeIsInspectable() async throws {
        let harness = try await Harness.make()
        try await harness.withApp(configure: { app in
            app.get("t", "inspect") { req async throws -> String in
                try Airlock.enqueue(Probe(label: "one"))
                try Airlock.enqueue(Probe(label: "two"))
                guard let scope = req.airlock.scope else { return "no scope on the request" }
                return [
                    "same=\(scope === Airlock.currentScope)",
                    "active=\(scope.isActive)",
                    "intents=\(req.airlock.intents.count)",
                    "parent=\(scope.parent == nil ? "none" : "some")",
                ].joined(separator: " ")
            }
        }) { app in
            let tester = try app.testing(method: live)
            for _ in 0..<2 {  // a fresh scope each time: the count does not grow
                try await tester.test(.GET, "t/inspect") { response in
                    #expect(response.text == "same=true active=true intents=2 parent=none")
                }
            }
            #expect(try await harness.readyJobs().count == 4)
        }
    }

    @Test("the flush rule is a value: .status(below: 300) discards a redirect, a closure sees the response")
    func customFlushRules() async throws {
        let harness = try await Harness.make()
        let executor = try harness.executor()
        try await harness.withApp(configure: { app in
            // Groups with a middleware of their own: an inner request scope inside the app-wide one.
            // What the inner scope discards never reaches the outer; what it flushes, the outer captures.
            app.grouped("t", "strict").grouped(AirlockMiddleware(flushWhen: .status(below: 300), executor: executor))
                .post("redirect") { _ async throws -> Response in
                    try Airlock.enqueue(Probe(label: "redirect"))
                    // No Location header: the test's HTTP client would follow it.
                    return Response(status: .seeOther)
                }
            let custom = app.grouped("t", "custom").grouped(AirlockMiddleware(flushWhen: FlushRule { response in
                response.status.code < 400 && response.headers.first(name: "X-Dry-Run") == nil
            }, executor: executor))
            custom.post("dry") { _ async throws -> Response in
                try Airlock.enqueue(Probe(label: "dry"))
                return Response(status: .ok, headers: ["X-Dry-Run": "1"])
            }
            custom.post("wet") { _ async throws -> Response in
                try Airlock.enqueue(Probe(label: "wet"))
                return Response(status: .ok)
            }
        }) { app in
            let tester = try app.testing(method: live)
            try await tester.test(.POST, "t/strict/redirect") { #expect($0.status == .seeOther) }
            try await tester.test(.POST, "t/custom/dry") { #expect($0.status == .ok) }
            try await tester.test(.POST, "t/custom/wet") { #expect($0.status == .ok) }
            // All three answered below 400, so the app-wide scope flushed each time; only "wet" escaped.
            #expect(try await harness.readyJobs().map(\.kwargs["label"]) == [.string("wet")])
        }
        await executor.client.close()
    }

    @Test("a handler that enqueues nothing queues nothing, and a missing route still answers 404")
    func emptyAndNotFound() async throws {
        let harness = try await Harness.make()
        try await harness.withApp(configure: { app in
            app.get("t", "quiet") { _ in "quiet" }
        }) { app in
            let tester = try app.testing(method: live)
            try await tester.test(.GET, "t/quiet") { #expect($0.status == .ok) }
            try await tester.test(.GET, "t/nowhere") { #expect($0.status == .notFound) }
            #expect(try await harness.readyJobs().isEmpty)
        }
    }

    @Test("a synchronous handler runs outside the request's task: enqueue throws NoScopeError (a 500), never a silent loss")
    func synchronousHandlerSeesNoScope() async throws {
        let harness = try await Harness.make()
        let outcome = Mutex<String>("not run")
        try await harness.withApp(configure: { app in
            // Vapor calls a synchronous handler from an event-loop callback (after collecting the
            // body), where task-local values — the current scope — are not visible.
            app.post("t", "sync") { req -> HTTPStatus in
                do {
                    try Airlock.enqueue(Probe(label: "sync"))
                    outcome.withLock { $0 = "enqueued" }
                } catch let error as NoScopeError {
                    outcome.withLock { $0 = "NoScopeError: \(error.taskName)" }
                    throw error
                }
                return .ok
            }
        }) { app in
            try await app.testing(method: live).test(.POST, "t/sync") { #expect($0.status == .internalServerError) }
            #expect(outcome.withLock { $0 } == "NoScopeError: \(Probe.name)")
            #expect(try await harness.readyJobs().isEmpty)
        }
    }

    @Test("the flush's dispatch fails → 500: the client never sees a success whose side effects were lost")
    func dispatchFailureIs500() async throws {
        let harness = try await Harness.make()
        try await harness.withBareApp({ app in
            app.grouped(AirlockMiddleware(executor: UnreachableExecutor())).post("t", "ok") { _ async throws -> HTTPStatus in
                try Airlock.enqueue(Probe(label: "lost"))
                return .ok
            }
        }) { app in
            try await app.testing(method: live).test(.POST, "t/ok") { response in
                #expect(response.status == .internalServerError)
            }
        }
    }

    /// A behaviour that flushes even when the handler threw.
    struct FlushOnError: ScopeBehavior {
        func shouldFlush(_ scope: Scope, error: (any Error)?) -> Bool { true }
    }

    /// Keeps the error the rest of the chain threw (it sits outside the airlock middleware).
    final class ErrorRecorder: AsyncMiddleware {
        private let state = Mutex<(any Error)?>(nil)
        var error: (any Error)? { state.withLock { $0 } }
        func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
            do {
                return try await next.respond(to: request)
            } catch {
                state.withLock { $0 = error }
                throw error
            }
        }
    }

    @Test("both the handler and the flush fail → one DispatchError that carries the handler's error, and the 500 names both")
    func handlerAndFlushBothFail() async throws {
        let harness = try await Harness.make()
        let recorder = ErrorRecorder()
        try await harness.withBareApp({ app in
            app.grouped(recorder).grouped(AirlockMiddleware(executor: UnreachableExecutor(), behavior: FlushOnError()))
                .post("t", "both") { _ async throws -> HTTPStatus in
                    try Airlock.enqueue(Probe(label: "both"))
                    throw Abort(.conflict, reason: "the handler's own failure")
                }
        }) { app in
            try await app.testing(method: live).test(.POST, "t/both") { response in
                #expect(response.status == .internalServerError)
                #expect(response.text.contains("executor back end unreachable"))
                #expect(response.text.contains("the handler's own failure"))
            }
        }
        let error = try #require(recorder.error as? DispatchError)
        #expect((error.bodyError as? Abort)?.status == .conflict)
        #expect(error.notDispatched.map(\.taskName) == [Probe.name])
        #expect(error.dispatched.isEmpty)
    }
}
