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
        /// `rolledBackByServer` or `commitFailed`.
        public var description: String { code == 1 ? "rolledBackByServer" : "commitFailed" }
    }

    /// Why the transaction did not commit.
    public let reason: Reason
    /// The intents that were dropped.
    public let droppedIntents: [Intent]
    /// The error `COMMIT` failed with, for ``Reason/commitFailed``.
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
        return "COMMIT failed (\(underlying.map { String(describing: $0) } ?? "unknown error")); the transaction's "
            + "\(droppedIntents.count) intent(s) were dropped.\(dropped)"
    }
}
