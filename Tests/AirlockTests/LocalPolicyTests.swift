import Testing

@testable import Airlock

extension AirlockCore {
    @Suite("Local policies")
    struct LocalPolicyTests {
        @Test func intentsCaptureTheLocalPolicyStack() async throws {
            let scope = try makeScope(policy: DropAll())
            try await Airlock.scope(scope) {
                try enqueue("outside")
                try await Airlock.policy(ClosurePolicy(label: "p1")) {
                    await Task.yield()  // the stack survives suspension
                    try enqueue("inside")
                }
                try enqueue("after")
            }
            let byName = Dictionary(uniqueKeysWithValues: scope.intents.map { ($0.name, $0.localPolicies.map(\.description)) })
            #expect(byName["outside"] == [])
            #expect(byName["inside"] == ["p1"])
            #expect(byName["after"] == [])  // popped when the block ended
        }

        @Test func localPoliciesStackOutermostFirst() async throws {
            let scope = try makeScope(policy: DropAll())
            try await Airlock.scope(scope) {
                try Airlock.policy(ClosurePolicy(label: "outer")) {
                    try Airlock.policy(ClosurePolicy(label: "inner")) {
                        try enqueue("both")
                    }
                    try enqueue("outerOnly")
                }
            }
            #expect(scope.intents.map { $0.localPolicies.map(\.description) } == [["outer", "inner"], ["outer"]])
        }

        @Test func localPoliciesAreAskedInnermostFirstAndStopAtTheFirstNo() async throws {
            let log = EventLog()
            let executor = CountingExecutor()
            let outer = recordingPolicy("outer", log: log)
            let innerSaysNoToB = recordingPolicy("inner", log: log, decide: { $0.name != "b" })
            try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                try Airlock.policy(outer) {
                    try Airlock.policy(innerSaysNoToB) {
                        try enqueue("a")
                        try enqueue("b")
                    }
                }
            }
            #expect(log.events == ["inner.allows:a", "outer.allows:a", "inner.allows:b"])
            #expect(executor.names == ["a"])
        }

        @Test func localPoliciesRunBeforeTheScopePolicy() async throws {
            let log = EventLog()
            let executor = CountingExecutor()
            let scopePolicy = recordingPolicy("scope", log: log, decide: { $0.name != "c" })
            let local = recordingPolicy("local", log: log, decide: { $0.name != "b" })
            try await Airlock.scope(policy: scopePolicy, executor: executor, behavior: DefaultScopeBehavior()) {
                try Airlock.policy(local) {
                    try enqueue("a")
                    try enqueue("b")
                    try enqueue("c")
                }
            }
            #expect(
                log.events.filter { $0.contains(".allows:") } == [
                    "local.allows:a", "scope.allows:a",
                    "local.allows:b",  // refused locally: the scope policy is not asked
                    "local.allows:c", "scope.allows:c",
                ])
            #expect(executor.names == ["a"])  // b dropped locally, c by the scope policy
        }

        @Test func aLocalPolicysOnEnqueueIsNeverCalled() async throws {
            let log = EventLog()
            let executor = CountingExecutor()
            try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                let refusing = ClosurePolicy(label: "Refusing", enqueue: { _ in throw Boom("onEnqueue must not be called") })
                try Airlock.policy(refusing) {  // would throw from onEnqueue if it were called
                    try Airlock.policy(recordingPolicy("local", log: log)) {
                        try enqueue("a")
                    }
                }
            }
            #expect(log.events == ["local.allows:a"])
            #expect(executor.names == ["a"])
        }

        @Test func passesLocalPoliciesEvaluatesOnlyTheCapturedPolicies() async throws {
            let scope = try makeScope(policy: DropAll())
            try await Airlock.scope(scope) {
                try Airlock.policy(BlockTasks(["b"])) {
                    try enqueue("a")
                    try enqueue("b")
                }
                try enqueue("c")
            }
            let intents = scope.intents
            // The scope's DropAll is not consulted: inspection of the local policies only.
            #expect(try intents.map { try $0.passesLocalPolicies() } == [true, false, true])
        }

        @Test func passesLocalPoliciesIsInnermostFirst() throws {
            let log = EventLog()
            let intent = makeIntent(
                "x",
                localPolicies: [
                    recordingPolicy("outer", log: log), recordingPolicy("inner", log: log, decide: { _ in false }),
                ])
            #expect(try intent.passesLocalPolicies() == false)
            #expect(log.events == ["inner.allows:x"])
        }

        @Test func aLocalPolicyCreatesNoBuffer() async throws {
            let scope = try makeScope()
            try await Airlock.scope(scope) {
                try await Airlock.policy(DropAll()) {
                    await Task.yield()
                    #expect(Airlock.currentScope === scope)
                    try enqueue("a")
                }
            }
            #expect(scope.intents.names == ["a"])
            // Outside any scope a local policy does not provide one.
            let outside = Airlock.policy(AllowAll()) { Airlock.currentScope }
            #expect(outside == nil)
        }

        @Test func aLocalPolicyOutsideTheScopeStillAppliesToItsIntents() async throws {
            let executor = CountingExecutor()
            try await Airlock.policy(BlockTasks(["b"])) {
                try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                    try enqueue("a")
                    try enqueue("b")
                }
            }
            #expect(executor.names == ["a"])
        }

        @Test func thePolicyBlockReturnsItsBodysValueAndRethrows() async throws {
            let value = Airlock.policy(AllowAll()) { 5 }
            #expect(value == 5)
            let asyncValue = await Airlock.policy(AllowAll()) { () async -> Int in
                await Task.yield()
                return 6
            }
            #expect(asyncValue == 6)
            #expect(throws: Boom("local")) { try Airlock.policy(AllowAll()) { throw Boom("local") } }
        }
    }
}
