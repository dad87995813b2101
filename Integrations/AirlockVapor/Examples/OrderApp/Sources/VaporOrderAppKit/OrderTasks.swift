public import Airlock
public import AirlockRedis
import Fluent
import Foundation
public import Vapor

/// The example's one side effect, `orders.send_confirmation`: enqueued by `POST /orders` inside
/// its transaction, run by the embedded worker.
public enum OrderTasks {
    /// The task's wire name.
    public static let sendConfirmation = "orders.send_confirmation"

    /// Enqueues the confirmation of order `orderID` into the current scope (the transaction's).
    @discardableResult
    public static func enqueueConfirmation(orderID: Int) throws -> Intent {
        try Airlock.enqueue(name: sendConfirmation, kwargs: ["orderID": .int(orderID)])
    }

    /// The worker's tasks. Their dependencies — the application's database, the mailer — are
    /// captured by the closures they are registered with, so a task uses exactly what the
    /// application was configured with (a test's recording mailer, say).
    public static func registry(app: Application, mailer: any Mailer) -> TaskRegistry {
        var tasks = TaskRegistry()
        tasks.register(sendConfirmation) { arguments, context in
            guard let id = arguments.kwargs["orderID"]?.intValue else {
                throw PermanentFailure("\(sendConfirmation) needs an integer orderID, got \(arguments)")
            }
            guard let order = try await Order.find(id, on: app.db) else {
                // Never happens when the job was enqueued in the order's transaction; retried if it does.
                throw OrderNotFound(orderID: id)
            }
            try await mailer.sendConfirmation(of: order.view, attempt: context.attempt)
            order.confirmedAt = Date()
            try await order.save(on: app.db)
        }
        return tasks
    }
}

/// The order a confirmation job names is not in the database (yet).
public struct OrderNotFound: Error, CustomStringConvertible, Sendable {
    /// The missing order.
    public let orderID: Int
    /// Names the order.
    public var description: String { "order \(orderID) not found" }
}
