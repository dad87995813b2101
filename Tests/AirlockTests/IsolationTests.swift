import Synchronization
import Testing

@testable import Airlock

/// Releases every waiter once `count` tasks have arrived.
actor Barrier {
    private let count: Int
    private var arrived = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(count: Int) { self.count = count }

    func arriveAndWait() async {
        arrived += 1
        if arrived >= count {
            let ready = waiters
            waiters.removeAll()
            for waiter in ready { waiter.resume() }
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }
}

extension AirlockCore {
    @Suite("Isolation between tasks")
    struct IsolationTests {
        @Test func concurrentTasksNeverSeeEachOthersIntents() async throws {
            let taskCount = 100
            let perTask = 5
            // Every task opens its scope and enqueues once, then waits until all 100 scopes are open
            // at the same time before enqueueing the rest, yielding between enqueues.
            let barrier = Barrier(count: taskCount)
            let results = try await withThrowingTaskGroup(of: (Int, [Intent], [Intent], Bool).self) { group in
                for n in 0..<taskCount {
                    group.addTask {
                        let executor = CountingExecutor()
                        let scope = try makeScope(executor: executor)
                        var alwaysCurrent = true
                        try await Airlock.scope(scope) {
                            try enqueue("task\(n)", 0)
                            await barrier.arriveAndWait()
                            for step in 1..<perTask {
                                await Task.yield()
                                alwaysCurrent = alwaysCurrent && Airlock.currentScope === scope
                                try enqueue("task\(n)", .int(step))
                            }
                        }
                        return (n, scope.intents, executor.batches.flatMap { $0 }, alwaysCurrent)
                    }
                }
                return try await group.reduce(into: [(Int, [Intent], [Intent], Bool)]()) { $0.append($1) }
            }
            #expect(results.count == taskCount)
            for (n, buffered, dispatched, alwaysCurrent) in results {
                let expectedNames = Array(repeating: "task\(n)", count: perTask)
                #expect(buffered.names == expectedNames)
                #expect(dispatched.names == expectedNames)
                #expect(try dispatched.map { try $0.arguments().args } == (0..<perTask).map { [.int($0)] })
                #expect(alwaysCurrent)
            }
            #expect(Airlock.currentScope == nil)
        }

        @Test func anAsyncLetChildInheritsTheScope() async throws {
            let scope = try makeScope(policy: DropAll())
            try await Airlock.scope(scope) {
                async let childSaw: Scope? = enqueueFromChild("child")
                let saw = try await childSaw
                #expect(saw === scope)
            }
            #expect(scope.intents.names == ["child"])
        }

        @Test func taskGroupChildrenInheritTheScope() async throws {
            let executor = CountingExecutor()
            let scope = try makeScope(executor: executor)
            try await Airlock.scope(scope) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for n in 0..<5 { group.addTask { try enqueue("child\(n)") } }
                    try await group.waitForAll()
                }
            }
            #expect(Set(scope.intents.names) == Set((0..<5).map { "child\($0)" }))
            #expect(executor.batches.count == 1)
            #expect(executor.batches.first?.count == 5)
        }

        @Test func anUnstructuredTaskAwaitedInsideTheScopeEnqueuesIntoIt() async throws {
            let executor = CountingExecutor()
            try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                try await Task { try enqueue("from unstructured task") }.value
            }
            #expect(executor.names == ["from unstructured task"])
        }

        @Test func anUnstructuredTaskThatOutlivesItsScopeGetsAScopeStateError() async throws {
            let (gate, open) = AsyncStream<Void>.makeStream()
            let executor = CountingExecutor()
            let scope = try makeScope(executor: executor)
            let straggler: Task<Void, any Error> = try await Airlock.scope(scope) {
                try enqueue("on time")
                return Task {
                    for await _ in gate { break }  // wait until the scope has ended
                    try enqueue("late")
                }
            }
            #expect(scope.isFlushed)
            open.yield()
            open.finish()
            let result = await straggler.result
            #expect(throws: ScopeStateError.self) { try result.get() }
            if case .failure(let error) = result {
                #expect("\(error)".contains("Cannot enqueue 'late'"))
                #expect("\(error)".contains("outlives its scope"))
            }
            // Nothing was lost silently and nothing extra escaped.
            #expect(executor.names == ["on time"])
            #expect(scope.intents.names == ["on time"])
        }

        @Test func aDetachedTaskHasNoScope() async throws {
            let scope = try makeScope(policy: DropAll())
            let result = try await Airlock.scope(scope) {
                await Task.detached { Result { try enqueue("detached") } }.value
            }
            #expect(throws: NoScopeError.self) { try result.get() }
            #expect(scope.intents.isEmpty)
        }

        @Test func cancellationInsideAScopeDiscards() async throws {
            let (started, signalStarted) = AsyncStream<Void>.makeStream()
            let (never, keepOpen) = AsyncStream<Void>.makeStream()
            let seenError = Mutex<String?>(nil)
            let behavior = TestBehavior(flushDecision: { _, error in
                seenError.withLock { $0 = error.map { "\(type(of: $0))" } ?? "nil" }
                return error == nil
            })
            let executor = CountingExecutor()
            let scope = try makeScope(executor: executor, behavior: behavior)
            let work = Task {
                try await Airlock.scope(scope) {
                    try enqueue("a")
                    signalStarted.yield()
                    for await _ in never {}  // ends when the task is cancelled
                    try Task.checkCancellation()
                }
            }
            for await _ in started { break }
            work.cancel()
            let result = await work.result
            keepOpen.finish()
            #expect(throws: CancellationError.self) { try result.get() }
            #expect(seenError.withLock { $0 } == "CancellationError")
            #expect(scope.isDiscarded)
            #expect(scope.intents.isEmpty)
            #expect(executor.calls == 0)
        }

        @Test func aScopeBodyRunsOnTheCallersActor() async throws {
            let ledger = Ledger()
            let executor = CountingExecutor()
            let steps = try await ledger.record(executor: executor)
            #expect(steps == 2)
            #expect(executor.names == ["ledger.a", "ledger.b"])
        }

        @MainActor
        @Test func aScopeWorksOnTheMainActor() async throws {
            var touched = 0  // main-actor state mutated inside the body
            let executor = CountingExecutor()
            try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                touched += 1
                try enqueue("main")
                await Task.yield()
                touched += 1
            }
            #expect(touched == 2)
            #expect(executor.names == ["main"])
        }

        @Test func concurrentNestedScopesCaptureWithinTheirOwnTask() async throws {
            let outcomes = try await withThrowingTaskGroup(of: (Int, [String], [String]).self) { group in
                for n in 0..<20 {
                    group.addTask {
                        let outer = try makeScope(policy: DropAll())
                        try await Airlock.scope(outer) {
                            try enqueue("outer\(n)")
                            await Task.yield()
                            try await Airlock.scope(policy: AllowAll(), executor: CountingExecutor(), behavior: DefaultScopeBehavior()) {
                                await Task.yield()
                                try enqueue("inner\(n)")
                            }
                        }
                        return (n, outer.ownIntents.names, outer.capturedIntents.names)
                    }
                }
                return try await group.reduce(into: [(Int, [String], [String])]()) { $0.append($1) }
            }
            #expect(outcomes.count == 20)
            for (n, own, captured) in outcomes {
                #expect(own == ["outer\(n)"])
                #expect(captured == ["inner\(n)"])
            }
        }
    }
}

/// An actor whose state a scope body mutates without hopping (the body inherits the actor's isolation).
actor Ledger {
    private var steps = 0
    func record(executor: CountingExecutor) async throws -> Int {
        try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
            steps += 1
            try enqueue("ledger.a")
            await Task.yield()
            try await Airlock.policy(AllowAll()) {
                await Task.yield()
                steps += 1
                try enqueue("ledger.b")
            }
        }
        return steps
    }
}

/// Enqueues from a child task and reports the scope the child saw.
private func enqueueFromChild(_ name: String) async throws -> Scope? {
    await Task.yield()
    try enqueue(name)
    return Airlock.currentScope
}
