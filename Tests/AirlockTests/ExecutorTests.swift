import Foundation
import Synchronization
import Testing

@testable import Airlock

extension AirlockCore {
    @Suite("Executors and dispatch")
    struct ExecutorTests {
        // MARK: In-process executor

        @Test func inProcessRunsTypedTasksInFIFOOrder() async throws {
            let token = freshToken()
            try await Airlock.scope(policy: AllowAll(), executor: InProcessExecutor(), behavior: DefaultScopeBehavior()) {
                try Airlock.enqueue(Probe(token: token, label: "first"))
                try Airlock.enqueue(Probe(token: token, label: "second"))
                try Airlock.enqueue(Probe(token: token, label: "third"))
                #expect(ProbeRegistry.events(token).isEmpty)  // nothing runs before the flush
            }
            #expect(ProbeRegistry.events(token) == ["first", "second", "third"])
        }

        @Test func handlersRunWithTheRightArgumentsAndContext() async throws {
            let seen = Mutex<[(TaskArguments, TaskContext)]>([])
            let executor = InProcessExecutor(handlers: [
                "proj.tasks.add": { arguments, context in seen.withLock { $0.append((arguments, context)) } }
            ])
            var intent: Intent?
            try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                intent = try Airlock.enqueue(
                    name: "proj.tasks.add", args: [2, 3], kwargs: ["round": true],
                    options: DispatchOptions(queue: "math", maxRetries: 4))
            }
            let calls = seen.withLock { $0 }
            try #require(calls.count == 1)
            let (arguments, context) = calls[0]
            #expect(arguments == TaskArguments(args: [2, 3], kwargs: ["round": true]))
            #expect(context.taskName == "proj.tasks.add")
            #expect(context.jobID == intent?.id.uuidString.lowercased())
            #expect(context.queue == "math")
            #expect(context.maxRetries == 4)
            #expect(context.attempt == 0)
        }

