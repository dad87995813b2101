/// Where a transaction's intents go once `COMMIT` succeeded.
///
/// A struct over a private mode rather than an enum, so more destinations (an outbox table
/// written in the same transaction, say) can be added without breaking a `switch` in user code.
public struct TransactionDispatch: Sendable, Hashable, CustomStringConvertible {
    private enum Mode: Hashable { case afterEnclosingScope, atCommit }
    private let mode: Mode

    /// The default. After the commit the intents are captured by the enclosing scope (the
    /// request's, a worker job's, an outer transaction's) and dispatched when *it* flushes: they
    /// escape only if the transaction committed **and** the enclosing work succeeded. With no
    /// enclosing scope they are dispatched right after the commit.
    public static let afterEnclosingScope = TransactionDispatch(mode: .afterEnclosingScope)

    /// Dispatched right after the commit, whatever the enclosing scope does later (a request that
    /// then fails with a 5xx still sends them). For side effects that belong to the committed data
    /// alone.
    public static let atCommit = TransactionDispatch(mode: .atCommit)

    /// `afterEnclosingScope` or `atCommit`.
    public var description: String { mode == .atCommit ? "atCommit" : "afterEnclosingScope" }

    var detachesFromEnclosingScope: Bool { mode == .atCommit }
}
