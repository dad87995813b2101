import Airlock
import AirlockFluent
import AirlockRedis
import AirlockVapor
import Fluent
import FluentSQL
import Testing
import Vapor
import VaporOrderAppKit
import VaporTesting

/// `req.airlock.transaction` / `Database.airlockTransaction` against a real PostgreSQL through
/// Fluent: intents leave only after COMMIT, never after ROLLBACK, and inside a request only if the
/// request succeeds too.
@Suite("Fluent transaction gate", .timeLimit(.minutes(2)))
struct TransactionTests {
    /// Test routes; each takes the item name in the path so the test can look for its row.
    static func transactionRoutes(_ app: Application) {
        // Commit, then answer with the status in the path.
        app.post("t", "tx", "commit", ":item", ":code") { req -> Response in
            let item = try #require(req.parameters.get("item"))
            let code = try #require(req.parameters.get("code", as: Int.self))
            try await req.airlock.transaction { db in
                let order = Order(item: item, quantity: 1, email: "a@example.com")
                try await order.create(on: db)
                try OrderTasks.enqueueConfirmation(orderID: try order.requireID())
            }
            return Response(status: .init(statusCode: code))
        }
        // Same, but dispatched at commit whatever the request does next.
        app.post("t", "tx", "at-commit", ":item", ":code") { req -> Response in
            let item = try #require(req.parameters.get("item"))
            let code = try #require(req.parameters.get("code", as: Int.self))
            try await req.airlock.transaction(dispatch: .atCommit) { db in
                let order = Order(item: item, quantity: 1, email: "a@example.com")
                try await order.create(on: db)
                try OrderTasks.enqueueConfirmation(orderID: try order.requireID())
            }
            return Response(status: .init(statusCode: code))
        }
        // The body throws after the INSERT and two enqueues (one in a nested scope).
        app.post("t", "tx", "rollback", ":item") { req -> HTTPStatus in
            let item = try #require(req.parameters.get("item"))
            try await req.airlock.transaction { db in
                let order = Order(item: item, quantity: 1, email: "a@example.com")
                try await order.create(on: db)
                try OrderTasks.enqueueConfirmation(orderID: try order.requireID())
                try await Airlock.scope { try Airlock.enqueue(Probe(label: "nested")) }
                throw Teapot()
            }
            return .ok
        }
        // The handler catches the rolled-back transaction's error and succeeds anyway.
        app.post("t", "tx", "rollback-caught", ":item") { req -> HTTPStatus in
            let item = try #require(req.parameters.get("item"))
            do {
                try await req.airlock.transaction { db in
                    let order = Order(item: item, quantity: 1, email: "a@example.com")
                    try await order.create(on: db)
                    try OrderTasks.enqueueConfirmation(orderID: try order.requireID())
                    throw Teapot()
                }
            } catch is Teapot {}
            try Airlock.enqueue(Probe(label: "after-rollback"))
            return .ok
        }
        // A statement fails inside the transaction and the body swallows its error: Fluent's
        // COMMIT would silently roll back. The handler reports the error it got and answers 200.
        app.post("t", "tx", "aborted", ":item") { req -> String in
            let item = try #require(req.parameters.get("item"))
            do {
                try await req.airlock.transaction { db in
                    let order = Order(item: item, quantity: 1, email: "a@example.com")
                    try await order.create(on: db)
                    try OrderTasks.enqueueConfirmation(orderID: try order.requireID())
                    do { try await (db as! any SQLDatabase).raw("SELECT 1/0").run() } catch {}
                }
                return "committed"
            } catch let error as TransactionNotCommitted {
                return "\(error.reason) dropped=\(error.droppedIntents.map(\.taskName))"
            }
        }
    }