        @Test func handlersCanDecodeTypedArguments() async throws {
            let decoded = Mutex<[ResizeImage]>([])
            let executor = InProcessExecutor(handlers: [
                "images.resize.remote": { arguments, _ in
                    let task = try arguments.decode(ResizeImage.self)
                    decoded.withLock { $0.append(task) }
                }
            ])
            try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                _ = try Airlock.enqueue(name: "images.resize.remote", args: ["/a.png", 640], kwargs: ["height": 480])
            }
            let task = try #require(decoded.withLock { $0.first })
            #expect(task.path == "/a.png" && task.width == 640 && task.height == 480)
        }

        @Test func aDynamicTaskWithNoHandlerIsAClearError() async throws {
            let executor = InProcessExecutor(handlers: ["known.b": { _, _ in }, "known.a": { _, _ in }])
            let scope = try makeScope(executor: executor)
            let error = await #expect(throws: DispatchError.self) {
                try await Airlock.scope(scope) { try enqueue("nobody.handles.this") }
            }
            let dispatchError = try #require(error)
            let unknown = try #require(dispatchError.underlying as? UnknownTaskError)
            #expect(unknown.taskName == "nobody.handles.this")
            #expect(unknown.known == ["known.a", "known.b"])
            #expect(unknown.description.contains("No implementation for task 'nobody.handles.this'"))
            #expect(unknown.description.contains("Register a handler"))
            #expect(dispatchError.notDispatched.names == ["nobody.handles.this"])
            #expect(dispatchError.dispatched.isEmpty)
            #expect(scope.isFlushed)
        }

        @Test func failureMidFlushStopsAtTheFirstErrorAndSaysWhatWentOut() async throws {
            let token = freshToken()
            let scope = try makeScope(executor: InProcessExecutor())
            var made: [Intent] = []
            let error = await #expect(throws: DispatchError.self) {
                try await Airlock.scope(scope) {
                    made.append(try Airlock.enqueue(Probe(token: token, label: "one")))
                    made.append(try Airlock.enqueue(Explode(token: token, label: "two")))
                    made.append(try Airlock.enqueue(Probe(token: token, label: "three")))
                }
            }
            let dispatchError = try #require(error)
            #expect(ProbeRegistry.events(token) == ["one", "two"])  // "three" never ran
            #expect(dispatchError.dispatched.ids == [made[0].id])
            #expect(dispatchError.notDispatched.ids == [made[1].id, made[2].id])
            #expect(dispatchError.underlying as? Boom == Boom("explode two"))
            #expect(dispatchError.description.hasPrefix("Dispatch failed after 1 of 3 intent(s)"))
            #expect(scope.isFlushed)  // stays flushed: no retry of a half-done flush
            await #expect(throws: ScopeStateError.self) { try await scope.flush() }
            #expect(ProbeRegistry.events(token) == ["one", "two"])
        }

        @Test func aPlainExecutorErrorMeansNoneOfTheBatchWentOut() async throws {
            let scope = try makeScope(policy: BlockTasks(["dropped"]), executor: ThrowingExecutor())
            try scope.enter()
            try await scope.withCurrent {
                try enqueue("a")
                try enqueue("dropped")
                try enqueue("b")
            }
            try scope.exit()
            let error = await #expect(throws: DispatchError.self) { try await scope.flush() }
            #expect(error?.dispatched.isEmpty == true)
            #expect(error?.notDispatched.names == ["a", "b"])  // the allowed batch, not what the policy dropped
            #expect(error?.underlying as? Boom == Boom("executor down"))
            #expect(scope.isFlushed)
        }

        @Test func anExecutorsOwnDispatchErrorIsKeptAsIs() async throws {
            let scope = try makeScope(executor: PartialBatchExecutor())
            let error = await #expect(throws: DispatchError.self) {
                try await Airlock.scope(scope) {
                    try enqueue("a")
                    try enqueue("b")
                    try enqueue("c")
                }
            }
            #expect(error?.dispatched.names == ["a"])
            #expect(error?.notDispatched.names == ["b", "c"])
            #expect(error?.underlying as? Boom == Boom("partial"))
        }

        @Test func anEmptyFlushNeverCallsTheExecutor() async throws {
            let executor = CountingExecutor()
            let scope = try makeScope(executor: executor)
            let dispatched = try await Airlock.scope(scope) { () async throws -> Int in 1 }
            #expect(dispatched == 1)
            #expect(scope.isFlushed)
            #expect(executor.calls == 0)
        }

        @Test func aFlushWhosePoliciesDropEverythingNeverCallsTheExecutor() async throws {
            let executor = CountingExecutor()
            let scope = try makeScope(policy: DropAll(), executor: executor)
            try scope.enter()
            try await scope.withCurrent { try enqueue("a") }
            try scope.exit()
            let dispatched = try await scope.flush()
            #expect(dispatched.isEmpty)
            #expect(executor.calls == 0)
        }

        @Test func theExecutorGetsOneBatchPerFlush() async throws {
            let executor = CountingExecutor()
            for round in 1...2 {
                try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                    try enqueue("r\(round)a")
                    try enqueue("r\(round)b")
                }
            }
            #expect(executor.batches.map(\.names) == [["r1a", "r1b"], ["r2a", "r2b"]])
        }

        // MARK: Where a task run in-process enqueues

        @Test func aTaskRunDuringATopLevelFlushHasNoScope() async throws {
            let token = freshToken()
            let outer = try makeScope(executor: InProcessExecutor())
            try await Airlock.scope(outer) {
                _ = try Airlock.enqueue(EnqueueFollowUp(token: token))
            }
            #expect(ProbeRegistry.events(token) == ["NoScopeError"])
            #expect(outer.intents.map(\.taskName) == [EnqueueFollowUp.name])
        }

        @Test func aTaskRunDuringANestedFlushEnqueuesIntoTheParent() async throws {
            let token = freshToken()
            let parentExecutor = CountingExecutor()
            let parent = try makeScope(executor: parentExecutor, behavior: TestBehavior.independent)
            try await Airlock.scope(parent) {
                try await Airlock.scope(policy: AllowAll(), executor: InProcessExecutor(), behavior: DefaultScopeBehavior()) {
                    _ = try Airlock.enqueue(EnqueueFollowUp(token: token))
                }
                #expect(ProbeRegistry.events(token) == ["enqueued"])
                #expect(parent.ownIntents.names == ["tests.follow_up"])
            }
            #expect(parentExecutor.names == ["tests.follow_up"])
        }

        @Test func aTaskRunDuringAFlushByHandInsideTheBodyHasNoScopeEither() async throws {
            // The flushing scope is still the task-local current scope here, but it is flushed:
            // the task must see the parent (none), not the scope that is flushing.
            let token = freshToken()
            let scope = try makeScope(executor: InProcessExecutor())
            try await Airlock.scope(scope) {
                try Airlock.enqueue(EnqueueFollowUp(token: token))
                try scope.exit()
                try await scope.flush()
            }
            #expect(ProbeRegistry.events(token) == ["NoScopeError"])
        }

        @Test func aHandlerThatEnqueuesDuringATopLevelFlushFailsWithNoScopeError() async throws {
            let executor = InProcessExecutor(handlers: ["spawn": { _, _ in try Airlock.enqueue(name: "child") }])
            let error = await #expect(throws: DispatchError.self) {
                try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                    try enqueue("spawn")
                }
            }
            let noScope = try #require(error?.underlying as? NoScopeError)
            #expect(noScope.taskName == "child")
        }

        // MARK: Recording executor

        @Test func recordingExecutorRecordsBatches() async throws {
            let recorder = RecordingExecutor()
            try await Airlock.scope(policy: AllowAll(), executor: recorder, behavior: DefaultScopeBehavior()) {
                try enqueue("a")
                try enqueue("b")
            }
            try await Airlock.scope(policy: AllowAll(), executor: recorder, behavior: DefaultScopeBehavior()) {}
            try await Airlock.scope(policy: AllowAll(), executor: recorder, behavior: DefaultScopeBehavior()) {
                try enqueue("c")
            }
            #expect(recorder.batches.map(\.names) == [["a", "b"], ["c"]])
            #expect(recorder.intents.names == ["a", "b", "c"])
            recorder.reset()
            #expect(recorder.batches.isEmpty)
            #expect(recorder.intents.isEmpty)
        }

        // MARK: Scheduling the dispatch

        @Test func aBehaviourCanDeferTheDispatch() async throws {
            // Like the original's `_dispatch_all` override that waits for a transaction to commit.
            let executor = CountingExecutor()
            let pending = Mutex<[([Intent], any Executor)]>([])
            struct Deferring: ScopeBehavior {
                let pending: @Sendable ([Intent], any Executor) -> Void
                func dispatch(_ intents: [Intent], from scope: Scope, to executor: any Executor) async throws {
                    pending(intents, executor)
                }
            }
            let behavior = Deferring(pending: { intents, executor in pending.withLock { $0.append((intents, executor)) } })
            let scope = try makeScope(executor: executor, behavior: behavior)
            try scope.enter()
            try await scope.withCurrent { try enqueue("a") }
            try scope.exit()
            let dispatched = try await scope.flush()
            #expect(dispatched.names == ["a"])
            #expect(executor.calls == 0)  // deferred

            let (intents, target) = try #require(pending.withLock { $0.first })
            try await target.dispatch(intents)  // "the transaction committed"
            #expect(executor.names == ["a"])
        }
    }
}
