import Testing

@testable import Airlock

extension AirlockCore {
    @Suite("Nested scopes and capture")
    struct NestingTests {
        @Test func byDefaultTheOuterScopeCapturesEverything() async throws {
            let outerExecutor = CountingExecutor()
            let innerExecutor = CountingExecutor()
            let outer = try makeScope(executor: outerExecutor)
            let inner = try makeScope(executor: innerExecutor)

            try await Airlock.scope(outer) {
                try await Airlock.scope(inner) { try enqueue("b") }
                #expect(inner.isFlushed)
                #expect(outer.capturedIntents.names == ["b"])
                #expect(outerExecutor.calls == 0)  // not yet: the outer scope has not ended
            }
            #expect(innerExecutor.calls == 0)
            #expect(outerExecutor.batches.map(\.names) == [["b"]])
        }

        @Test func aCapturedFlushReturnsNothing() async throws {
            let outer = try makeScope()
            try await Airlock.scope(outer) {
                let inner = try makeScope()
                try inner.enter()
                try await inner.withCurrent { try enqueue("b") }
                try inner.exit()
                let dispatched = try await inner.flush()
                #expect(dispatched.isEmpty)
                #expect(inner.intents.names == ["b"])  // still readable
            }
        }

        @Test func anIndependentOuterScopeLetsTheInnerScopeDispatchItself() async throws {
            let outerExecutor = CountingExecutor()
            let innerExecutor = CountingExecutor()
            let outer = try makeScope(executor: outerExecutor, behavior: TestBehavior.independent)
            try await Airlock.scope(outer) {
                try enqueue("a")
                try await Airlock.scope(policy: AllowAll(), executor: innerExecutor, behavior: DefaultScopeBehavior()) {
                    try enqueue("b")
                }
                #expect(innerExecutor.names == ["b"])  // dispatched when the inner scope ended
            }
            #expect(outer.capturedIntents.isEmpty)
            #expect(outerExecutor.names == ["a"])
        }

        @Test func selectiveCaptureHoldsBackOnlyWhatTheAncestorClaims() async throws {
            let outerExecutor = CountingExecutor()
            let innerExecutor = CountingExecutor()
            // The outer scope holds back emails; everything else the inner scope may dispatch.
            let selective = TestBehavior(capture: { _, _, intents in intents.filter { $0.name != "email" } })
            let outer = try makeScope(executor: outerExecutor, behavior: selective)
            try await Airlock.scope(outer) {
                try await Airlock.scope(policy: AllowAll(), executor: innerExecutor, behavior: DefaultScopeBehavior()) {
                    try enqueue("log")
                    try enqueue("email")
                    try enqueue("metric")
                }
                #expect(innerExecutor.names == ["log", "metric"])
                #expect(outer.capturedIntents.names == ["email"])
            }
            #expect(outerExecutor.names == ["email"])
        }

        @Test func partialCaptureAcrossThreeLevels() async throws {
            // Grandparent claims "g", parent claims "p", the child dispatches the rest itself.
            let grandExecutor = CountingExecutor()
            let parentExecutor = CountingExecutor()
            let childExecutor = CountingExecutor()
            let grand = try makeScope(
                executor: grandExecutor, behavior: TestBehavior(capture: { _, _, i in i.filter { $0.name != "g" } }))
            let parent = try makeScope(
                executor: parentExecutor,
                behavior: TestBehavior(capture: { _, _, i in i.filter { $0.name != "p" } }))
            try await Airlock.scope(grand) {
                try await Airlock.scope(parent) {
                    try await Airlock.scope(policy: AllowAll(), executor: childExecutor, behavior: DefaultScopeBehavior()) {
                        try enqueue("g")
                        try enqueue("p")
                        try enqueue("c")
                    }
                    #expect(childExecutor.names == ["c"])
                    #expect(parent.capturedIntents.names == ["p"])
                    #expect(grand.capturedIntents.names == ["g"])
                }
            }
            #expect(parentExecutor.names == ["p"])
            #expect(grandExecutor.names == ["g"])
        }

