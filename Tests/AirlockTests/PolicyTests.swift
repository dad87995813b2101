import Logging
import Testing

@testable import Airlock

extension AirlockCore {
    @Suite("Built-in policies and policy hooks")
    struct PolicyTests {
        // MARK: AllowAll

        @Test func allowAllDispatchesEverything() async throws {
            let executor = CountingExecutor()
            try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                try enqueue("a")
                try enqueue("b")
            }
            #expect(executor.names == ["a", "b"])
            #expect(try AllowAll().allows(makeIntent("x")))
            #expect(AllowAll().description == "AllowAll()")
            #expect((.allowAll as AllowAll).description == "AllowAll()")
        }

        // MARK: DropAll

        @Test func dropAllBuffersButDispatchesNothing() async throws {
            let executor = CountingExecutor()
            let scope = try makeScope(policy: DropAll(), executor: executor)
            try await Airlock.scope(scope) {
                try enqueue("a")
                try enqueue("b")
            }
            #expect(scope.isFlushed)
            #expect(scope.intents.names == ["a", "b"])  // inspectable: what would have been dispatched
            #expect(executor.calls == 0)
            #expect(try DropAll().allows(makeIntent("x")) == false)
            #expect(DropAll().description == "DropAll()")
            #expect((.dropAll as DropAll).description == "DropAll()")
        }

        // MARK: AssertNoEffects

        @Test func assertNoEffectsRefusesAnyEnqueueWithTheExactMessage() async throws {
            let scope = try makeScope(policy: AssertNoEffects())
            try await Airlock.scope(scope) {
                let error = #expect(throws: PolicyViolation.self) { try enqueue("send_email") }
                #expect(error?.description == "Unexpected side effect: send_email. No side effects are allowed in this scope.")
            }
            #expect(scope.intents.isEmpty)
            #expect(AssertNoEffects().description == "AssertNoEffects()")
            #expect((.assertNoEffects as AssertNoEffects).description == "AssertNoEffects()")
        }

