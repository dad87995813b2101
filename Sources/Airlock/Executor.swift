/// Dispatches the intents a flush let through.
///
/// A flush hands the whole batch over at once, in FIFO order, so an executor whose back end
/// allows it (Redis: one Lua script, one round trip) can dispatch all or nothing. An empty flush never calls
/// the executor.
///
/// On failure, throw ``DispatchError`` saying which intents went out. Any other error is taken
/// to mean that none of the batch was dispatched.
public protocol Executor: Sendable {
    /// Dispatches `intents`, in order.
    func dispatch(_ intents: [Intent]) async throws
}

extension DispatchError {
    /// `error` as a ``DispatchError`` for `batch`: kept as is when the executor already said what
    /// went out, otherwise none of the batch is taken to have been dispatched.
    static func wrapping(_ error: any Error, batch: [Intent]) -> DispatchError {
        if let error = error as? DispatchError { return error }
        return DispatchError(dispatched: [], notDispatched: batch, underlying: error)
    }
}