    @Test("committed transaction + successful request → the job is queued, naming the committed row")
    func commitThenSuccess() async throws {
        let harness = try await Harness.make()
        let item = uniqueItem()
        try await harness.withApp(configure: Self.transactionRoutes) { app in
            try await app.testing(method: live).test(.POST, "t/tx/commit/\(item)/201") { #expect($0.status == .created) }
            #expect(try await harness.committedOrders(item: item) == 1)
            let jobs = try await harness.readyJobs()
            #expect(jobs.map(\.task) == [OrderTasks.sendConfirmation])
            let id = try #require(jobs.first?.kwargs["orderID"]?.intValue)
            #expect(try await harness.isConfirmed(orderID: id) == false, "the job names the committed, unconfirmed row")
        }
    }

    @Test("committed transaction + 5xx or 4xx response → row committed, job dropped (the request scope decides)",
          arguments: [500, 422])
    func commitThenFailure(status: Int) async throws {
        let harness = try await Harness.make()
        let item = uniqueItem()
        try await harness.withApp(configure: Self.transactionRoutes) { app in
            try await app.testing(method: live).test(.POST, "t/tx/commit/\(item)/\(status)") { #expect($0.status.code == status) }
            #expect(try await harness.committedOrders(item: item) == 1)
            #expect(try await harness.readyJobs().isEmpty)
        }
    }

    @Test(".atCommit dispatches at COMMIT even when the request then fails")
    func atCommitIgnoresTheRequest() async throws {
        let harness = try await Harness.make()
        let item = uniqueItem()
        try await harness.withApp(configure: Self.transactionRoutes) { app in
            try await app.testing(method: live).test(.POST, "t/tx/at-commit/\(item)/500") { #expect($0.status == .internalServerError) }
            #expect(try await harness.committedOrders(item: item) == 1)
            #expect(try await harness.readyJobs().map(\.task) == [OrderTasks.sendConfirmation])
        }
    }

    @Test("the body throws → ROLLBACK: no row, nothing queued (nested scopes included)")
    func rollback() async throws {
        let harness = try await Harness.make()
        let item = uniqueItem()
        try await harness.withApp(configure: Self.transactionRoutes) { app in
            try await app.testing(method: live).test(.POST, "t/tx/rollback/\(item)") { #expect($0.status == .internalServerError) }
            #expect(try await harness.committedOrders(item: item) == 0)
            #expect(try await harness.readyJobs().isEmpty)
        }
    }

    @Test("a rolled-back transaction inside a request that succeeds anyway → only the request's own job is queued")
    func rollbackCaughtByHandler() async throws {
        let harness = try await Harness.make()
        let item = uniqueItem()
        try await harness.withApp(configure: Self.transactionRoutes) { app in
            try await app.testing(method: live).test(.POST, "t/tx/rollback-caught/\(item)") { #expect($0.status == .ok) }
            #expect(try await harness.committedOrders(item: item) == 0)
            #expect(try await harness.readyJobs().map(\.task) == [Probe.name])
        }
    }

    @Test("a failed statement whose error the body swallowed → TransactionNotCommitted(rolledBackByServer), no row, nothing queued")
    func abortedTransaction() async throws {
        let harness = try await Harness.make()
        let item = uniqueItem()
        try await harness.withApp(configure: Self.transactionRoutes) { app in
            try await app.testing(method: live).test(.POST, "t/tx/aborted/\(item)") { response in
                #expect(response.status == .ok)
                #expect(response.text == "rolledBackByServer dropped=[\"\(OrderTasks.sendConfirmation)\"]")
            }
            #expect(try await harness.committedOrders(item: item) == 0)
            #expect(try await harness.readyJobs().isEmpty)
        }
    }

    @Test("on a route the middleware does not cover, the committed intents go to app.airlock.executor, not the process-wide default")
    func uncoveredRouteUsesTheApplicationsExecutor() async throws {
        let harness = try await Harness.make()
        let item = uniqueItem()
        try await harness.withBareApp({ app in
            harness.usePostgres(app)
            try app.airlock.useRedis(url: harness.servers.redisURL, namespace: harness.namespace, global: false)
            app.post("t", "uncovered") { req async throws -> HTTPStatus in
                #expect(Airlock.currentScope == nil)
                try await req.airlock.transaction { db in
                    let order = Order(item: item, quantity: 1, email: "f@example.com")
                    try await order.create(on: db)
                    try OrderTasks.enqueueConfirmation(orderID: try order.requireID())
                }
                return .created
            }
        }) { app in
            try await app.testing(method: live).test(.POST, "t/uncovered") { #expect($0.status == .created) }
            #expect(try await harness.readyJobs().map(\.task) == [OrderTasks.sendConfirmation])
            #expect(try await harness.committedOrders(item: item) == 1)
        }
    }

    @Test("with no enclosing scope the executor runs after COMMIT: it already sees the row from another connection")
    func topLevelDispatchesAfterCommit() async throws {
        let harness = try await Harness.make()
        let recorder = VisibilityExecutor(harness: harness)
        try await harness.withApp { app in
            let id = try await app.db.airlockTransaction(executor: recorder) { db in
                let order = Order(item: uniqueItem(), quantity: 2, email: "b@example.com")
                try await order.create(on: db)
                try OrderTasks.enqueueConfirmation(orderID: try order.requireID())
                #expect(recorder.visibility.isEmpty)
                return try order.requireID()
            }
            #expect(recorder.visibility == [true])
            #expect(try await harness.isConfirmed(orderID: id) == false)

            await #expect(throws: Teapot.self) {
                try await app.db.airlockTransaction(executor: recorder) { db in
                    let order = Order(item: uniqueItem(), quantity: 2, email: "b@example.com")
                    try await order.create(on: db)
                    try OrderTasks.enqueueConfirmation(orderID: try order.requireID())
                    throw Teapot()
                }
            }
            #expect(recorder.visibility == [true])
        }
    }

    @Test("dispatch fails after COMMIT → CommittedButNotDispatched: the row is committed and the error says so")
    func dispatchFailureAfterCommit() async throws {
        let harness = try await Harness.make()
        let item = uniqueItem()
        try await harness.withApp { app in
            let error = try await #require(throws: CommittedButNotDispatched.self) {
                try await app.db.airlockTransaction(executor: UnreachableExecutor()) { db in
                    let order = Order(item: item, quantity: 1, email: "c@example.com")
                    try await order.create(on: db)
                    try OrderTasks.enqueueConfirmation(orderID: try order.requireID())
                }
            }
            #expect(try await harness.committedOrders(item: item) == 1)
            #expect(error.notDispatched.map(\.taskName) == [OrderTasks.sendConfirmation])
            #expect(error.description.hasPrefix("The transaction committed (its data is saved)"))
        }
    }

    @Test("inside an outer scope the committed intents are captured by it and leave when it flushes, or never")
    func outerScopeDecides() async throws {
        let harness = try await Harness.make()
        let recorder = RecordingExecutor()
        try await harness.withApp { app in
            try await Airlock.scope(executor: recorder) {
                try await app.db.airlockTransaction { db in
                    let order = Order(item: uniqueItem(), quantity: 1, email: "d@example.com")
                    try await order.create(on: db)
                    try OrderTasks.enqueueConfirmation(orderID: try order.requireID())
                }
                #expect(Airlock.currentScope?.capturedIntents.map(\.taskName) == [OrderTasks.sendConfirmation])
                #expect(recorder.intents.isEmpty)
            }
            #expect(recorder.intents.map(\.taskName) == [OrderTasks.sendConfirmation])

            recorder.reset()
            let item = uniqueItem()
            await #expect(throws: Teapot.self) {
                try await Airlock.scope(executor: recorder) {
                    try await app.db.airlockTransaction { db in
                        let order = Order(item: item, quantity: 1, email: "d@example.com")
                        try await order.create(on: db)
                        try OrderTasks.enqueueConfirmation(orderID: try order.requireID())
                    }
                    throw Teapot()
                }
            }
            #expect(try await harness.committedOrders(item: item) == 1)
            #expect(recorder.intents.isEmpty)
        }
    }

    @Test("an airlock transaction nested in another joins it; nested in a plain db.transaction it is refused")
    func nestedTransactions() async throws {
        let harness = try await Harness.make()
        let recorder = RecordingExecutor()
        try await harness.withApp { app in
            try await app.db.airlockTransaction(executor: recorder) { db in
                try await db.airlockTransaction { inner in
                    let order = Order(item: uniqueItem(), quantity: 1, email: "e@example.com")
                    try await order.create(on: inner)
                    try OrderTasks.enqueueConfirmation(orderID: try order.requireID())
                }
                #expect(recorder.intents.isEmpty, "the inner one waits for the outer COMMIT")
            }
            #expect(recorder.intents.map(\.taskName) == [OrderTasks.sendConfirmation])

            let item = uniqueItem()
            let error = await #expect(throws: TransactionAlreadyOpen.self) {
                try await Airlock.scope(executor: recorder) {
                    try await app.db.transaction { db in
                        try await Order(item: item, quantity: 1, email: "e@example.com").create(on: db)
                        try await db.airlockTransaction { _ in try OrderTasks.enqueueConfirmation(orderID: 0) }
                    }
                }
            }
            #expect(error?.description.contains("already in a transaction") == true)
            #expect(try await harness.committedOrders(item: item) == 0, "the error rolled the plain transaction back")
            #expect(recorder.intents.count == 1)
        }
    }
}