        @Test func assertNoEffectsNamesTheIntentByItsExplicitName() async throws {
            try await Airlock.scope(policy: AssertNoEffects(), executor: CountingExecutor(), behavior: DefaultScopeBehavior()) {
                let error = #expect(throws: PolicyViolation.self) {
                    try Airlock.enqueue(SendEmail(userID: 1, subject: "hi"), name: "welcome_mail")
                }
                #expect(error?.description == "Unexpected side effect: welcome_mail. No side effects are allowed in this scope.")
                let typed = #expect(throws: PolicyViolation.self) { try Airlock.enqueue(SendEmail(userID: 1, subject: "hi")) }
                #expect(typed?.description.contains("myapp.tasks.send_email") == true)
            }
        }

        @Test func assertNoEffectsLetsAScopeWithoutEffectsSucceed() async throws {
            let executor = CountingExecutor()
            let scope = try makeScope(policy: AssertNoEffects(), executor: executor)
            let value = try await Airlock.scope(scope) { 7 * 6 }
            #expect(value == 42)
            #expect(scope.isFlushed)
            #expect(executor.calls == 0)
        }

        @Test func assertNoEffectsAllowsNothingAtFlush() throws {
            #expect(try AssertNoEffects().allows(makeIntent("x")) == false)
        }

        @Test func aLocalAssertNoEffectsDropsItsIntents() async throws {
            // A local policy's onEnqueue is never called, so the intent is buffered; its allows
            // must still keep it from escaping.
            let executor = CountingExecutor()
            try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                try Airlock.policy(AssertNoEffects()) { try enqueue("inside") }
                try enqueue("outside")
            }
            #expect(executor.names == ["outside"])
        }

        @Test func anOuterAssertNoEffectsScopeDropsWhatItCapturedFromAnInnerScope() async throws {
            let outerExecutor = CountingExecutor()
            let innerExecutor = CountingExecutor()
            let outer = try makeScope(policy: AssertNoEffects(), executor: outerExecutor)
            try await Airlock.scope(outer) {
                try await Airlock.scope(policy: AllowAll(), executor: innerExecutor, behavior: DefaultScopeBehavior()) {
                    try enqueue("captured")
                }
            }
            #expect(outer.capturedIntents.map(\.name) == ["captured"])
            #expect(outerExecutor.calls == 0)
            #expect(innerExecutor.calls == 0)
        }

        // MARK: BlockTasks

        @Test func blockTasksDropsBlockedTasksSilentlyAtFlush() async throws {
            let executor = CountingExecutor()
            let scope = try makeScope(policy: BlockTasks(["send_confirmation_email"]), executor: executor)
            try await Airlock.scope(scope) {
                try enqueue("send_confirmation_email", 1)
                try enqueue("notify_warehouse", 1)
            }
            #expect(scope.intents.names == ["send_confirmation_email", "notify_warehouse"])  // buffered
            #expect(executor.names == ["notify_warehouse"])
        }

        @Test func blockTasksWithRaiseOnEnqueueRefusesAtEnqueue() async throws {
            let executor = CountingExecutor()
            let policy = BlockTasks(["send_email"], raiseOnEnqueue: true)
            let scope = try makeScope(policy: policy, executor: executor)
            try await Airlock.scope(scope) {
                let error = #expect(throws: PolicyViolation.self) { try enqueue("send_email") }
                #expect(error?.description.contains("send_email") == true)
                try enqueue("other")
            }
            #expect(scope.intents.names == ["other"])  // the refused intent was not buffered
            #expect(executor.names == ["other"])
        }

        @Test func blockTasksWithoutTheFlagNeverThrowsAtEnqueue() throws {
            let policy = BlockTasks(["send_email"])
            #expect(policy.raiseOnEnqueue == false)
            try policy.onEnqueue(makeIntent("send_email"))
            #expect(try policy.allows(makeIntent("send_email")) == false)
        }

        @Test func blockTasksMatchesTheFullNameOrItsLastDottedComponent() throws {
            let byShortName = BlockTasks(["send_email"])
            #expect(byShortName.blocks(makeIntent("send_email")))
            #expect(byShortName.blocks(makeIntent("myapp.tasks.send_email")))
            #expect(!byShortName.blocks(makeIntent("myapp.tasks.send_email_later")))
            #expect(!byShortName.blocks(makeIntent("send_email.later")))
            #expect(!byShortName.blocks(makeIntent("other")))

            let byFullName = BlockTasks(["myapp.tasks.send_email"])
            #expect(byFullName.blocks(makeIntent("myapp.tasks.send_email")))
            #expect(!byFullName.blocks(makeIntent("send_email")))
            #expect(!byFullName.blocks(makeIntent("other.tasks.send_email")))
        }

        @Test func blockTasksBlocksATypedTaskByTheLastComponentOfItsName() async throws {
            let executor = CountingExecutor()
            try await Airlock.scope(policy: BlockTasks(["send_email"]), executor: executor, behavior: DefaultScopeBehavior()) {
                try Airlock.enqueue(SendEmail(userID: 1, subject: "hi"))
                try enqueue("keep")
            }
            #expect(executor.names == ["keep"])
        }

        @Test func blockTasksWithRaiseOnEnqueueStillFiltersCapturedIntentsAtFlush() async throws {
            // Captured intents skip the outer on_enqueue, so the flush-time check is what stops them.
            let outerExecutor = CountingExecutor()
            let policy = BlockTasks(["send_email"], raiseOnEnqueue: true)
            let outer = try makeScope(policy: policy, executor: outerExecutor)
            try await Airlock.scope(outer) {
                try await Airlock.scope(policy: AllowAll(), executor: CountingExecutor(), behavior: DefaultScopeBehavior()) {
                    try enqueue("myapp.tasks.send_email")
                    try enqueue("keep")
                }
                #expect(outer.capturedIntents.names == ["myapp.tasks.send_email", "keep"])
            }
            #expect(outerExecutor.names == ["keep"])
        }

        @Test func blockTasksDescription() {
            #expect(BlockTasks(["b", "a"]).description == #"BlockTasks(["a", "b"], raiseOnEnqueue: false)"#)
            #expect(BlockTasks(["x"], raiseOnEnqueue: true).description == #"BlockTasks(["x"], raiseOnEnqueue: true)"#)
            let sugar: BlockTasks = .blockTasks(["x"], raiseOnEnqueue: true)
            #expect(sugar.names == ["x"] && sugar.raiseOnEnqueue)
        }

        // MARK: LogOnFlush

        @Test func logOnFlushLogsEachIntentAtInfoAndAllowsIt() async throws {
            let sink = LogSink()
            let policy = LogOnFlush(logger: capturingLogger(label: "test.flush", sink: sink))
            let executor = CountingExecutor()
            var made: [Intent] = []
            try await Airlock.scope(policy: policy, executor: executor, behavior: DefaultScopeBehavior()) {
                made.append(try Airlock.enqueue(name: "send_email", args: [1, "a"], kwargs: ["k": 2]))
                made.append(try enqueued("notify"))
                #expect(sink.lines.isEmpty)  // nothing is logged at enqueue
            }
            #expect(executor.names == ["send_email", "notify"])
            let lines = sink.lines
            #expect(lines.count == 2)
            #expect(lines.allSatisfy { $0.level == .info })
            #expect(lines.first?.message.contains(#"send_email(1, "a", k=2)"#) == true)
            #expect(lines.first?.metadata["task"] == "send_email")
            #expect(lines.first?.metadata["intent"] == made.first?.id.uuidString)
            #expect(lines.last?.message.contains("notify()") == true)
        }

        @Test func logOnFlushLogsNothingForADiscardedScope() async throws {
            let sink = LogSink()
            let policy = LogOnFlush(logger: capturingLogger(label: "test.flush", sink: sink))
            await #expect(throws: Boom.self) {
                try await Airlock.scope(policy: policy, executor: CountingExecutor(), behavior: DefaultScopeBehavior()) {
                    try enqueue("a")
                    throw Boom()
                }
            }
            #expect(sink.lines.isEmpty)
        }

        @Test func logOnFlushDescriptionNamesTheLoggerLabel() {
            let sink = LogSink()
            #expect(LogOnFlush(logger: capturingLogger(label: "my.label", sink: sink)).description == "LogOnFlush(my.label)")
            #expect(LogOnFlush().description == "LogOnFlush(airlock.flush)")
            #expect((.logOnFlush() as LogOnFlush).logger.label == "airlock.flush")
        }

        // MARK: Hooks

        @Test func theProtocolDefaultsAcceptEverything() throws {
            let policy = DefaultHooksPolicy()
            try policy.onEnqueue(makeIntent("a"))
            #expect(try policy.allows(makeIntent("a")))
        }

        @Test func aRefusingOnEnqueueBuffersNothingAndPropagates() async throws {
            let refuseB = ClosurePolicy(enqueue: { if $0.name == "b" { throw PolicyViolation("no b") } })
            let executor = CountingExecutor()
            let scope = try makeScope(policy: refuseB, executor: executor)
            try await Airlock.scope(scope) {
                try enqueue("a")
                let error = #expect(throws: PolicyViolation.self) { try enqueue("b") }
                #expect(error?.description == "no b")
                try enqueue("c")
            }
            #expect(scope.intents.names == ["a", "c"])
            #expect(executor.names == ["a", "c"])
        }

        @Test func policiesFilterButNeverReorder() async throws {
            let executor = CountingExecutor()
            let evens = ClosurePolicy(allow: { ($0.name.last?.wholeNumberValue ?? 1) % 2 == 0 })
            try await Airlock.scope(policy: evens, executor: executor, behavior: DefaultScopeBehavior()) {
                for n in [4, 1, 8, 3, 2, 6] { try enqueue("t\(n)") }
            }
            #expect(executor.names == ["t4", "t8", "t2", "t6"])
        }

        @Test func everyPolicyJudgesEveryIntentBeforeAnyDispatch() async throws {
            let log = EventLog()
            let executor = CountingExecutor(log: log)
            let scopePolicy = recordingPolicy("scope", log: log)
            let local = recordingPolicy("local", log: log)
            try await Airlock.scope(policy: scopePolicy, executor: executor, behavior: DefaultScopeBehavior()) {
                try Airlock.policy(local) {
                    try enqueue("a")
                    try enqueue("b")
                }
                try enqueue("c")
            }
            #expect(
                log.events == [
                    "scope.onEnqueue:a", "scope.onEnqueue:b", "scope.onEnqueue:c",
                    "local.allows:a", "scope.allows:a",
                    "local.allows:b", "scope.allows:b",
                    "scope.allows:c",
                    "dispatch:a", "dispatch:b", "dispatch:c",
                ])
        }

        @Test func aThrowingAllowsAbortsTheFlushBeforeAnyDispatch() async throws {
            let executor = CountingExecutor()
            let failOnB = ClosurePolicy(allow: { intent in
                if intent.name == "b" { throw Boom("allows") }
                return true
            })
            let scope = try makeScope(policy: failOnB, executor: executor)
            let error = await #expect(throws: Boom.self) {
                try await Airlock.scope(scope) {
                    try enqueue("a")
                    try enqueue("b")
                    try enqueue("c")
                }
            }
            #expect(error == Boom("allows"))
            #expect(executor.calls == 0)  // not even "a", which was judged before "b"
            #expect(scope.isFlushed)
            #expect(!scope.isDiscarded)
            await #expect(throws: ScopeStateError.self) { try await scope.flush() }  // no retry
        }

        @Test func enqueueInsideOnEnqueueIsAPolicyEnqueueError() async throws {
            let log = EventLog()
            let sneaky = ClosurePolicy(enqueue: { intent in
                guard intent.name == "a" else { return }
                do {
                    try Airlock.enqueue(name: "sneaky")
                    log.record("enqueued")
                } catch {
                    log.record("\(type(of: error))")
                    throw error
                }
            })
            let scope = try makeScope(policy: sneaky)
            try await Airlock.scope(scope) {
                let error = #expect(throws: PolicyEnqueueError.self) { try enqueue("a") }
                #expect(error?.taskName == "sneaky")
                #expect(error?.description.contains("inside a policy hook") == true)
            }
            #expect(log.events == ["PolicyEnqueueError"])
            #expect(scope.intents.isEmpty)
        }

        @Test func enqueueInsideAllowsIsAPolicyEnqueueError() async throws {
            let executor = CountingExecutor()
            let sneaky = ClosurePolicy(allow: { _ in
                try Airlock.enqueue(name: "sneaky")
                return true
            })
            let scope = try makeScope(policy: sneaky, executor: executor)
            await #expect(throws: PolicyEnqueueError.self) {
                try await Airlock.scope(scope) { try enqueue("a") }
            }
            #expect(executor.calls == 0)
            #expect(scope.isFlushed)
            #expect(scope.intents.names == ["a"])
        }

        @Test func enqueueInsideALocalPolicysAllowsIsAPolicyEnqueueError() async throws {
            let log = EventLog()
            let sneaky = ClosurePolicy(allow: { _ in
                do { try Airlock.enqueue(name: "sneaky") } catch { log.record("\(type(of: error))") }
                return true
            })
            let executor = CountingExecutor()
            try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                try Airlock.policy(sneaky) { try enqueue("a") }
            }
            #expect(log.events == ["PolicyEnqueueError"])
            #expect(executor.names == ["a"])
        }

        @Test func afterAPolicyHookEnqueueWorksAgain() async throws {
            // The "in policy" flag is bound to the hook only.
            let executor = CountingExecutor()
            try await Airlock.scope(policy: recordingPolicy("p", log: EventLog()), executor: executor, behavior: DefaultScopeBehavior()) {
                try enqueue("a")
                try enqueue("b")
            }
            #expect(executor.names == ["a", "b"])
        }
    }
}