        @Test func threeLevelDefaultChainEndsInTheOutermostScope() async throws {
            let outerExecutor = CountingExecutor()
            let middleExecutor = CountingExecutor()
            let innerExecutor = CountingExecutor()
            let outer = try makeScope(executor: outerExecutor)
            let middle = try makeScope(executor: middleExecutor)
            try await Airlock.scope(outer) {
                try enqueue("o1")
                try await Airlock.scope(middle) {
                    try enqueue("m1")
                    try await Airlock.scope(policy: AllowAll(), executor: innerExecutor, behavior: DefaultScopeBehavior()) {
                        try enqueue("i1")
                    }
                    #expect(middle.capturedIntents.names == ["i1"])
                    #expect(outer.capturedIntents.isEmpty)  // the nearest ancestor captured first
                    try enqueue("m2")
                }
                #expect(outer.capturedIntents.names == ["m1", "i1", "m2"])
                try enqueue("o2")
            }
            #expect(innerExecutor.calls == 0)
            #expect(middleExecutor.calls == 0)
            #expect(outerExecutor.batches.map(\.names) == [["o1", "m1", "i1", "m2", "o2"]])
        }

        @Test func threeLevelChainWithAnIndependentMiddleStillReachesTheOutermost() async throws {
            // The middle scope lets descendants go, but the outer scope (walked next) captures them.
            let outerExecutor = CountingExecutor()
            let outer = try makeScope(executor: outerExecutor)
            let middle = try makeScope(behavior: TestBehavior.independent)
            try await Airlock.scope(outer) {
                try await Airlock.scope(middle) {
                    try await Airlock.scope(policy: AllowAll(), executor: CountingExecutor(), behavior: DefaultScopeBehavior()) {
                        try enqueue("i1")
                    }
                    #expect(middle.capturedIntents.isEmpty)
                    #expect(outer.capturedIntents.names == ["i1"])
                }
            }
            #expect(outerExecutor.names == ["i1"])
        }

        @Test func provenanceSeparatesOwnAndCapturedIntents() async throws {
            let outer = try makeScope(policy: DropAll())
            try await Airlock.scope(outer) {
                try enqueue("own1")
                try await Airlock.scope(policy: AllowAll(), executor: CountingExecutor(), behavior: DefaultScopeBehavior()) {
                    try enqueue("cap1")
                    try enqueue("cap2")
                }
                try enqueue("own2")
            }
            #expect(outer.ownIntents.names == ["own1", "own2"])
            #expect(outer.capturedIntents.names == ["cap1", "cap2"])
            #expect(outer.intents.names == ["own1", "cap1", "cap2", "own2"])
        }

        @Test func capturedIntentsAreTheSameIntents() async throws {
            let outer = try makeScope(policy: DropAll())
            var enqueued: [Intent] = []
            try await Airlock.scope(outer) {
                try await Airlock.scope(policy: AllowAll(), executor: CountingExecutor(), behavior: DefaultScopeBehavior()) {
                    enqueued.append(try Airlock.enqueue(name: "x", args: [1], origin: "inner"))
                }
            }
            let captured = try #require(outer.capturedIntents.first)
            #expect(captured.id == enqueued.first?.id)
            #expect(captured.origin == "inner")
        }

        @Test func theOuterPolicyFiltersCapturedIntents() async throws {
            let outerExecutor = CountingExecutor()
            let outer = try makeScope(policy: BlockTasks(["b"]), executor: outerExecutor)
            try await Airlock.scope(outer) {
                try await Airlock.scope(policy: AllowAll(), executor: CountingExecutor(), behavior: DefaultScopeBehavior()) {
                    try enqueue("a")
                    try enqueue("b")
                }
            }
            #expect(outerExecutor.names == ["a"])
        }

        @Test func capturedIntentsStillPassTheirOwnLocalPolicies() async throws {
            let outerExecutor = CountingExecutor()
            try await Airlock.scope(policy: AllowAll(), executor: outerExecutor, behavior: DefaultScopeBehavior()) {
                try await Airlock.scope(policy: AllowAll(), executor: CountingExecutor(), behavior: DefaultScopeBehavior()) {
                    try Airlock.policy(BlockTasks(["b"])) {
                        try enqueue("a")
                        try enqueue("b")
                    }
                }
            }
            #expect(outerExecutor.names == ["a"])
        }

