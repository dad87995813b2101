import Foundation
import Testing

@testable import Airlock

extension AirlockCore {
    @Suite("enqueue")
    struct EnqueueTests {
        @Test func enqueueBuffersUntilTheScopeEnds() async throws {
            let executor = CountingExecutor()
            let scope = try makeScope(executor: executor)
            try await Airlock.scope(scope) {
                let intent = try Airlock.enqueue(SendEmail(userID: 1, subject: "hi"))
                #expect(scope.intents.ids == [intent.id])
                #expect(scope.ownIntents.ids == [intent.id])
                try enqueue("b")
                #expect(scope.intents.count == 2)
                #expect(executor.calls == 0)
            }
            #expect(executor.batches.count == 1)
            #expect(executor.batches.first?.count == 2)
        }

        @Test func enqueueWithoutAScopeIsANoScopeErrorThatSaysToWrapTheCode() throws {
            #expect(Airlock.currentScope == nil)
            let error = #expect(throws: NoScopeError.self) { try enqueue("send_email") }
            let noScope = try #require(error)
            #expect(noScope.taskName == "send_email")
            #expect(noScope.description.contains("no active airlock scope"))
            #expect(noScope.description.contains("Wrap the code in"))
            #expect(noScope.description.contains("Airlock.scope"))
            let typed = #expect(throws: NoScopeError.self) { try Airlock.enqueue(SendEmail(userID: 1, subject: "x")) }
            #expect(typed?.taskName == "myapp.tasks.send_email")
        }

        @Test func errorsBelongToTheDocumentedHierarchy() {
            func isUsage(_ error: any Error) -> Bool { error is any UsageError }
            func isAirlock(_ error: any Error) -> Bool { error is any AirlockError }
            let noScope = NoScopeError(taskName: "t")
            let policyEnqueue = PolicyEnqueueError(taskName: "t")
            #expect(isUsage(noScope) && isAirlock(noScope))
            #expect(isUsage(policyEnqueue) && isAirlock(policyEnqueue))
            #expect(!isUsage(ScopeStateError("x")) && isAirlock(ScopeStateError("x")))
            #expect(!isUsage(PolicyViolation("x")) && isAirlock(PolicyViolation("x")))
            #expect(isAirlock(ConfigurationError("x")))
            #expect(isAirlock(DispatchError(dispatched: [], notDispatched: [], underlying: Boom())))
            #expect(isAirlock(UnknownTaskError(taskName: "t", known: [])))
        }

        @Test func aPolicyHookCheckComesBeforeTheNoScopeCheck() throws {
            // Step 1 (in a policy hook) is checked before step 3 (no scope).
            #expect(Airlock.currentScope == nil)
            #expect(throws: PolicyEnqueueError.self) {
                try AirlockContext.judging { try enqueue("a") }
            }
        }

        @Test func theNoScopeCheckIgnoresLocalPolicies() {
            // A local policy is not a scope: enqueueing under one, with no scope, is still an error.
            let error = Airlock.policy(AllowAll()) {
                #expect(throws: NoScopeError.self) { try enqueue("a") }
            }
            #expect(error?.taskName == "a")
        }

        @Test func theScopeStateCheckComesBeforeTheScopesOnEnqueue() async throws {
            // Step 4 (scope ended) before step 5 (the policy's on_enqueue): AssertNoEffects is never asked.
            let log = EventLog()
            let scope = try makeScope(policy: recordingPolicy("p", log: log))
            try await Airlock.scope(scope) {}
            await scope.withCurrent {
                let error = #expect(throws: ScopeStateError.self) { try enqueue("late") }
                #expect(error?.description.contains("already flushed") == true)
            }
            #expect(log.events.isEmpty)
            #expect(scope.intents.isEmpty)
        }

        @Test func enqueueIntoADiscardedScopeIsAScopeStateError() async throws {
            let scope = try makeScope(policy: AssertNoEffects())
            try scope.discard()
            await scope.withCurrent {
                let error = #expect(throws: ScopeStateError.self) { try enqueue("late") }
                #expect(error?.description.contains("discarded") == true)
            }
        }

