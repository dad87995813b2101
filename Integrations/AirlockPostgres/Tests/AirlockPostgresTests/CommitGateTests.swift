import Airlock
import AirlockPostgres
import Testing

/// `DispatchAfterCommit` on its own: the dispatch hook holds, sends or drops by the gate's outcome.
@Suite("CommitGate and DispatchAfterCommit", .timeLimit(.minutes(2)))
struct CommitGateTests {
    struct Ping: AirlockTask {
        static let name = "test.ping"
        let n: Int
        func run(_ context: TaskContext) async throws {}
    }

    struct Unreachable: Error {}
    struct FailingExecutor: Executor {
        func dispatch(_ intents: [Intent]) async throws { throw Unreachable() }
    }

    /// Runs a scope with the behaviour over `gate` that enqueues pings `numbers`.
    func flushScope(_ gate: CommitGate, _ executor: any Executor, _ numbers: [Int]) async throws {
        try await Airlock.scope(executor: executor, behavior: DispatchAfterCommit(gate)) {
            for n in numbers { try Airlock.enqueue(Ping(n: n)) }
        }
    }

    @Test("a scope that flushes while the transaction is open is held until commit, then dispatched in order")
    func holdsUntilCommit() async throws {
        let gate = CommitGate()
        let recorder = RecordingExecutor()
        try await flushScope(gate, recorder, [1, 2])
        try await flushScope(gate, recorder, [3])
        #expect(recorder.intents.isEmpty)
        #expect(gate.outcome == .pending)
        #expect(gate.heldIntents.count == 3)

        let dispatched = try await gate.commit()
        #expect(dispatched.count == 3)
        #expect(recorder.batches.map { $0.map(\.description) } == [["test.ping(n=1)", "test.ping(n=2)"], ["test.ping(n=3)"]])
        #expect(gate.outcome == .committed)

        // After the commit, dispatch is immediate.
        try await flushScope(gate, recorder, [4])
        #expect(recorder.intents.count == 4)
    }

    @Test("rolling back drops what was held and everything flushed later; only the first resolution counts")
    func rollbackDrops() async throws {
        let gate = CommitGate()
        let recorder = RecordingExecutor()
        try await flushScope(gate, recorder, [1])
        #expect(gate.rollBack().count == 1)
        try await flushScope(gate, recorder, [2])
        #expect(try await gate.commit().isEmpty)
        #expect(gate.outcome == .rolledBack)
        #expect(recorder.intents.isEmpty)
        #expect(gate.description == "CommitGate(rolledBack, held: 0)")
    }

    @Test("a failed dispatch after commit reports what went out and what did not")
    func commitFailureIsReported() async throws {
        let gate = CommitGate()
        let recorder = RecordingExecutor()
        try await flushScope(gate, recorder, [1])
        try await flushScope(gate, FailingExecutor(), [2])
        try await flushScope(gate, recorder, [3])
        let error = try await #require(throws: DispatchError.self) { try await gate.commit() }
        #expect(error.dispatched.map(\.description) == ["test.ping(n=1)"])
        #expect(error.notDispatched.map(\.description) == ["test.ping(n=2)", "test.ping(n=3)"])
        #expect(error.underlying is Unreachable)
    }

    /// A base behaviour with a setting and a dispatch of its own.
    struct TaggingBehavior: ScopeBehavior {
        let log: RecordingExecutor
        var supportedSettings: Set<String> { ["tag"] }
        func dispatch(_ intents: [Intent], from scope: Scope, to executor: any Executor) async throws {
            try await log.dispatch(intents)
            try await executor.dispatch(intents)
        }
    }

    @Test("the base behaviour's settings are accepted and its dispatch runs once the gate opens")
    func baseBehaviourIsKept() async throws {
        let gate = CommitGate()
        let baseLog = RecordingExecutor()
        let recorder = RecordingExecutor()
        let behavior = DispatchAfterCommit(gate, base: TaggingBehavior(log: baseLog))
        try await Airlock.scope(executor: recorder, behavior: behavior, settings: ["tag": "orders"]) {
            try Airlock.enqueue(Ping(n: 1))
        }
        #expect(baseLog.intents.isEmpty && recorder.intents.isEmpty)
        try await gate.commit()
        #expect(baseLog.intents.count == 1 && recorder.intents.count == 1)
    }

    @Test("a scope nested in a DispatchAfterCommit scope is captured by it: nothing leaves before the commit")
    func nestedScopesAreCaptured() async throws {
        let gate = CommitGate()
        let recorder = RecordingExecutor()
        try await Airlock.scope(executor: recorder, behavior: DispatchAfterCommit(gate)) {
            try await Airlock.scope(executor: recorder) { try Airlock.enqueue(Ping(n: 1)) }
            #expect(recorder.intents.isEmpty)
        }
        #expect(recorder.intents.isEmpty)
        #expect(gate.heldIntents.count == 1)
        gate.rollBack()
        #expect(recorder.intents.isEmpty)
    }
}
