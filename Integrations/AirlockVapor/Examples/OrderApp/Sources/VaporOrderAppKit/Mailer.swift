public import Logging

/// Sends order confirmations: the example's stand-in for an email service, injected into the
/// worker's task where it is registered (``OrderTasks/registry(app:mailer:)``).
public protocol Mailer: Sendable {
    /// Sends the confirmation of `order`; `attempt` is 0 on the job's first delivery.
    func sendConfirmation(of order: OrderView, attempt: Int) async throws
}

/// The default mailer: one log line per confirmation (a real application sends an email).
public struct LogMailer: Mailer {
    private let logger: Logger

    /// A mailer that logs to `logger`.
    public init(logger: Logger = Logger(label: "orderapp.mailer")) {
        self.logger = logger
    }

    /// Logs the confirmation.
    public func sendConfirmation(of order: OrderView, attempt: Int) async throws {
        logger.notice("✉️  confirmation for order \(order.id): \(order.quantity) × \(order.item) → \(order.email)")
    }
}
