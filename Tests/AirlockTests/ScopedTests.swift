import Synchronization
import Testing

@testable import Airlock

extension AirlockCore {
    @Suite("scoped: a fresh scope per call")
    struct ScopedTests {
        @Test func aScopedFunctionFlushesWhenItReturns() async throws {
            let executor = CountingExecutor()
            let checkout = Airlock.scoped(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                (orderID: Int) async throws -> String in
                try Airlock.enqueue(name: "send_confirmation_email", args: [.int(orderID)])
                try Airlock.enqueue(name: "notify_warehouse", args: [.int(orderID)])
                #expect(executor.calls == 0)
                return "order \(orderID)"
            }
            let result = try await checkout(42)
            #expect(result == "order 42")
            #expect(executor.batches.map(\.names) == [["send_confirmation_email", "notify_warehouse"]])
            #expect(try executor.batches.first?.first?.arguments().args == [42])
        }

        @Test func aScopedFunctionDiscardsWhenItThrows() async throws {
            let executor = CountingExecutor()
            let failing = Airlock.scoped(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                () async throws -> Void in
                try enqueue("a")
                throw Boom("checkout failed")
            }
            await #expect(throws: Boom("checkout failed")) { try await failing() }
            #expect(executor.calls == 0)
        }

        @Test func aScopedFunctionUsesItsPolicy() async throws {
            let executor = CountingExecutor()
            let dryRun = Airlock.scoped(policy: DropAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                () async throws -> Int in
                try enqueue("a")
                return Airlock.currentScope?.intents.count ?? -1
            }
            #expect(try await dryRun() == 1)
            #expect(executor.calls == 0)
        }

        @Test func everyCallGetsAFreshScope() async throws {
            let executor = CountingExecutor()
            let seen = Mutex<[Scope]>([])  // keeps the scopes alive, so identities cannot be reused
            let work = Airlock.scoped(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                (label: String) async throws -> Void in
                let scope = try #require(Airlock.currentScope)
                #expect(scope.intents.isEmpty)  // nothing left from an earlier call
                seen.withLock { $0.append(scope) }
                try enqueue(label)
            }
            try await work("first")
            try await work("second")
            let scopes = seen.withLock { $0 }
            try #require(scopes.count == 2)
            #expect(scopes[0] !== scopes[1])
            #expect(scopes.allSatisfy { $0.isFlushed })
            #expect(executor.batches.map(\.names) == [["first"], ["second"]])
        }

        @Test func nothingLeaksBetweenCalls() async throws {
            let executor = CountingExecutor()
            let work = Airlock.scoped(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                (label: String, fail: Bool) async throws -> Void in
                try enqueue(label)
                if fail { throw Boom(label) }
            }
            await #expect(throws: Boom("failed")) { try await work("failed", true) }
            try await work("ok", false)
            #expect(executor.batches.map(\.names) == [["ok"]])
            #expect(Airlock.currentScope == nil)
        }

        @Test func aScopedFunctionCalledInsideAScopeIsNested() async throws {
            let outerExecutor = CountingExecutor()
            let innerExecutor = CountingExecutor()
            let work = Airlock.scoped(policy: AllowAll(), executor: innerExecutor, behavior: DefaultScopeBehavior()) {
                () async throws -> Void in try enqueue("inner")
            }
            let outer = try makeScope(executor: outerExecutor)
            try await Airlock.scope(outer) { try await work() }
            #expect(innerExecutor.calls == 0)
            #expect(outer.capturedIntents.names == ["inner"])
            #expect(outerExecutor.names == ["inner"])
        }

        @Test func scopedFunctionsCanRunConcurrently() async throws {
            let executor = CountingExecutor()
            let work = Airlock.scoped(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                (n: Int) async throws -> Int in
                try enqueue("t\(n)")
                await Task.yield()
                try enqueue("t\(n)")
                return Airlock.currentScope?.intents.count ?? -1
            }
            let counts = try await withThrowingTaskGroup(of: Int.self) { group in
                for n in 0..<20 { group.addTask { try await work(n) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(counts == Array(repeating: 2, count: 20))
            let batches = executor.batches
            #expect(batches.count == 20)
            #expect(batches.allSatisfy { $0.count == 2 && Set($0.names).count == 1 })
        }
    }
}
