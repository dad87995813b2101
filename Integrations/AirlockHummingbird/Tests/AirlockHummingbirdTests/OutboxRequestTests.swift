import Airlock
import AirlockHummingbird
import AirlockRedis
import Foundation
import Hummingbird
import HummingbirdTesting
import OrderAppKit
import PostgresNIO
import Testing

/// `Airlock.transaction(on:outbox:)` — the Hummingbird integration's transaction helper — inside a
/// request, against real PostgreSQL and Redis: the job's outbox row commits with the order and the
/// job is queued once at `COMMIT`, whatever the response; a throwing body leaves neither.
@Suite("Airlock.transaction with the outbox in a Hummingbird request", .timeLimit(.minutes(2)))
struct OutboxRequestTests {
    struct Teapot: Error {}

    static func routes(_ harness: Harness, _ outbox: Outbox) -> (Router<BasicAirlockRequestContext>) -> Void {
        let store = harness.store
        return { router in
            router.post("/t/ob/commit/:item/:code") { _, context -> Response in
                let item = try context.parameters.require("item")
                let code = try context.parameters.require("code", as: Int.self)
                try await Airlock.transaction(on: store.database, outbox: .using(outbox)) { connection in
                    let id = try await store.insert(item: item, quantity: 1, email: "a@example.com", on: connection)
                    try Airlock.enqueue(SendOrderConfirmation(orderID: id))
                }
                return Response(status: .init(code: code))
            }
            router.post("/t/ob/rollback/:item") { _, context -> Response in
                let item = try context.parameters.require("item")
                try await Airlock.transaction(on: store.database, outbox: .using(outbox)) { connection in
                    let id = try await store.insert(item: item, quantity: 1, email: "a@example.com", on: connection)
                    try Airlock.enqueue(SendOrderConfirmation(orderID: id))
                    throw Teapot()
                }
                return Response(status: .ok)
            }
        }
    }

    /// The committed outbox rows of `namespace` (job ids, in row order).
    static func outboxJobIDs(_ namespace: String, _ database: PostgresClient) async throws -> [String] {
        var ids: [String] = []
        let rows = try await database.query("SELECT job_id FROM airlock_outbox WHERE namespace = \(namespace) ORDER BY id")
        for try await id in rows.decode(String.self) { ids.append(id) }
        return ids
    }

    static func orders(_ item: String, _ database: PostgresClient) async throws -> Int {
        let rows = try await database.query("SELECT count(*) FROM orders WHERE item = \(item)")
        for try await count in rows.decode(Int.self) { return count }
        return -1
    }

    @Test("commit then a 500 → the order and its outbox row are committed, the job queued once at COMMIT; a throwing body → no order, no row, no job")
    func commitAndRollback() async throws {
        let harness = try await Harness.make()
        let outbox = Outbox(executor: harness.executor, postgres: harness.store.database, logger: quietLogger)
        let committed = "item-\(UUID().uuidString.prefix(8))", rolledBack = "item-\(UUID().uuidString.prefix(8))"
        let namespace = harness.keys.namespace
        try await harness.withApp(addRoutes: Self.routes(harness, outbox)) { client in
            let database = harness.store.database
            try await OutboxSchema.migrate(on: database, logger: quietLogger)
            try await client.execute(uri: "/t/ob/commit/\(committed)/500", method: .post) { #expect($0.status == .internalServerError) }
            #expect(try await Self.orders(committed, database) == 1)
            let rows = try await Self.outboxJobIDs(namespace, database)
            #expect(rows.count == 1, "the row committed with the order (the outbox service is not running: it stays)")
            let jobs = try await harness.readyJobs()
            #expect(jobs.map(\.task) == [SendOrderConfirmation.name], "queued once at COMMIT: the 500 cannot call back a committed row")
            #expect(jobs.map(\.id) == rows)

            try await client.execute(uri: "/t/ob/rollback/\(rolledBack)", method: .post) { #expect($0.status == .internalServerError) }
            #expect(try await Self.orders(rolledBack, database) == 0)
            #expect(try await Self.outboxJobIDs(namespace, database) == rows, "no row for the rolled-back order")
            #expect(try await harness.readyJobs().count == 1, "nothing more queued")
        }
    }
}
