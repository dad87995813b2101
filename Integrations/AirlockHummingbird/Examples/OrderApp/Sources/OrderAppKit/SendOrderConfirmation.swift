public import Airlock
public import AirlockRedis
import Logging

/// Sends the confirmation of a committed order. The API enqueues it with `Airlock.transaction`,
/// so the job reaches Redis only after the row's transaction committed; the worker runs it with
/// the closure ``OrderWorker/registry(services:)`` registers, which holds the database.
public struct SendOrderConfirmation: AirlockTask {
    /// The wire name.
    public static let name = "orders.send_confirmation"
    /// The order to confirm.
    public let orderID: Int

    /// A confirmation for `orderID`.
    public init(orderID: Int) { self.orderID = orderID }

    /// Reads the order, delivers the confirmation, records it.
    public func run(services: OrderWorkerServices, _ context: TaskContext) async throws {
        guard let order = try await services.store.order(id: orderID) else {
            // Never happens when the job was enqueued with Airlock.transaction; retried if it does.
            throw OrderNotFound(orderID: orderID)
        }
        try await services.deliver(order, context)
        try await services.store.markConfirmed(id: orderID)
    }
}

/// The order a confirmation job names is not in the database (yet).
public struct OrderNotFound: Error, CustomStringConvertible, Sendable {
    /// The missing order.
    public let orderID: Int
    /// Names the order.
    public var description: String { "order \(orderID) not found" }
}

/// What the worker's tasks use: the database, and how a confirmation is delivered.
public struct OrderWorkerServices: Sendable {
    /// The orders table.
    public var store: OrderStore
    /// Delivers one confirmation; the default logs it (a real application sends an email).
    public var deliver: @Sendable (Order, TaskContext) async throws -> Void

    /// Services over `store`, delivering with `deliver`.
    public init(store: OrderStore, deliver: @escaping @Sendable (Order, TaskContext) async throws -> Void = Self.logDelivery) {
        self.store = store
        self.deliver = deliver
    }

    /// The default delivery: one log line per confirmation.
    public static let logDelivery: @Sendable (Order, TaskContext) async throws -> Void = { order, context in
        context.logger.notice("✉️  confirmation for order \(order.id): \(order.quantity) × \(order.item) → \(order.email)")
    }

    /// A delivery that takes `latency` (a slow mail provider), then logs.
    public static func slowDelivery(latency: Duration) -> @Sendable (Order, TaskContext) async throws -> Void {
        { order, context in
            try await Task.sleep(for: latency)
            try await logDelivery(order, context)
        }
    }
}

/// The example's worker side: the tasks it runs, with the services they need.
public enum OrderWorker {
    /// The tasks this application's workers run. Each closure captures `services`, so a task
    /// cannot run without its database: the dependency is there from registration on.
    public static func registry(services: OrderWorkerServices) -> TaskRegistry {
        var tasks = TaskRegistry()
        tasks.register(SendOrderConfirmation.self) { task, context in
            try await task.run(services: services, context)
        }
        return tasks
    }
}
