public import Airlock

/// `airlockTransaction` was called on a database that is already in a transaction Airlock did
/// not open (a plain `db.transaction { … }`, or a connection Fluent treats as one): that
/// transaction's `COMMIT` is not Airlock's to wait for, so the intents could leave before it.
public struct TransactionAlreadyOpen: UsageError {
    /// Creates the error.
    public init() {}

    /// Says why and what to do instead.
    public var description: String {
        "Cannot start an airlock transaction on a database that is already in a transaction that Airlock did not open: "
            + "its COMMIT is not Airlock's to wait for, so the intents could leave before it. Use `airlockTransaction` "
            + "(or `req.airlock.transaction`) for the outer transaction instead of `transaction`, or call it on `req.db` "
            + "outside the outer transaction."
    }
}

/// An outbox was asked for (`outbox:`, or `Airlock.configure(outbox:)`) on a Fluent database that
/// is not PostgreSQL: the outbox is a PostgreSQL table written on the transaction's connection.
/// Thrown before `BEGIN`, so nothing ran.
public struct OutboxNeedsPostgreSQL: UsageError {
    /// The database's type, as Fluent reports it.
    public let database: String

    /// Creates the error for a database of type `database`.
    public init(database: String) { self.database = database }

    /// Says why and what to do instead.
    public var description: String {
        "The airlock outbox needs a PostgreSQL database (FluentPostgresDriver), not \(database): its rows are written on the "
            + "transaction's PostgreSQL connection. Pass `outbox: .off` for this database, or use a PostgreSQL one."
    }
}
