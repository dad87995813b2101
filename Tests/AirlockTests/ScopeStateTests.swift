import Testing

@testable import Airlock

extension AirlockCore {
    @Suite("Scope state machine")
    struct ScopeStateTests {
        enum Ending: String, CaseIterable, Sendable, CustomTestStringConvertible {
            case flush, discard
            var testDescription: String { rawValue }

            func apply(to scope: Scope) async throws {
                switch self {
                case .flush: try await scope.flush()
                case .discard: try scope.discard()
                }
            }
        }

        @Test func newScopeIsInactiveEmptyAndParentless() throws {
            let scope = try makeScope()
            #expect(!scope.isActive)
            #expect(!scope.isFlushed)
            #expect(!scope.isDiscarded)
            #expect(scope.intents.isEmpty)
            #expect(scope.ownIntents.isEmpty)
            #expect(scope.capturedIntents.isEmpty)
            #expect(scope.parent == nil)
        }

        @Test func enterActivatesAndExitDeactivates() throws {
            let scope = try makeScope()
            try scope.enter()
            #expect(scope.isActive)
            try scope.exit()
            #expect(!scope.isActive)
            #expect(!scope.isFlushed && !scope.isDiscarded)
        }

        @Test func enteringTwiceIsAScopeStateError() throws {
            let scope = try makeScope()
            try scope.enter()
            let error = #expect(throws: ScopeStateError.self) { try scope.enter() }
            #expect(error?.description.contains("already active") == true)
            #expect(scope.isActive)
        }

        @Test func enteringAUsedScopeAgainIsAScopeStateError() async throws {
            let scope = try makeScope()
            try scope.enter()
            try scope.exit()
            #expect(throws: ScopeStateError.self) { try scope.enter() }
            try await scope.flush()
            #expect(throws: ScopeStateError.self) { try scope.enter() }
        }

        @Test func exitingANeverEnteredScopeIsAScopeStateError() throws {
            let scope = try makeScope()
            let error = #expect(throws: ScopeStateError.self) { try scope.exit() }
            #expect(error?.description.contains("not active") == true)
        }

        @Test func exitingTwiceIsAScopeStateError() throws {
            let scope = try makeScope()
            try scope.enter()
            try scope.exit()
            #expect(throws: ScopeStateError.self) { try scope.exit() }
        }

        @Test func exitingAFlushedScopeIsAScopeStateError() async throws {
            let scope = try makeScope()
            try await scope.flush()
            #expect(throws: ScopeStateError.self) { try scope.exit() }
        }

        @Test(arguments: Ending.allCases)
        func endingWhileActiveIsAScopeStateError(_ ending: Ending) async throws {
            let executor = CountingExecutor()
            let scope = try makeScope(executor: executor)
            try scope.enter()
            try await scope.withCurrent { try enqueue("a") }
            let error = await #expect(throws: ScopeStateError.self) { try await ending.apply(to: scope) }
            #expect(error?.description.contains("still active") == true)
            // Nothing changed: still active, still holding its intent, nothing dispatched.
            #expect(scope.isActive)
            #expect(!scope.isFlushed && !scope.isDiscarded)
            #expect(scope.intents.names == ["a"])
            #expect(executor.calls == 0)
        }

        @Test(arguments: Ending.allCases, Ending.allCases)
        func endingAnEndedScopeIsAScopeStateError(first: Ending, second: Ending) async throws {
            let executor = CountingExecutor()
            let scope = try makeScope(executor: executor)
            try scope.enter()
            try await scope.withCurrent { try enqueue("a") }
            try scope.exit()
            try await first.apply(to: scope)
            let callsAfterFirst = executor.calls

            let error = await #expect(throws: ScopeStateError.self) { try await second.apply(to: scope) }
            let expected = first == .flush ? "already been flushed" : "already been discarded"
            #expect(error?.description.contains(expected) == true)
            // The second attempt changed nothing.
            #expect(scope.isFlushed == (first == .flush))
            #expect(scope.isDiscarded == (first == .discard))
            #expect(executor.calls == callsAfterFirst)
        }

        @Test func aNeverEnteredScopeCanBeFlushedByHand() async throws {
            let executor = CountingExecutor()
            let scope = try makeScope(executor: executor)
            let dispatched = try await scope.flush()
            #expect(dispatched.isEmpty)
            #expect(scope.isFlushed)
            #expect(!scope.isDiscarded)
            #expect(executor.calls == 0)
        }

        @Test func aNeverEnteredScopeCanBeDiscardedByHand() throws {
            let scope = try makeScope()
            let dropped = try scope.discard()
            #expect(dropped.isEmpty)
            #expect(scope.isDiscarded)
            #expect(!scope.isFlushed)
        }

