import Airlock
import AirlockHummingbird
import AirlockRedis
import Foundation
import Hummingbird
import HummingbirdTesting
import OrderAppKit
import PostgresNIO
import Testing

/// The example application end to end: HTTP → PostgreSQL + Redis → an Airlock worker.
@Suite("OrderApp", .timeLimit(.minutes(2)))
struct OrderAppTests {
    @Test("POST /orders commits the row and queues the confirmation; the worker finds the row and confirms it")
    func orderIsConfirmed() async throws {
        let harness = try await Harness.make()
        let deliveries = Deliveries()
        try await harness.withApp { client in
            let order = try await client.execute(
                uri: "/orders", method: .post, headers: [.contentType: "application/json"],
                body: try json(NewOrder(item: "widget", quantity: 3, email: "ada@example.com"))
            ) { response -> Order in
                #expect(response.status == .created)
                return try JSONDecoder().decode(Order.self, from: Data(response.body.readableBytesView))
            }
            #expect(order.item == "widget" && order.quantity == 3 && !order.confirmed)

            // No worker yet: the job sits in the ready list, naming the committed order.
            let jobs = try await harness.readyJobs()
            #expect(jobs.map(\.task) == [SendOrderConfirmation.name])
            #expect(jobs.first?.kwargs["orderID"]?.intValue == order.id)

            let delivered = try await harness.withWorker(deliver: { order, context in deliveries.record(order, context) }) {
                try await eventually { !deliveries.seen.isEmpty }
            }
            #expect(delivered)
            #expect(deliveries.seen == [.init(order: order, attempt: 0)])
            let stored = try await client.execute(uri: "/orders/\(order.id)", method: .get) { response in
                #expect(response.status == .ok)
                return try JSONDecoder().decode(Order.self, from: Data(response.body.readableBytesView))
            }
            #expect(stored.confirmed)
            #expect(try await harness.readyJobs().isEmpty)
        }
    }

    @Test("with the worker already waiting and a slow COMMIT, the job still arrives only after the row is committed",
          arguments: [TransactionDispatch.afterEnclosingScope, .atCommit])
    func workerNeverRacesTheCommit(dispatch: TransactionDispatch) async throws {
        let harness = try await Harness.make()
        let deliveries = Deliveries()
        let store = harness.store
        try await harness.withApp(addRoutes: { router in
            // POST /orders, with a pause between the enqueue and the COMMIT.
            router.post("/t/slow-order") { _, context -> String in
                let id = try await Airlock.transaction(on: store.database, dispatch: dispatch, executor: harness.executor) { connection in
                    let id = try await store.insert(item: "slow", quantity: 1, email: "slow@example.com", on: connection)
                    try Airlock.enqueue(SendOrderConfirmation(orderID: id))
                    try await connection.query("SELECT pg_sleep(0.5)", logger: context.logger)
                    return id
                }
                return "\(id)"
            }
        }) { client in
            try await harness.withWorker(deliver: { order, context in deliveries.record(order, context) }) {
                let id = try await client.execute(uri: "/t/slow-order", method: .post) { response in
                    #expect(response.status == .ok)
                    return Int(response.body.text) ?? -1
                }
                let delivered = try await eventually { !deliveries.seen.isEmpty }
                #expect(delivered)
                // Found at the first attempt: a job dispatched when it was enqueued would have failed
                // with OrderNotFound and been retried (attempt 1).
                #expect(deliveries.seen.map(\.order.id) == [id])
                #expect(deliveries.seen.map(\.attempt) == [0])
            }
        }
    }

    @Test("a rejected order (400) writes nothing and queues nothing")
    func badRequest() async throws {
        let harness = try await Harness.make()
        try await harness.withApp { client in
            try await client.execute(
                uri: "/orders", method: .post, headers: [.contentType: "application/json"],
                body: try json(NewOrder(item: "widget", quantity: 0, email: "ada@example.com"))
            ) { #expect($0.status == .badRequest) }
            #expect(try await harness.readyJobs().isEmpty)
        }
    }
}
