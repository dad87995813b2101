public import Airlock
public import AirlockRedis
import Logging

/// Sends the confirmation of a committed order. It runs on a worker, reads the order from
/// PostgreSQL, and finds it, because the API enqueued it with `Airlock.transaction`: the job
/// reaches Redis only after the row's transaction committed.
public struct SendOrderConfirmation: AirlockTask {
    /// The wire name.
    public static let name = "orders.send_confirmation"
    /// The order to confirm.
    public let orderID: Int

    /// A confirmation for `orderID`.
    public init(orderID: Int) { self.orderID = orderID }

    /// Reads the order, delivers the confirmation, marks the order confirmed.
    public func run(_ context: TaskContext) async throws {
        guard let services = OrderWorkerServices.current else {
            throw PermanentFailure("\(Self.name) needs the order database: run the worker with OrderWorker.run(_:services:)")
        }
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

    /// The services of the tasks running in this task tree (bound by ``OrderWorker/run(_:services:)``).
    @TaskLocal public static var current: OrderWorkerServices?
}

/// The example's worker: Airlock's `Worker` with the order tasks registered.
public enum OrderWorker {
    /// The tasks this application's workers run.
    public static var registry: TaskRegistry {
        var tasks = TaskRegistry()
        tasks.register(SendOrderConfirmation.self)
        return tasks
    }

    /// Runs `worker` until it is shut down, with `services` available to the tasks it runs.
    public static func run(_ worker: Worker, services: OrderWorkerServices) async throws {
        try await OrderWorkerServices.$current.withValue(services) {
            try await worker.run()
        }
    }
}
