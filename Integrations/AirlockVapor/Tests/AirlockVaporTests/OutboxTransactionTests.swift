import Airlock
import AirlockFluent
import AirlockRedis
import AirlockVapor
import Fluent
import Foundation
import Logging
import PostgresNIO
import Testing
import Vapor
import VaporOrderAppKit
import VaporTesting

/// `req.airlock.transaction` writing through the PostgreSQL outbox, against real PostgreSQL and
/// real Redis through Fluent: the job's row commits with the order or rolls back with it; after
/// `COMMIT` the job is queued once; with Redis down at `COMMIT` the request still succeeds, the row
/// is kept, and a relay queues it once.
@Suite("Fluent transaction gate with the outbox", .timeLimit(.minutes(3)))
struct OutboxTransactionTests {
    /// The order routes of these tests. `outbox` is passed per call when given; otherwise the
    /// application's (`app.airlock.use(outbox:)`) applies.
    static func routes(_ app: Application, harness: Harness, outbox: Outbox?) {
        app.post("t", "ob", "commit", ":item", ":code") { req -> Response in
            let item = try #require(req.parameters.get("item"))
            let code = try #require(req.parameters.get("code", as: Int.self))
            let seen = try await req.airlock.transaction(outbox: outbox.map(TransactionOutbox.using) ?? .configured) { db in
                let order = Order(item: item, quantity: 1, email: "a@example.com")
                try await order.create(on: db)
                try OrderTasks.enqueueConfirmation(orderID: try order.requireID())
                // What another connection sees before COMMIT (the test reads it from the body).
                return "orders=\(try await harness.committedOrders(item: item)) rows=\(try await harness.outboxRows())"
            }
            return Response(status: .init(statusCode: code), body: .init(string: seen))
        }
        app.post("t", "ob", "rollback", ":item") { req -> HTTPStatus in
            let item = try #require(req.parameters.get("item"))
            try await req.airlock.transaction(outbox: outbox.map(TransactionOutbox.using) ?? .configured) { db in
                let order = Order(item: item, quantity: 1, email: "a@example.com")
                try await order.create(on: db)
                try OrderTasks.enqueueConfirmation(orderID: try order.requireID())
                throw Teapot()
            }
            return .ok
        }
        app.post("t", "ob", "off", ":item") { req -> HTTPStatus in
            let item = try #require(req.parameters.get("item"))
            try await req.airlock.transaction(outbox: .off) { db in
                let order = Order(item: item, quantity: 1, email: "a@example.com")
                try await order.create(on: db)
                try OrderTasks.enqueueConfirmation(orderID: try order.requireID())
            }
            return .ok
        }
    }

    @Test("commit (outbox per call) → the order and its outbox row commit together; the job is queued once at COMMIT, even for a 500; the row is then deleted")
    func commitQueuesOnce() async throws {
        let harness = try await Harness.make()
        try await harness.withOutbox { client, executor in
            let outbox = Outbox(executor: executor, postgres: client, logger: quietLogger)
            let item = uniqueItem()
            try await harness.withApp(configure: { Self.routes($0, harness: harness, outbox: outbox) }) { app in
                try await app.testing(method: live).test(.POST, "t/ob/commit/\(item)/500") {
                    #expect($0.status == .internalServerError)
                    #expect($0.text == "orders=0 rows=0", "before COMMIT another connection sees neither the order nor its row")
                }
            }
            #expect(try await harness.committedOrders(item: item) == 1)
            let rows = try await harness.outboxJobIDs()
            #expect(rows.count == 1, "the row committed with the order (the outbox service is not running: it stays)")
            let jobs = try await harness.readyJobs()
            #expect(jobs.map(\.task) == [OrderTasks.sendConfirmation], "queued once at COMMIT: the request's 500 cannot call back a committed row")
            #expect(jobs.map(\.id) == rows, "the queued job is the row's")

            try await whileRunning([{ try await outbox.run() }]) {
                try await eventually("the outbox deletes the delivered row") { try await harness.outboxRows() == 0 }
            }
            #expect(try await harness.readyJobs().count == 1, "still once")
        }
    }

