import Airlock
import AirlockPostgres
import PostgresNIO
import Testing

/// `Airlock.transaction` against a real PostgreSQL, with no web framework: intents leave only
/// after COMMIT, never after ROLLBACK, and inside an outer scope only when that scope flushes.
@Suite("Airlock.transaction (postgres-nio)", .timeLimit(.minutes(2)))
struct TransactionTests {
    @Test("commit → dispatched after COMMIT: the executor already sees the row from another connection")
    func commitDispatchesAfterCommit() async throws {
        let database = try await TestDatabase.make()
        let executor = VisibilityExecutor(client: database.client)
        let label = uniqueLabel()
        try await database.run { client async throws in
            let id = try await Airlock.transaction(on: client, executor: executor) { connection in
                let id = try await insertItem(label, on: connection)
                try Airlock.enqueue(NotifyItem(itemID: id))
                #expect(executor.visibility.isEmpty, "nothing leaves before COMMIT")
                return id
            }
            #expect(executor.visibility == [true])
            #expect(try await committedItems(label, client) == 1)
            #expect(id > 0)
        }
    }

    @Test("the body throws → ROLLBACK: no row, nothing dispatched, the body's error re-thrown as is (nested scopes included)")
    func rollbackDropsEverything() async throws {
        let database = try await TestDatabase.make()
        let recorder = RecordingExecutor()
        let label = uniqueLabel()
        try await database.run { client async throws in
            await #expect(throws: Teapot.self) {
                try await Airlock.transaction(on: client, executor: recorder) { connection in
                    let id = try await insertItem(label, on: connection)
                    try Airlock.enqueue(NotifyItem(itemID: id))
                    try await Airlock.scope(executor: recorder) { try Airlock.enqueue(NotifyItem(itemID: -id)) }
                    #expect(recorder.intents.isEmpty, "a nested scope that flushed is captured by the transaction's")
                    throw Teapot()
                }
            }
            #expect(try await committedItems(label, client) == 0)
            #expect(recorder.intents.isEmpty)
        }
    }

    @Test("a failed statement whose error the body swallowed → COMMIT answers ROLLBACK → TransactionNotCommitted, nothing dispatched")
    func abortedTransactionIsNotCommitted() async throws {
        let database = try await TestDatabase.make()
        let recorder = RecordingExecutor()
        let label = uniqueLabel()
        try await database.run { client async throws in
            let error = try await #require(throws: TransactionNotCommitted.self) {
                try await Airlock.transaction(on: client, executor: recorder) { connection in
                    let id = try await insertItem(label, on: connection)
                    try Airlock.enqueue(NotifyItem(itemID: id))
                    do { try await connection.query("SELECT 1/0", logger: quietLogger) } catch {}
                }
            }
            #expect(error.reason == .rolledBackByServer)
            #expect(error.droppedIntents.map(\.taskName) == [NotifyItem.name])
            #expect(error.description.contains("rolled back at COMMIT"))
            #expect(try await committedItems(label, client) == 0)
            #expect(recorder.intents.isEmpty)
        }
    }

    @Test("dispatch fails after COMMIT → CommittedButNotDispatched: the row is there, the error says so and names the intent")
    func dispatchFailureAfterCommit() async throws {
        let database = try await TestDatabase.make()
        let label = uniqueLabel()
        try await database.run { client async throws in
            let error = try await #require(throws: CommittedButNotDispatched.self) {
                try await Airlock.transaction(on: client, executor: UnreachableExecutor()) { connection in
                    try Airlock.enqueue(NotifyItem(itemID: try await insertItem(label, on: connection)))
                }
            }
            #expect(try await committedItems(label, client) == 1, "the data stays committed")
            #expect(error.dispatched.isEmpty)
            #expect(error.notDispatched.map(\.taskName) == [NotifyItem.name])
            #expect(error.description.hasPrefix("The transaction committed (its data is saved) but 1 of its 1 intent(s) were not dispatched"))
            #expect(error.description.contains("executor back end unreachable"))
            #expect(error.description.contains("Do not retry the transaction"))
        }
    }

    @Test("nested in an outer scope: the committed intents are captured by it and leave when it flushes, or never")
    func outerScopeDecides() async throws {
        let database = try await TestDatabase.make()
        let recorder = RecordingExecutor()
        try await database.run { client async throws in
            try await Airlock.scope(executor: recorder) {
                try await Airlock.transaction(on: client) { connection in
                    try Airlock.enqueue(NotifyItem(itemID: try await insertItem(uniqueLabel(), on: connection)))
                }
                #expect(Airlock.currentScope?.capturedIntents.map(\.taskName) == [NotifyItem.name])
                #expect(recorder.intents.isEmpty, "the outer scope has not flushed yet")
            }
            #expect(recorder.intents.map(\.taskName) == [NotifyItem.name])

            recorder.reset()
            let label = uniqueLabel()
            await #expect(throws: Teapot.self) {
                try await Airlock.scope(executor: recorder) {
                    try await Airlock.transaction(on: client) { connection in
                        try Airlock.enqueue(NotifyItem(itemID: try await insertItem(label, on: connection)))
                    }
                    throw Teapot()
                }
            }
            #expect(try await committedItems(label, client) == 1, "the transaction committed")
            #expect(recorder.intents.isEmpty, "but the outer scope failed, so its side effect was dropped")
        }
    }

    @Test(".atCommit inside an outer scope: dispatched at COMMIT through the outer scope's executor, even when the outer scope then fails")
    func atCommitIgnoresTheOuterScope() async throws {
        let database = try await TestDatabase.make()
        let recorder = RecordingExecutor()
        try await database.run { client async throws in
            await #expect(throws: Teapot.self) {
                try await Airlock.scope(executor: recorder) {
                    try await Airlock.transaction(on: client, dispatch: .atCommit) { connection in
                        try Airlock.enqueue(NotifyItem(itemID: try await insertItem(uniqueLabel(), on: connection)))
                    }
                    #expect(recorder.intents.count == 1)
                    #expect(Airlock.currentScope?.capturedIntents.isEmpty == true)
                    throw Teapot()
                }
            }
            #expect(recorder.intents.map(\.taskName) == [NotifyItem.name])
        }
    }
}
