import Airlock
import AirlockHummingbird
import AirlockRedis
import Foundation
import Hummingbird
import HummingbirdTesting
import OrderAppKit
import PostgresNIO
import Synchronization
import Testing

/// `Airlock.transaction` against a real PostgreSQL: intents leave only after COMMIT, never after
/// ROLLBACK, and inside a request only if the request succeeds too.
@Suite("Airlock.transaction", .timeLimit(.minutes(2)))
struct TransactionTests {
    struct Teapot: Error {}

    /// Test routes; each takes the item name in the path so the test can look for its row.
    static func transactionRoutes(_ harness: Harness) -> (Router<BasicAirlockRequestContext>) -> Void {
        let store = harness.store
        return { router in
            // Commit, then answer with the status in the path.
            router.post("/t/tx/commit/:item/:code") { _, context -> Response in
                let item = try context.parameters.require("item")
                let code = try context.parameters.require("code", as: Int.self)
                try await Airlock.transaction(on: store.database) { connection in
                    let id = try await store.insert(item: item, quantity: 1, email: "a@example.com", on: connection)
                    try Airlock.enqueue(SendOrderConfirmation(orderID: id))
                }
                return Response(status: .init(code: code))
            }
            // Same, but dispatched at commit whatever the request does next.
            router.post("/t/tx/at-commit/:item/:code") { _, context -> Response in
                let item = try context.parameters.require("item")
                let code = try context.parameters.require("code", as: Int.self)
                // No executor given: the request scope's (the harness's) is used, not the configured one.
                try await Airlock.transaction(on: store.database, dispatch: .atCommit) { connection in
                    let id = try await store.insert(item: item, quantity: 1, email: "a@example.com", on: connection)
                    try Airlock.enqueue(SendOrderConfirmation(orderID: id))
                }
                return Response(status: .init(code: code))
            }
            // The body throws after the INSERT and two enqueues (one in a nested scope).
            router.post("/t/tx/rollback/:item") { _, context -> Response in
                let item = try context.parameters.require("item")
                try await Airlock.transaction(on: store.database) { connection in
                    let id = try await store.insert(item: item, quantity: 1, email: "a@example.com", on: connection)
                    try Airlock.enqueue(SendOrderConfirmation(orderID: id))
                    try await Airlock.scope { try Airlock.enqueue(Probe(label: "nested")) }
                    throw Teapot()
                }
                return Response(status: .ok)
            }
            // The handler catches the rolled-back transaction's error and succeeds anyway.
            router.post("/t/tx/rollback-caught/:item") { _, context -> Response in
                let item = try context.parameters.require("item")
                do {
                    try await Airlock.transaction(on: store.database) { connection in
                        let id = try await store.insert(item: item, quantity: 1, email: "a@example.com", on: connection)
                        try Airlock.enqueue(SendOrderConfirmation(orderID: id))
                        throw Teapot()
                    }
                } catch is Teapot {}
                try Airlock.enqueue(Probe(label: "after-rollback"))
                return Response(status: .ok)
            }
            // A statement fails inside the transaction and the body swallows its error: COMMIT
            // answers ROLLBACK. The handler reports the error it got and answers 200.
            router.post("/t/tx/aborted/:item") { _, context -> String in
                let item = try context.parameters.require("item")
                do {
                    try await Airlock.transaction(on: store.database) { connection in
                        let id = try await store.insert(item: item, quantity: 1, email: "a@example.com", on: connection)
                        try Airlock.enqueue(SendOrderConfirmation(orderID: id))
                        do { try await connection.query("SELECT 1/0", logger: context.logger) } catch {}
                    }
                    return "committed"
                } catch let error as TransactionNotCommitted {
                    return "\(error.reason) dropped=\(error.droppedIntents.map(\.taskName))"
                }
            }
        }
    }

    /// How many rows have `item` (committed, as another connection sees them).
    static func rows(_ item: String, _ store: OrderStore) async throws -> Int {
        let rows = try await store.database.query("SELECT count(*) FROM orders WHERE item = \(item)")
        for try await count in rows.decode(Int.self) { return count }
        return -1
    }

    static func uniqueItem() -> String { "item-\(UUID().uuidString.prefix(8))" }