        @Test func anInnerDiscardLeavesTheParentUntouched() async throws {
            let outerExecutor = CountingExecutor()
            let outer = try makeScope(executor: outerExecutor)
            try await Airlock.scope(outer) {
                try enqueue("a")
                await #expect(throws: Boom.self) {
                    try await Airlock.scope(policy: AllowAll(), executor: CountingExecutor(), behavior: DefaultScopeBehavior()) {
                        try enqueue("b")
                        throw Boom()
                    }
                }
                #expect(outer.intents.names == ["a"])
                #expect(outer.capturedIntents.isEmpty)
                #expect(outer.isActive)
                try enqueue("c")
            }
            #expect(outerExecutor.names == ["a", "c"])
        }

        @Test func theExitingScopeIsAlwaysTheInnermost() async throws {
            let spy = CaptureSpy()
            let outer = try makeScope(behavior: spy.behavior())
            let middle = try makeScope(behavior: spy.behavior(decide: { $0 }))  // lets everything through
            let inner = try makeScope()
            try await Airlock.scope(outer) {
                try await Airlock.scope(middle) {
                    try await Airlock.scope(inner) { try enqueue("x") }
                }
            }
            let calls = spy.recorded
            // The inner flush walks middle then outer, both told the inner scope is exiting;
            // then the middle flush asks the outer scope about the middle scope.
            #expect(calls.map(\.holder) == [ObjectIdentifier(middle), ObjectIdentifier(outer), ObjectIdentifier(outer)])
            #expect(calls.map(\.exiting) == [ObjectIdentifier(inner), ObjectIdentifier(inner), ObjectIdentifier(middle)])
            #expect(calls.map(\.offered) == [["x"], ["x"], []])
        }

        @Test func beforeDescendantFlushesIsCalledEvenWithAnEmptyList() async throws {
            let spy = CaptureSpy()
            let outer = try makeScope(behavior: spy.behavior())
            try await Airlock.scope(outer) {
                try await Airlock.scope(policy: AllowAll(), executor: CountingExecutor(), behavior: DefaultScopeBehavior()) {}
            }
            #expect(spy.recorded.count == 1)
            #expect(spy.recorded.first?.offered == [])
        }

        @Test func severalSequentialInnerScopesAreAllCapturedInOrder() async throws {
            let outerExecutor = CountingExecutor()
            let outer = try makeScope(executor: outerExecutor)
            try await Airlock.scope(outer) {
                for n in 1...3 {
                    try await Airlock.scope(policy: AllowAll(), executor: CountingExecutor(), behavior: DefaultScopeBehavior()) {
                        try enqueue("inner\(n)")
                    }
                }
            }
            #expect(outer.capturedIntents.names == ["inner1", "inner2", "inner3"])
            #expect(outerExecutor.batches.map(\.names) == [["inner1", "inner2", "inner3"]])
        }

        @Test func orderIsBufferOrderAcrossNesting() async throws {
            let outerExecutor = CountingExecutor()
            try await Airlock.scope(policy: AllowAll(), executor: outerExecutor, behavior: DefaultScopeBehavior()) {
                try enqueue("a")
                try await Airlock.scope(policy: AllowAll(), executor: CountingExecutor(), behavior: DefaultScopeBehavior()) {
                    try enqueue("b")
                }
                try enqueue("c")
            }
            #expect(outerExecutor.names == ["a", "b", "c"])
        }

        @Test func capturedIntentsSkipTheInnerPolicyAndExecutor() async throws {
            // An inner DropAll inside an outer AllowAll still dispatches, through the outer executor.
            let outerExecutor = CountingExecutor()
            let innerExecutor = CountingExecutor()
            try await Airlock.scope(policy: AllowAll(), executor: outerExecutor, behavior: DefaultScopeBehavior()) {
                try await Airlock.scope(policy: DropAll(), executor: innerExecutor, behavior: DefaultScopeBehavior()) {
                    try enqueue("b")
                }
            }
            #expect(innerExecutor.calls == 0)
            #expect(outerExecutor.names == ["b"])
        }

