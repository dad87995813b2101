import Synchronization
import Testing

@testable import Airlock

extension AirlockCore {
    @Suite("Ending a scope: shouldFlush and errors")
    struct ShouldFlushTests {
        @Test func successfulBodyFlushesAndReturnsTheBodysValue() async throws {
            let executor = CountingExecutor()
            let value = try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                try enqueue("a")
                #expect(executor.calls == 0)  // buffered, not dispatched yet
                return 42
            }
            #expect(value == 42)
            #expect(executor.names == ["a"])
        }

        @Test func failingBodyDiscardsAndRethrowsTheSameError() async throws {
            let executor = CountingExecutor()
            let scope = try makeScope(executor: executor)
            let error = await #expect(throws: Boom.self) {
                try await Airlock.scope(scope) {
                    try enqueue("a")
                    throw Boom("body")
                }
            }
            #expect(error == Boom("body"))
            #expect(scope.isDiscarded)
            #expect(scope.intents.isEmpty)
            #expect(executor.calls == 0)
        }

        @Test func shouldFlushAlwaysFlushesAfterAnErrorAndStillRethrows() async throws {
            let executor = CountingExecutor()
            let scope = try makeScope(executor: executor, behavior: TestBehavior.flushAlways)
            await #expect(throws: Boom("body")) {
                try await Airlock.scope(scope) {
                    try enqueue("a")
                    throw Boom("body")
                }
            }
            #expect(scope.isFlushed)
            #expect(executor.names == ["a"])
        }

        @Test func shouldFlushNeverDiscardsASuccessfulBody() async throws {
            let executor = CountingExecutor()
            let scope = try makeScope(executor: executor, behavior: TestBehavior.flushNever)
            try await Airlock.scope(scope) { try enqueue("a") }
            #expect(scope.isDiscarded)
            #expect(!scope.isFlushed)
            #expect(executor.calls == 0)
        }

        @Test func shouldFlushCanInspectTheIntents() async throws {
            // Flush only when an "commit" intent was buffered.
            let behavior = TestBehavior(flushDecision: { scope, _ in scope.intents.contains { $0.name == "commit" } })

            let withCommit = CountingExecutor()
            try await Airlock.scope(policy: AllowAll(), executor: withCommit, behavior: behavior) {
                try enqueue("a")
                try enqueue("commit")
            }
            #expect(withCommit.names == ["a", "commit"])

            let withoutCommit = CountingExecutor()
            let scope = try makeScope(executor: withoutCommit, behavior: behavior)
            try await Airlock.scope(scope) { try enqueue("a") }
            #expect(withoutCommit.calls == 0)
            #expect(scope.isDiscarded)
        }

        @Test func shouldFlushReceivesTheBodysErrorOrNil() async throws {
            let seen = Mutex<[String]>([])
            let behavior = TestBehavior(flushDecision: { _, error in
                seen.withLock { $0.append(error.map { "\($0)" } ?? "nil") }
                return false
            })
            try await Airlock.scope(policy: AllowAll(), executor: CountingExecutor(), behavior: behavior) {}
            await #expect(throws: Boom.self) {
                try await Airlock.scope(policy: AllowAll(), executor: CountingExecutor(), behavior: behavior) {
                    throw Boom("given to shouldFlush")
                }
            }
            #expect(seen.withLock { $0 } == ["nil", "Boom(given to shouldFlush)"])
        }

        @Test func flushAfterAFailedBodyWhoseDispatchFailsCarriesBothErrors() async throws {
            let scope = try makeScope(executor: ThrowingExecutor(error: Boom("dispatch")), behavior: TestBehavior.flushAlways)
            var intent: Intent?
            let error = await #expect(throws: DispatchError.self) {
                try await Airlock.scope(scope) {
                    intent = try enqueued("a")
                    throw Boom("body")
                }
            }
            let dispatchError = try #require(error)
            #expect(dispatchError.bodyError as? Boom == Boom("body"))
            #expect(dispatchError.underlying as? Boom == Boom("dispatch"))
            #expect(dispatchError.dispatched.isEmpty)
            #expect(dispatchError.notDispatched.ids == [try #require(intent).id])
            #expect(dispatchError.description.contains("Boom(body)"))
            #expect(scope.isFlushed)
        }

        @Test func aThrowingPolicyAfterAFailedBodyKeepsBothErrors() async throws {
            let executor = CountingExecutor()
            let failing = ClosurePolicy(allow: { _ in throw Boom("policy") })
            let scope = try makeScope(policy: failing, executor: executor, behavior: TestBehavior.flushAlways)
            let error = await #expect(throws: DispatchError.self) {
                try await Airlock.scope(scope) {
                    try enqueue("a")
                    throw Boom("body")
                }
            }
            #expect(error?.bodyError as? Boom == Boom("body"))
            #expect(error?.underlying as? Boom == Boom("policy"))
            #expect(error?.dispatched.isEmpty == true)
            #expect(executor.calls == 0)
            #expect(scope.isFlushed)
        }

        @Test func theDefaultBehaviour() throws {
            let behavior = DefaultScopeBehavior()
            let scope = try makeScope()
            #expect(behavior.shouldFlush(scope, error: nil))
            #expect(!behavior.shouldFlush(scope, error: Boom()))
            #expect(!behavior.shouldFlush(scope, error: CancellationError()))
            #expect(behavior.beforeDescendantFlushes(scope, exiting: try makeScope(), intents: [makeIntent("a")]).isEmpty)
            #expect(behavior.supportedSettings.isEmpty)
        }

        @Test func dispatchFailureAfterASuccessfulBodyHasNoBodyError() async throws {
            let error = await #expect(throws: DispatchError.self) {
                try await Airlock.scope(policy: AllowAll(), executor: ThrowingExecutor(), behavior: DefaultScopeBehavior()) {
                    try enqueue("a")
                }
            }
            #expect(error?.bodyError == nil)
            #expect(error?.notDispatched.names == ["a"])
        }

        @Test func discardAfterFailedBodyDoesNotCallTheExecutor() async throws {
            // A failing executor would turn a silent discard into a DispatchError: it must not be reached.
            let error = await #expect(throws: Boom.self) {
                try await Airlock.scope(policy: AllowAll(), executor: ThrowingExecutor(), behavior: DefaultScopeBehavior()) {
                    try enqueue("a")
                    throw Boom("body")
                }
            }
            #expect(error == Boom("body"))
        }

        // MARK: Scope.end — the one scope-ending function (Airlock.scope and web middleware share it)

        @Test func endFlushesOrDiscardsAsTheCallerDecides() async throws {
            let executor = CountingExecutor()
            let flushed = try makeScope(executor: executor)
            try flushed.enter()
            try await flushed.withCurrent { try enqueue("kept") }
            guard case .flushed(let sent) = try await flushed.end(after: nil, flush: true) else {
                Issue.record("not flushed")
                return
            }
            #expect(sent.map(\.name) == ["kept"])
            let discarded = try makeScope(executor: executor)
            try discarded.enter()
            try await discarded.withCurrent { try enqueue("dropped") }
            // A middleware's rule (say a 404) overrides a behaviour that would flush.
            guard case .discarded(let dropped) = try await discarded.end(after: nil, flush: false) else {
                Issue.record("not discarded")
                return
            }
            #expect(dropped.map(\.name) == ["dropped"])
            #expect(executor.names == ["kept"])
        }

        @Test func endAfterTheBodyEndedTheScopeByHandDoesNothing() async throws {
            let executor = CountingExecutor()
            let scope = try makeScope(executor: executor)
            try scope.enter()
            try await scope.withCurrent { try enqueue("a") }
            try scope.exit()
            try scope.discard()
            guard case .alreadyEnded = try await scope.end(after: nil) else {
                Issue.record("ended twice")
                return
            }
            #expect(executor.calls == 0)
        }

        @Test func endWhenBothTheBodyAndTheFlushFailReportsBothAndEveryIntentNotDispatched() async throws {
            let scope = try makeScope(executor: ThrowingExecutor())
            try scope.enter()
            try await scope.withCurrent {
                try enqueue("a")
                try enqueue("b")
            }
            let error = await #expect(throws: DispatchError.self) { try await scope.end(after: Boom("body"), flush: true) }
            #expect(error?.bodyError as? Boom == Boom("body"))
            #expect(error?.underlying as? Boom == Boom("executor down"))
            #expect(error?.notDispatched.map(\.name) == ["a", "b"], "nothing went out, and the error says which")
            #expect(error?.dispatched.isEmpty == true)
        }
    }
}