    @Test("committed transaction + successful request → the job is queued, naming the committed row")
    func commitThenSuccess() async throws {
        let harness = try await Harness.make()
        let item = Self.uniqueItem()
        try await harness.withApp(addRoutes: Self.transactionRoutes(harness)) { client in
            try await client.execute(uri: "/t/tx/commit/\(item)/201", method: .post) { #expect($0.status == .created) }
            #expect(try await Self.rows(item, harness.store) == 1)
            let jobs = try await harness.readyJobs()
            #expect(jobs.map(\.task) == [SendOrderConfirmation.name])
            let id = try #require(jobs.first?.kwargs["orderID"]?.intValue)
            #expect(try await harness.store.order(id: id)?.item == item)
        }
    }

    @Test("committed transaction + 5xx or 4xx response → row committed, job dropped (the request scope decides)",
          arguments: [500, 422])
    func commitThenFailure(status: Int) async throws {
        let harness = try await Harness.make()
        let item = Self.uniqueItem()
        try await harness.withApp(addRoutes: Self.transactionRoutes(harness)) { client in
            try await client.execute(uri: "/t/tx/commit/\(item)/\(status)", method: .post) { #expect($0.status.code == status) }
            #expect(try await Self.rows(item, harness.store) == 1)
            #expect(try await harness.readyJobs().isEmpty)
        }
    }

    @Test(".atCommit dispatches at COMMIT even when the request then fails")
    func atCommitIgnoresTheRequest() async throws {
        let harness = try await Harness.make()
        let item = Self.uniqueItem()
        try await harness.withApp(addRoutes: Self.transactionRoutes(harness)) { client in
            try await client.execute(uri: "/t/tx/at-commit/\(item)/500", method: .post) { #expect($0.status == .internalServerError) }
            #expect(try await Self.rows(item, harness.store) == 1)
            #expect(try await harness.readyJobs().map(\.task) == [SendOrderConfirmation.name])
        }
    }

    @Test("the body throws → ROLLBACK: no row, nothing queued (nested scopes included)")
    func rollback() async throws {
        let harness = try await Harness.make()
        let item = Self.uniqueItem()
        try await harness.withApp(addRoutes: Self.transactionRoutes(harness)) { client in
            try await client.execute(uri: "/t/tx/rollback/\(item)", method: .post) { #expect($0.status == .internalServerError) }
            #expect(try await Self.rows(item, harness.store) == 0)
            #expect(try await harness.readyJobs().isEmpty)
        }
    }

    @Test("a rolled-back transaction inside a request that succeeds anyway → only the request's own job is queued")
    func rollbackCaughtByHandler() async throws {
        let harness = try await Harness.make()
        let item = Self.uniqueItem()
        try await harness.withApp(addRoutes: Self.transactionRoutes(harness)) { client in
            try await client.execute(uri: "/t/tx/rollback-caught/\(item)", method: .post) { #expect($0.status == .ok) }
            #expect(try await Self.rows(item, harness.store) == 0)
            #expect(try await harness.readyJobs().map(\.task) == [Probe.name])
        }
    }

    @Test("a failed statement whose error the body swallowed → COMMIT answers ROLLBACK → TransactionNotCommitted, nothing queued")
    func abortedTransaction() async throws {
        let harness = try await Harness.make()
        let item = Self.uniqueItem()
        try await harness.withApp(addRoutes: Self.transactionRoutes(harness)) { client in
            try await client.execute(uri: "/t/tx/aborted/\(item)", method: .post) { response in
                #expect(response.status == .ok)
                #expect(response.body.text == "rolledBackByServer dropped=[\"\(SendOrderConfirmation.name)\"]")
            }
            #expect(try await Self.rows(item, harness.store) == 0)
            #expect(try await harness.readyJobs().isEmpty)
        }
    }

    /// Records, at dispatch time, whether each confirmation's order is visible from another connection.
    final class VisibilityRecorder: Executor {
        let store: OrderStore
        private let seen = Mutex<[Bool]>([])
        init(store: OrderStore) { self.store = store }
        var visibility: [Bool] { seen.withLock { $0 } }
        func dispatch(_ intents: [Intent]) async throws {
            for intent in intents {
                guard let task = intent.task as? SendOrderConfirmation else { continue }
                let visible = try await store.order(id: task.orderID) != nil
                seen.withLock { $0.append(visible) }
            }
        }
    }

    @Test("with no enclosing scope the executor runs after COMMIT: it already sees the row from another connection")
    func topLevelDispatchesAfterCommit() async throws {
        let harness = try await Harness.make()
        let recorder = VisibilityRecorder(store: harness.store)
        try await harness.withDatabase { database in
            let id = try await Airlock.transaction(on: database, executor: recorder) { connection in
                let id = try await harness.store.insert(item: Self.uniqueItem(), quantity: 2, email: "b@example.com", on: connection)
                try Airlock.enqueue(SendOrderConfirmation(orderID: id))
                #expect(recorder.visibility.isEmpty)
                return id
            }
            #expect(recorder.visibility == [true])
            #expect(try await harness.store.order(id: id) != nil)

            await #expect(throws: Teapot.self) {
                try await Airlock.transaction(on: database, executor: recorder) { connection in
                    let id = try await harness.store.insert(item: Self.uniqueItem(), quantity: 2, email: "b@example.com", on: connection)
                    try Airlock.enqueue(SendOrderConfirmation(orderID: id))
                    throw Teapot()
                }
            }
            #expect(recorder.visibility == [true])
        }
        await harness.redis.close()
    }

    @Test("inside an enclosing scope the committed intents are captured by it and leave when it flushes, or never")
    func enclosingScopeDecides() async throws {
        let harness = try await Harness.make()
        let recorder = RecordingExecutor()
        try await harness.withDatabase { database in
            try await Airlock.scope(executor: recorder) {
                try await Airlock.transaction(on: database) { connection in
                    let id = try await harness.store.insert(item: Self.uniqueItem(), quantity: 1, email: "c@example.com", on: connection)
                    try Airlock.enqueue(SendOrderConfirmation(orderID: id))
                }
                #expect(Airlock.currentScope?.capturedIntents.map(\.taskName) == [SendOrderConfirmation.name])
                #expect(recorder.intents.isEmpty)
            }
            #expect(recorder.intents.map(\.taskName) == [SendOrderConfirmation.name])

            recorder.reset()
            await #expect(throws: Teapot.self) {
                try await Airlock.scope(executor: recorder) {
                    try await Airlock.transaction(on: database) { connection in
                        let id = try await harness.store.insert(item: Self.uniqueItem(), quantity: 1, email: "c@example.com", on: connection)
                        try Airlock.enqueue(SendOrderConfirmation(orderID: id))
                    }
                    throw Teapot()
                }
            }
            #expect(recorder.intents.isEmpty)
        }
        await harness.redis.close()
    }
}