        @Test func originRoundTripsToTheExecutor() async throws {
            let executor = CountingExecutor()
            try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                try Airlock.enqueue(SendEmail(userID: 1, subject: "hi"), origin: "request 42")
                try Airlock.enqueue(name: "dyn", origin: "job 7")
                try enqueue("none")
            }
            let intents = executor.batches.flatMap { $0 }
            #expect(intents.map(\.origin) == ["request 42", "job 7", nil])
        }

        @Test func anExplicitNameLabelsTheIntentButTheTaskKeepsItsName() async throws {
            let executor = CountingExecutor()
            try await Airlock.scope(policy: BlockTasks(["blocked_label"]), executor: executor, behavior: DefaultScopeBehavior()) {
                let labelled = try Airlock.enqueue(SendEmail(userID: 1, subject: "hi"), name: "welcome")
                #expect(labelled.name == "welcome")
                #expect(labelled.taskName == "myapp.tasks.send_email")
                try Airlock.enqueue(SendEmail(userID: 2, subject: "hi"), name: "blocked_label")
            }
            // Policies see the label: the second intent was blocked by it.
            let dispatched = executor.batches.flatMap { $0 }
            #expect(dispatched.names == ["welcome"])
            #expect(dispatched.map(\.taskName) == ["myapp.tasks.send_email"])
        }

        @Test func dispatchOptionsRoundTripToTheExecutor() async throws {
            let eta = Date(timeIntervalSince1970: 1_700_000_000)
            let options = DispatchOptions(
                queue: "priority.low", countdown: .seconds(60), eta: eta, expires: .after(.seconds(300)),
                maxRetries: 0, priority: 9, idempotencyKey: "order-42", extra: ["routing_key": "x", "n": 1])
            let executor = CountingExecutor()
            try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                _ = try Airlock.enqueue(name: "second_task", options: options)
            }
            let dispatched = try #require(executor.batches.first?.first)
            #expect(dispatched.options == options)
            #expect(dispatched.options.queue == "priority.low")
            #expect(dispatched.options.countdown == .seconds(60))
            #expect(dispatched.options.maxRetries == 0)
            #expect(dispatched.options.extra["n"] == 1)
        }

        @Test func typedDefaultOptionsAreMergedWithPerCallOptions() async throws {
            let executor = CountingExecutor()
            try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                try Airlock.enqueue(ResizeImage(path: "/a", width: 1))
                try Airlock.enqueue(
                    ResizeImage(path: "/b", width: 2),
                    options: DispatchOptions(queue: "urgent", countdown: .seconds(5), extra: ["shared": "call"]))
            }
            let intents = executor.batches.flatMap { $0 }
            try #require(intents.count == 2)
            #expect(intents[0].options == ResizeImage.defaultOptions)

            let merged = intents[1].options
            #expect(merged.queue == "urgent")  // per call wins
            #expect(merged.countdown == .seconds(5))  // per call only
            #expect(merged.maxRetries == 3)  // default kept
            #expect(merged.priority == 5)  // default kept
            #expect(merged.extra == ["shared": "call", "fromDefaults": true])  // merged key by key
        }

        @Test func dynamicEnqueueKeepsArgsAndKwargs() async throws {
            let executor = CountingExecutor()
            try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                _ = try Airlock.enqueue(name: "proj.tasks.add", args: [2, 2.5, "x", nil], kwargs: ["flag": true, "list": [1, 2]])
            }
            let intent = try #require(executor.batches.first?.first)
            #expect(intent.name == "proj.tasks.add")
            #expect(intent.task == nil)
            #expect(try intent.arguments() == TaskArguments(args: [2, 2.5, "x", nil], kwargs: ["flag": true, "list": [1, 2]]))
        }

        @Test func typedEnqueueCarriesTheTaskValue() async throws {
            let executor = CountingExecutor()
            try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                _ = try Airlock.enqueue(SendEmail(userID: 7, subject: "hello"))
            }
            let intent = try #require(executor.batches.first?.first)
            let task = try #require(intent.task as? SendEmail)
            #expect(task.userID == 7 && task.subject == "hello")
        }

        @Test func theReturnedIntentIsTheBufferedOneAndIDsAreUnique() async throws {
            let scope = try makeScope(policy: DropAll())
            var made: [Intent] = []
            try await Airlock.scope(scope) {
                for _ in 0..<20 { made.append(try enqueued("same")) }
            }
            #expect(scope.intents.ids == made.ids)
            #expect(Set(made.ids).count == 20)
        }
    }
}
