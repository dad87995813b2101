// Tasks shared by the demo producer and the embedded worker example.
public import Airlock

/// Processes an order, then asks for its follow-ups: they are dispatched only if this task succeeds.
public struct ProcessOrder: AirlockTask {
    public static let name = "orders.process"
    public let orderID: Int
    public init(orderID: Int) { self.orderID = orderID }
    public func run(_ context: TaskContext) async throws {
        context.logger.info("processing order \(orderID)")
        try Airlock.enqueue(SendConfirmationEmail(orderID: orderID))
        try Airlock.enqueue(NotifyWarehouse(orderID: orderID), options: .init(queue: "warehouse"))
    }
}

/// Sends the confirmation email (here: logs it).
public struct SendConfirmationEmail: AirlockTask {
    public static let name = "orders.send_confirmation_email"
    public let orderID: Int
    public init(orderID: Int) { self.orderID = orderID }
    public func run(_ context: TaskContext) async throws {
        context.logger.info("✉️  confirmation email for order \(orderID)")
    }
}

/// Tells the warehouse (here: logs it).
public struct NotifyWarehouse: AirlockTask {
    public static let name = "orders.notify_warehouse"
    public static let defaultOptions = DispatchOptions(queue: "warehouse")
    public let orderID: Int
    public init(orderID: Int) { self.orderID = orderID }
    public func run(_ context: TaskContext) async throws {
        context.logger.info("📦 warehouse notified for order \(orderID)")
    }
}

/// Fails on its first attempt and succeeds on the retry: shows retries with backoff.
public struct FlakyCharge: AirlockTask {
    public static let name = "payments.flaky_charge"
    public let orderID: Int
    public init(orderID: Int) { self.orderID = orderID }
    public func run(_ context: TaskContext) async throws {
        if context.attempt == 0 { throw ChargeDeclined(orderID: orderID) }
        context.logger.info("💳 charged order \(orderID) on attempt \(context.attempt + 1)")
    }
}

/// The error ``FlakyCharge`` throws the first time.
public struct ChargeDeclined: Error, CustomStringConvertible {
    public let orderID: Int
    public var description: String { "card declined for order \(orderID) (temporary)" }
}
