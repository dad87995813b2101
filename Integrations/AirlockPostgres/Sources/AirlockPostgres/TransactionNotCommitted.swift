public import Airlock

/// A transaction run by `Airlock.transaction` (or a framework's gated transaction) did not commit
/// although its body succeeded; the intents the body enqueued were dropped.
public struct TransactionNotCommitted: AirlockError {
    /// Why the transaction did not commit.
    public struct Reason: Hashable, Sendable, CustomStringConvertible {
        private let code: Int
        /// `COMMIT` answered `ROLLBACK` (or the transaction was found aborted just before it): a
        /// statement had failed earlier in the transaction and the body caught its error, so
        /// PostgreSQL rolled everything back.
        public static let rolledBackByServer = Reason(code: 1)
        /// `COMMIT` itself failed (a deferred constraint, a serialization failure, a lost
        /// connection). When the connection was lost the transaction may have committed anyway;
        /// the intents are dropped all the same.
        public static let commitFailed = Reason(code: 2)
        /// Writing the intents to the outbox failed before `COMMIT` (an intent that cannot
        /// become a job, a policy that threw, the INSERT refused): the transaction was rolled back,
        /// so the data never commits without its side effects.
        public static let outboxWriteFailed = Reason(code: 3)
        /// `rolledBackByServer`, `commitFailed` or `outboxWriteFailed`.
        public var description: String {
            switch code {
            case 1: "rolledBackByServer"
            case 2: "commitFailed"
            default: "outboxWriteFailed"
            }
        }
    }

    /// Why the transaction did not commit.
    public let reason: Reason
    /// The intents that were dropped.
    public let droppedIntents: [Intent]
    /// The error `COMMIT` failed with (``Reason/commitFailed``), or the outbox write's (``Reason/outboxWriteFailed``).
    public let underlying: (any Error)?

    /// Creates the error; for integrations that run the transaction themselves (a Fluent gate).
    public init(reason: Reason, droppedIntents: [Intent], underlying: (any Error)? = nil) {
        self.reason = reason
        self.droppedIntents = droppedIntents
        self.underlying = underlying
    }

    /// Says what happened to the data and to the intents.
    public var description: String {
        let dropped = droppedIntents.isEmpty ? "" : " Dropped: " + droppedIntents.map(\.description).joined(separator: ", ") + "."
        if reason == .rolledBackByServer {
            return "The transaction was rolled back at COMMIT because a statement inside it had failed (its error was caught); "
                + "its \(droppedIntents.count) intent(s) were dropped.\(dropped) Let the statement's error propagate, "
                + "or use a savepoint if the transaction should go on after it."
        }
        if reason == .outboxWriteFailed {
            return "The transaction was rolled back before COMMIT because its intents could not be written to the outbox "
                + "(\(underlying.map { String(describing: $0) } ?? "unknown error")); its data was not committed and its "
                + "\(droppedIntents.count) intent(s) were dropped.\(dropped)"
        }
        return "COMMIT failed (\(underlying.map { String(describing: $0) } ?? "unknown error")); the transaction's "
            + "\(droppedIntents.count) intent(s) were dropped.\(dropped)"
    }
}