    @Test("the body throws (outbox as the application's default) → ROLLBACK: no order, no row, nothing queued; outbox: .off writes no row")
    func rollbackLeavesNothing() async throws {
        let harness = try await Harness.make()
        try await harness.withOutbox { client, executor in
            let outbox = Outbox(executor: executor, postgres: client, logger: quietLogger)
            let item = uniqueItem(), other = uniqueItem()
            try await harness.withApp(configure: { app in
                app.airlock.use(outbox: outbox)
                Self.routes(app, harness: harness, outbox: nil)
            }) { app in
                #expect(app.airlock.outbox === outbox)
                try await app.testing(method: live).test(.POST, "t/ob/rollback/\(item)") { #expect($0.status == .internalServerError) }
                #expect(try await harness.committedOrders(item: item) == 0)
                #expect(try await harness.outboxRows() == 0)
                #expect(try await harness.readyJobs().isEmpty)

                try await app.testing(method: live).test(.POST, "t/ob/off/\(other)") { #expect($0.status == .ok) }
                #expect(try await harness.committedOrders(item: other) == 1)
                #expect(try await harness.outboxRows() == 0, "outbox: .off overrides the application's outbox")
                #expect(try await harness.readyJobs().map(\.task) == [OrderTasks.sendConfirmation], "sent the old way, by the request scope")
            }
        }
    }

    @Test("Redis down at COMMIT (the application's outbox) → the request succeeds, the row is kept with the order; a relay then queues it exactly once")
    func redisDownThenRelay() async throws {
        let harness = try await Harness.make()
        try await harness.withOutbox { client, executor in
            // Nothing listens on port 1: every connection attempt is refused, as when Redis is stopped.
            let down = try RedisExecutor(url: "redis://127.0.0.1:1/0", namespace: harness.namespace, logger: quietLogger)
            let outbox = Outbox(executor: down, postgres: client, logger: quietLogger)
            let items = [uniqueItem(), uniqueItem(), uniqueItem()]
            try await harness.withApp(configure: { app in
                app.airlock.use(outbox: outbox)
                Self.routes(app, harness: harness, outbox: nil)
            }) { app in
                for item in items {
                    try await app.testing(method: live).test(.POST, "t/ob/commit/\(item)/201") { #expect($0.status == .created, "no CommittedButNotDispatched") }
                }
            }
            await down.client.close()
            for item in items { #expect(try await harness.committedOrders(item: item) == 1) }
            let rows = try await harness.outboxJobIDs()
            #expect(rows.count == 3, "the committed intents are kept")
            #expect(try await harness.readyJobs().isEmpty, "nothing reached Redis")

            // Two relays at once with a working Redis: each row claimed by one, each job queued once.
            let relays = try (0..<2).map { _ in try harness.relay(executor, client) }
            try await whileRunning(relays.map { relay in { try await relay.run() } }) {
                try await eventually("the relays deliver the kept rows") { try await harness.outboxRows() == 0 }
            }
            let jobs = try await harness.readyJobs()
            #expect(jobs.map(\.id).sorted() == rows.sorted(), "each kept job queued exactly once")
            #expect(relays.reduce(0) { $0 + $1.delivered } == 3)
        }
    }
}

extension Harness {
    /// Runs `body` with a running PostgreSQL pool (the outbox's, for its deletes and the relays),
    /// the outbox table migrated, and a Redis executor in this harness's namespace.
    func withOutbox<R: Sendable>(_ body: @Sendable (PostgresClient, RedisExecutor) async throws -> R) async throws -> R {
        let client = PostgresClient(configuration: .init(
            host: servers.postgresHost, port: servers.postgresPort, username: servers.postgresUser, password: nil,
            database: servers.postgresDatabase, tls: .disable), backgroundLogger: quietLogger)
        let executor = try executor()
        let result: Result<R, any Error>
        do {
            result = .success(try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                try await OutboxSchema.migrate(on: client, logger: quietLogger)
                return try await body(client, executor)
            })
        } catch {
            result = .failure(error)
        }
        await executor.client.close()
        return try result.get()
    }

    /// A relay for this harness's namespace, tuned for tests: short grace and poll.
    func relay(_ executor: RedisExecutor, _ client: PostgresClient) throws -> OutboxRelay {
        var configuration = OutboxRelay.Configuration()
        configuration.gracePeriod = .milliseconds(200)
        configuration.pollInterval = .milliseconds(100)
        configuration.reportInterval = .milliseconds(300)
        return try OutboxRelay(executor: executor, postgres: client, configuration: configuration, logger: quietLogger)
    }

    /// This harness's rows in `airlock_outbox`, committed ones only (read on a connection of its own).
    func outboxRows() async throws -> Int { try await outboxJobIDs().count }

    /// The job ids of this harness's committed outbox rows, in row order.
    func outboxJobIDs() async throws -> [String] {
        try await withConnection { connection in
            var ids: [String] = []
            let rows = try await connection.query("SELECT job_id FROM airlock_outbox WHERE namespace = \(namespace) ORDER BY id", logger: quietLogger)
            for try await id in rows.decode(String.self) { ids.append(id) }
            return ids
        }
    }
}

/// Runs `services` (their `run()`) in the background while `body` runs, then cancels them.
func whileRunning<R: Sendable>(_ services: [@Sendable () async throws -> Void], _ body: () async throws -> R) async throws -> R {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for service in services { group.addTask { try await service() } }
        defer { group.cancelAll() }
        return try await body()
    }
}

/// Polls `condition` until it holds, for conditions nothing notifies (row counts in PostgreSQL).
/// No deadline of its own: the suite's `.timeLimit` bounds a test that hangs.
func eventually(_ what: String, _ condition: () async throws -> Bool) async throws {
    while true {
        if try await condition() { return }
        do {
            try await Task.sleep(for: .milliseconds(20))   // the poll's pace, not a wait for the condition
        } catch {
            throw TestFailure("cancelled (time limit?) while waiting for: \(what)")
        }
    }
}