        @Test func flushReturnsTheDispatchedIntentsInOrderAndKeepsTheBuffer() async throws {
            let executor = CountingExecutor()
            let scope = try makeScope(policy: BlockTasks(["b"]), executor: executor)
            try scope.enter()
            let made = try await scope.withCurrent {
                [try enqueued("a"), try enqueued("b"), try enqueued("c")]
            }
            try scope.exit()
            let dispatched = try await scope.flush()
            #expect(dispatched.names == ["a", "c"])
            #expect(dispatched.ids == [made[0].id, made[2].id])
            #expect(executor.batches.map(\.ids) == [dispatched.ids])
            // The buffer is still readable after the flush, including what the policy dropped.
            #expect(scope.intents.names == ["a", "b", "c"])
            #expect(scope.isFlushed)
        }

        @Test func discardReturnsWhatWasDroppedAndEveryViewIsEmptyAfterwards() async throws {
            let outerExecutor = CountingExecutor()
            let outer = try makeScope(executor: outerExecutor)
            try outer.enter()
            try await outer.withCurrent {
                try enqueue("own")
                try await Airlock.scope(policy: AllowAll(), executor: CountingExecutor(), behavior: DefaultScopeBehavior()) {
                    try enqueue("captured")
                }
            }
            try outer.exit()
            #expect(outer.ownIntents.names == ["own"])
            #expect(outer.capturedIntents.names == ["captured"])

            let dropped = try outer.discard()
            #expect(dropped.names == ["own", "captured"])
            #expect(outer.intents.isEmpty)
            #expect(outer.ownIntents.isEmpty)
            #expect(outer.capturedIntents.isEmpty)
            #expect(outer.isDiscarded)
            #expect(outerExecutor.calls == 0)
        }

        @Test func imperativeEnterWithCurrentExitFlush() async throws {
            let executor = CountingExecutor()
            let scope = try makeScope(executor: executor)
            try scope.enter()
            // Entering does not bind the scope to the task; withCurrent does.
            #expect(Airlock.currentScope == nil)
            let inside = try await scope.withCurrent { () async throws -> Scope? in
                try enqueue("a")
                try enqueue("b")
                return Airlock.currentScope
            }
            #expect(inside === scope)
            #expect(Airlock.currentScope == nil)
            #expect(executor.calls == 0)
            try scope.exit()
            let dispatched = try await scope.flush()
            #expect(dispatched.names == ["a", "b"])
            #expect(executor.names == ["a", "b"])
        }

        @Test func enterRecordsTheCurrentScopeAsParent() async throws {
            let outer = try makeScope()
            let inner = try makeScope()
            try outer.enter()
            try await outer.withCurrent { try inner.enter() }
            #expect(inner.parent === outer)
            #expect(outer.parent == nil)
        }

        @Test func scopeMakesItselfCurrentAndRestoresTheParent() async throws {
            let outer = try makeScope()
            try await Airlock.scope(outer) {
                #expect(Airlock.currentScope === outer)
                let inner = try makeScope()
                try await Airlock.scope(inner) {
                    #expect(Airlock.currentScope === inner)
                    #expect(inner.parent === outer)
                }
                #expect(Airlock.currentScope === outer)
            }
            #expect(Airlock.currentScope == nil)
        }

        @Test func bodyThatFlushesByHandSkipsTheTerminalStep() async throws {
            let executor = CountingExecutor()
            let scope = try makeScope(executor: executor)
            let dispatched = try await Airlock.scope(scope) { () async throws -> [Intent] in
                try enqueue("a")
                try scope.exit()
                return try await scope.flush()
            }
            #expect(dispatched.names == ["a"])
            #expect(executor.calls == 1)  // not flushed a second time
            #expect(scope.isFlushed)
        }

        @Test func bodyThatDiscardsByHandSkipsTheTerminalStep() async throws {
            let executor = CountingExecutor()
            let scope = try makeScope(executor: executor)
            try await Airlock.scope(scope) {
                try enqueue("a")
                try scope.exit()
                try scope.discard()
            }
            #expect(scope.isDiscarded)
            #expect(!scope.isFlushed)
            #expect(executor.calls == 0)
        }

        @Test func bodyThatOnlyExitsStillGetsFlushed() async throws {
            let executor = CountingExecutor()
            let scope = try makeScope(executor: executor)
            try await Airlock.scope(scope) {
                try enqueue("a")
                try scope.exit()
            }
            #expect(scope.isFlushed)
            #expect(executor.names == ["a"])
        }

        @Test func runningAnAlreadyUsedScopeIsAScopeStateError() async throws {
            let scope = try makeScope()
            try await Airlock.scope(scope) {}
            let ran = EventLog()
            await #expect(throws: ScopeStateError.self) {
                try await Airlock.scope(scope) { ran.record("body") }
            }
            #expect(ran.events.isEmpty)
        }

        @Test func descriptionNamesPolicyCountAndState() async throws {
            let scope = try makeScope(policy: DropAll())
            try scope.enter()
            try await scope.withCurrent {
                try enqueue("a")
                try enqueue("b")
            }
            #expect(scope.description == "Scope(policy: DropAll(), intents: 2, active)")
            try scope.exit()
            try await scope.flush()
            #expect(scope.description == "Scope(policy: DropAll(), intents: 2, flushed)")
        }
    }
}
