import Airlock
import AirlockPostgres
import Testing

/// `TransactionScope` without a database: the building block a framework gate drives.
@Suite("TransactionScope", .timeLimit(.minutes(2)))
struct TransactionScopeTests {
    @Test("didCommit with no enclosing scope dispatches the body's intents and ends the scope")
    func commitDispatches() async throws {
        let recorder = RecordingExecutor()
        let transaction = try await TransactionScope.enter(executor: recorder)
        try await transaction.run { try Airlock.enqueue(NotifyItem(itemID: 1)) }
        #expect(recorder.intents.isEmpty)
        #expect(transaction.scope.isActive)
        let dispatched = try await transaction.didCommit()
        #expect(dispatched.map(\.taskName) == [NotifyItem.name])
        #expect(recorder.intents.count == 1)
        #expect(transaction.scope.isFlushed && !transaction.scope.isActive)
        #expect(transaction.gate.outcome == .committed)
    }

    @Test("didRollBack drops what the scope holds, captured scopes included, in enqueue order")
    func rollBackDrops() async throws {
        let recorder = RecordingExecutor()
        let transaction = try await TransactionScope.enter(executor: recorder)
        try await transaction.run {
            try Airlock.enqueue(NotifyItem(itemID: 1))
            // A scope the body opens is captured by the transaction's scope when it flushes.
            try await Airlock.scope(executor: recorder) { try Airlock.enqueue(NotifyItem(itemID: 2)) }
        }
        let dropped = await transaction.didRollBack(after: Teapot())
        #expect(dropped.map(\.description) == ["test.notify_item(itemID=1)", "test.notify_item(itemID=2)"])
        #expect(transaction.scope.isDiscarded)
        #expect(transaction.gate.outcome == .rolledBack)
        #expect(recorder.intents.isEmpty)
    }

    @Test("inside an enclosing scope didCommit hands the intents to it and dispatches nothing itself")
    func commitHandsToEnclosingScope() async throws {
        let recorder = RecordingExecutor()
        try await Airlock.scope(executor: recorder) {
            let transaction = try await TransactionScope.enter()
            #expect(transaction.scope.parent === Airlock.currentScope)
            try await transaction.run { try Airlock.enqueue(NotifyItem(itemID: 3)) }
            #expect(try await transaction.didCommit().isEmpty)
            #expect(Airlock.currentScope?.capturedIntents.count == 1)
            #expect(recorder.intents.isEmpty)
        }
        #expect(recorder.intents.count == 1)
    }

    @Test("a policy of the transaction applies at the flush after the commit")
    func policyFilters() async throws {
        let recorder = RecordingExecutor()
        let transaction = try await TransactionScope.enter(policy: DropAll(), executor: recorder)
        try await transaction.run { try Airlock.enqueue(NotifyItem(itemID: 4)) }
        #expect(try await transaction.didCommit().isEmpty)
        #expect(recorder.intents.isEmpty)
    }
}
