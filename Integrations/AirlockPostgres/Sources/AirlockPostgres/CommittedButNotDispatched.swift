public import Airlock

/// A transaction committed — its data is saved — but dispatching its intents afterwards failed:
/// the side effects of committed data did not go out.
///
/// Thrown only where the transaction's scope dispatches by itself (no enclosing scope, or
/// ``TransactionDispatch/atCommit``). Inside a request the committed intents are captured by the
/// request's scope, and a failure there is the request's `DispatchError`.
public struct CommittedButNotDispatched: AirlockError {
    /// The intents that went out before the failure.
    public let dispatched: [Intent]
    /// The intents that did not go out although their transaction committed.
    public let notDispatched: [Intent]
    /// Why dispatch failed (usually a `DispatchError` from the executor).
    public let underlying: any Error

    /// Creates the error.
    public init(dispatched: [Intent], notDispatched: [Intent], underlying: any Error) {
        self.dispatched = dispatched
        self.notDispatched = notDispatched
        self.underlying = underlying
    }

    /// Says that the data is committed, which side effects are missing, and what to do.
    public var description: String {
        var text = "The transaction committed (its data is saved) but \(notDispatched.count) of its "
            + "\(dispatched.count + notDispatched.count) intent(s) were not dispatched: \(underlying)."
        if !notDispatched.isEmpty {
            text += " Not dispatched: " + notDispatched.map(\.description).joined(separator: ", ") + "."
        }
        text += " Do not retry the transaction (that would write the data twice): enqueue the missing intents again once "
            + "the executor is reachable, or keep side effects that must never be lost in an outbox table written in the same transaction."
        return text
    }
}