        @Test func theInnerOnEnqueueRanButTheOuterOnEnqueueDoesNot() async throws {
            let log = EventLog()
            try await Airlock.scope(policy: recordingPolicy("outer", log: log), executor: CountingExecutor(), behavior: DefaultScopeBehavior()) {
                try await Airlock.scope(policy: recordingPolicy("inner", log: log), executor: CountingExecutor(), behavior: DefaultScopeBehavior()) {
                    try enqueue("b")
                }
            }
            // inner.onEnqueue at enqueue; inner.allows skipped (captured); outer.onEnqueue skipped; outer.allows at flush.
            #expect(log.events == ["inner.onEnqueue:b", "outer.allows:b"])
        }

        @Test func theInnerOnEnqueueCanStillRefuse() async throws {
            let outerExecutor = CountingExecutor()
            try await Airlock.scope(policy: AllowAll(), executor: outerExecutor, behavior: DefaultScopeBehavior()) {
                let inner = try makeScope(policy: AssertNoEffects())
                try await Airlock.scope(inner) {
                    #expect(throws: PolicyViolation.self) { try enqueue("b") }
                    #expect(inner.intents.isEmpty)
                }
            }
            #expect(outerExecutor.calls == 0)
        }

        @Test func capturingIntoAnAlreadyEndedAncestorIsAScopeStateError() async throws {
            let outerExecutor = CountingExecutor()
            let outer = try makeScope(executor: outerExecutor)
            let inner = try makeScope()
            try outer.enter()
            try await outer.withCurrent {
                try inner.enter()
                try await inner.withCurrent { try enqueue("late") }
            }
            // The ancestor ends first, then the descendant tries to hand its intent up.
            try outer.exit()
            try await outer.flush()
            try inner.exit()
            let error = await #expect(throws: ScopeStateError.self) { try await inner.flush() }
            #expect(error?.description.contains("already flushed") == true)
            #expect(inner.isFlushed)
            #expect(outer.intents.isEmpty)
            #expect(outerExecutor.calls == 0)
        }

        @Test func capturingIntoADiscardedAncestorIsAScopeStateError() async throws {
            let outer = try makeScope()
            let inner = try makeScope()
            try outer.enter()
            try await outer.withCurrent {
                try inner.enter()
                try await inner.withCurrent { try enqueue("late") }
            }
            try outer.exit()
            try outer.discard()
            try inner.exit()
            let error = await #expect(throws: ScopeStateError.self) { try await inner.flush() }
            #expect(error?.description.contains("discarded") == true)
        }

        @Test func anAncestorCannotWidenTheList() async throws {
            let stranger = makeIntent("stranger")
            let innerExecutor = CountingExecutor()
            // The ancestor answers with everything it was offered plus an intent it was never offered.
            let widening = TestBehavior(capture: { _, _, intents in intents + [stranger] })
            let outer = try makeScope(behavior: widening)
            try await Airlock.scope(outer) {
                try await Airlock.scope(policy: AllowAll(), executor: innerExecutor, behavior: DefaultScopeBehavior()) {
                    try enqueue("a")
                }
            }
            #expect(innerExecutor.names == ["a"])
            #expect(outer.capturedIntents.isEmpty)
        }

        @Test func anAncestorThatReturnsADuplicateDoesNotDispatchTwice() async throws {
            let innerExecutor = CountingExecutor()
            let doubling = TestBehavior(capture: { _, _, intents in intents + intents })
            try await Airlock.scope(policy: AllowAll(), executor: CountingExecutor(), behavior: doubling) {
                try await Airlock.scope(policy: AllowAll(), executor: innerExecutor, behavior: DefaultScopeBehavior()) {
                    try enqueue("a")
                    try enqueue("b")
                }
            }
            #expect(innerExecutor.names == ["a", "b"])
        }
    }
}
