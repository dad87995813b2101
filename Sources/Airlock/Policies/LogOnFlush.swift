public import Logging

/// Logs every intent that reaches the flush-time check, at info level, and allows it.
public struct LogOnFlush: Policy {
    /// Where the lines go.
    public let logger: Logger

    /// Creates the policy; the default logger's label is `airlock.flush`.
    public init(logger: Logger = Logger(label: "airlock.flush")) {
        self.logger = logger
    }

    /// Logs the intent and allows it.
    public func allows(_ intent: Intent) throws -> Bool {
        logger.info(
            "airlock flush: \(SafeText.escape(intent.description))",
            metadata: ["task": "\(SafeText.escape(intent.taskName))", "intent": "\(intent.id)"]
        )
        return true
    }

    /// `LogOnFlush(label)`.
    public var description: String { "LogOnFlush(\(logger.label))" }
}

extension Policy where Self == LogOnFlush {
    /// Logs every intent at flush and allows it.
    public static func logOnFlush(_ logger: Logger = Logger(label: "airlock.flush")) -> LogOnFlush {
        LogOnFlush(logger: logger)
    }
}
