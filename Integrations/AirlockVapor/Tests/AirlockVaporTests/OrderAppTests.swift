import Airlock
import AirlockFluent
import AirlockRedis
import AirlockVapor
import Fluent
import FluentSQL
import Foundation
import Testing
import Vapor
import VaporOrderAppKit
import VaporTesting

/// The example application end to end: HTTP → PostgreSQL + Redis → the embedded worker.
@Suite("VaporOrderApp", .timeLimit(.minutes(2)))
struct OrderAppTests {
    func postOrder(_ tester: any TestingApplicationTester, _ order: NewOrder) async throws -> OrderView {
        let response = try await tester.sendRequest(.POST, "orders", headers: ["content-type": "application/json"], body: try json(order))
        #expect(response.status == .created)
        let view = try JSONDecoder().decode(OrderView.self, from: response.body)
        #expect(response.headers.first(name: .location) == "/orders/\(view.id)")
        return view
    }

    @Test("POST /orders commits the row and queues the confirmation; the embedded worker's task reads the row through app.db and mails it with the injected mailer")
    func orderIsConfirmed() async throws {
        let harness = try await Harness.make()
        // The web application alone: the job waits in Redis, naming the committed row.
        let order = try await harness.withApp { app in
            let order = try await postOrder(try app.testing(method: live), NewOrder(item: "widget", quantity: 3, email: "ada@example.com"))
            #expect(order.item == "widget" && order.quantity == 3 && !order.confirmed)
            let jobs = try await harness.readyJobs()
            #expect(jobs.map(\.task) == [OrderTasks.sendConfirmation])
            #expect(jobs.first?.kwargs["orderID"]?.intValue == order.id)
            return order
        }
        #expect(try await harness.isConfirmed(orderID: order.id) == false)

        // The same application with its embedded worker: booting starts it, it takes the job.
        let mailer = RecordingMailer()
        try await harness.withApp(worker: true, mailer: mailer) { app in
            try await app.asyncBoot()
            #expect(try await mailer.next() == .init(order: order, attempt: 0))
        }
        // Shutting down waited for the running task to finish: the order is marked confirmed.
        #expect(try await harness.isConfirmed(orderID: order.id) == true)
        #expect(mailer.sent.count == 1)
        #expect(try await harness.readyJobs().isEmpty)
    }

    @Test("with the embedded worker already waiting and a slow COMMIT, the job still arrives only after the row is committed",
          arguments: [TransactionDispatch.afterEnclosingScope, .atCommit])
    func workerNeverRacesTheCommit(dispatch: TransactionDispatch) async throws {
        let harness = try await Harness.make()
        let mailer = RecordingMailer()
        try await harness.withApp(worker: true, mailer: mailer, configure: { app in
            // POST /orders, with a pause between the enqueue and the COMMIT.
            app.post("t", "slow-order") { req -> String in
                let id = try await req.airlock.transaction(dispatch: dispatch) { db in
                    let order = Order(item: "slow", quantity: 1, email: "slow@example.com")
                    try await order.create(on: db)
                    try OrderTasks.enqueueConfirmation(orderID: try order.requireID())
                    try await (db as! any SQLDatabase).raw("SELECT pg_sleep(0.5)").run()
                    return try order.requireID()
                }
                return "\(id)"
            }
        }) { app in
            let tester = try app.testing(method: live)   // boots the application: the worker is waiting
            let response = try await tester.sendRequest(.POST, "t/slow-order")
            #expect(response.status == .ok)
            let id = try #require(Int(response.text))
            let sent = try await mailer.next()
            // Found at the first attempt: a job dispatched when it was enqueued would have failed
            // with OrderNotFound and been retried (attempt 1).
            #expect(sent.order.id == id)
            #expect(sent.attempt == 0)
        }
    }

    @Test("a rejected order (400) writes nothing and queues nothing")
    func badRequest() async throws {
        let harness = try await Harness.make()
        try await harness.withApp { app in
            let response = try await app.testing(method: live).sendRequest(
                .POST, "orders", headers: ["content-type": "application/json"],
                body: try json(NewOrder(item: "widget", quantity: 0, email: "ada@example.com")))
            #expect(response.status == .badRequest)
            #expect(try await harness.readyJobs().isEmpty)
        }
    }

    @Test("GET /orders/:id answers 404 for an order that does not exist")
    func unknownOrder() async throws {
        let harness = try await Harness.make()
        try await harness.withApp { app in
            try await app.testing(method: live).test(.GET, "orders/0") { #expect($0.status == .notFound) }
        }
    }
}
