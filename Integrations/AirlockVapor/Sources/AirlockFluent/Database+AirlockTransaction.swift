public import Airlock
public import AirlockPostgres
public import FluentKit
import FluentSQL
import NIOCore
import PostgresNIO
import Synchronization

extension Database {
    /// Runs `body` in a transaction on this database — Fluent's own `transaction` — inside an
    /// airlock scope whose intents are dispatched only after `COMMIT` succeeded and are dropped
    /// when the transaction rolls back.
    ///
    /// ```swift
    /// let order = try await req.db.airlockTransaction { db in     // BEGIN
    ///     let order = Order(item: "widget", quantity: 2)
    ///     try await order.create(on: db)                          // INSERT
    ///     try Airlock.enqueue(name: "orders.send_confirmation", kwargs: ["orderID": .int(order.id!)])   // held
    ///     return order
    /// }                                                           // COMMIT, then released
    /// ```
    ///
    /// - `body` returns → Fluent sends `COMMIT`; once it succeeded the scope flushes: see
    ///   `TransactionDispatch` for where the intents go (by default: to the enclosing scope, so
    ///   inside a request they are dispatched only if the request succeeds too).
    /// - `body` throws → Fluent sends `ROLLBACK`; the intents are dropped; the body's error is
    ///   re-thrown as is.
    /// - `COMMIT` fails → the intents are dropped and `TransactionNotCommitted`
    ///   (`.commitFailed`) is thrown.
    /// - On PostgreSQL, a statement failed inside the transaction and `body` caught its error →
    ///   the transaction can only roll back (Fluent would report success: its `COMMIT` ignores the
    ///   server's `ROLLBACK` answer). One `SELECT 1` after the body finds that out; the intents are
    ///   dropped and `TransactionNotCommitted` (`.rolledBackByServer`) is thrown.
    ///
    /// **With an outbox** (`outbox:`, or one set with `Airlock.configure(outbox:)`) the intents are
    /// written to the `airlock_outbox` table after the body, on the transaction's connection, just
    /// before Fluent's `COMMIT` — the same statement and table as `Airlock.transaction(on:)` — and
    /// sent to Redis right after it; a committed intent Redis did not take waits in the table for an
    /// `OutboxRelay`, so no `CommittedButNotDispatched` is thrown. The intents then leave at `COMMIT`
    /// (as with `.atCommit`): rows committed with the data cannot be called back by a request that
    /// fails afterwards. Needs a PostgreSQL database (FluentPostgresDriver). See `docs/OUTBOX.md`.
    ///
    /// Called on a database that is already in a transaction: if that transaction is itself an
    /// airlock transaction (this is nested in its body), `body` joins it — its intents wait for
    /// the outer `COMMIT`, and `dispatch`, `outbox` and `executor` are the outer transaction's. Otherwise
    /// the outer transaction's `COMMIT` is not ours to wait for, and ``TransactionAlreadyOpen`` is
    /// thrown before `body` runs.
    /// - Parameters:
    ///   - dispatch: where the intents go after the commit (with an outbox: at the commit, always).
    ///   - outbox: whether the intents are written through an outbox (default: the configured one, if any).
    ///   - policy: the transaction scope's policy (default: the configured one).
    ///   - executor: the executor used when the transaction's scope dispatches by itself (no
    ///     enclosing scope, or `.atCommit`); default: the enclosing scope's, else the configured one.
    ///     Unused with an outbox (the outbox's executor sends).
    ///   - body: the transaction's work, on the transaction's database; `Airlock.enqueue` inside it
    ///     buffers into the transaction's scope.
    /// - Returns: what `body` returned.
    /// - Throws: the body's error; `TransactionNotCommitted` (`.outboxWriteFailed` when the outbox
    ///   write failed: nothing committed); `CommittedButNotDispatched` when dispatching after the
    ///   commit failed (the data is committed; never with an outbox); ``TransactionAlreadyOpen``;
    ///   ``OutboxNeedsPostgreSQL`` before `BEGIN` when an outbox is asked for on another database;
    ///   errors from `BEGIN`.
    @discardableResult
    public func airlockTransaction<R: Sendable>(
        dispatch: TransactionDispatch = .afterEnclosingScope,
        outbox: TransactionOutbox = .configured,
        policy: (any Policy)? = nil,
        executor: (any Executor)? = nil,
        _ body: @escaping @Sendable (any Database) async throws -> R
    ) async throws -> R {
        if inTransaction {
            guard openTransactionScope() != nil else { throw TransactionAlreadyOpen() }
            // The outer airlock transaction's scope captures this one and waits for its COMMIT.
            return try await Airlock.scope(policy: policy) { try await body(self) }
        }

        let outbox = outbox.resolved
        // Checked before BEGIN: the rows need PostgreSQL's connection, and finding out after the
        // body would roll back work that was never going to commit.
        if outbox != nil, !(self is any PostgresDatabase) { throw OutboxNeedsPostgreSQL(database: String(describing: type(of: self))) }
        let transaction = try await TransactionScope.enter(dispatch: dispatch, policy: policy, executor: executor, outbox: outbox)
        let bodyFinished = Flag()
        let result: R
        do {
            // Fluent runs the closure in a task of its own; task-local values (the current scope)
            // are inherited, and `run` binds the transaction's scope explicitly anyway.
            result = try await self.transaction { database in
                let result = try await transaction.run { try await body(database) }
                bodyFinished.set()
                try await requireCommittable(database)
                if transaction.outbox != nil {
                    // Thrown inside Fluent's closure, so Fluent sends ROLLBACK instead of COMMIT.
                    do {
                        _ = try await onPostgresConnection(of: database) { connection in
                            try await transaction.willCommit(on: connection, logger: database.logger)
                        }
                    } catch {
                        throw OutboxWriteFailed(underlying: error)
                    }
                }
                return result
            }
        } catch let aborted as AbortedTransaction {
            throw TransactionNotCommitted(reason: .rolledBackByServer, droppedIntents: await transaction.didRollBack(after: aborted.underlying))
        } catch let failed as OutboxWriteFailed {
            throw TransactionNotCommitted(
                reason: .outboxWriteFailed, droppedIntents: await transaction.didRollBack(after: failed.underlying), underlying: failed.underlying)
        } catch {
            let dropped = await transaction.didRollBack(after: error)
            // After the body returned, only the committable check or COMMIT can have thrown.
            guard bodyFinished.isSet else { throw error }
            throw TransactionNotCommitted(reason: .commitFailed, droppedIntents: dropped, underlying: error)
        }
        try await transaction.didCommit()
        return result
    }
}

/// The nearest enclosing scope that belongs to an airlock transaction still waiting for its commit.
private func openTransactionScope() -> Scope? {
    var scope = Airlock.currentScope
    while let current = scope {
        if let gated = current.behavior as? DispatchAfterCommit, gated.gate.outcome == .pending { return current }
        scope = current.parent
    }
    return nil
}

/// Throws ``AbortedTransaction`` when `database` is a PostgreSQL transaction that a failed
/// statement has aborted: its `COMMIT` would answer `ROLLBACK`, which Fluent does not check.
private func requireCommittable(_ database: any Database) async throws {
    guard let sql = database as? any SQLDatabase, sql.dialect.name == "postgresql" else { return }
    do {
        try await sql.raw("SELECT 1").run()
    } catch let error as PSQLError where error.serverInfo?[.sqlState] == "25P02" {
        // in_failed_sql_transaction: "current transaction is aborted, commands ignored until end of transaction block".
        throw AbortedTransaction(underlying: error)
    }
}

/// Runs `body` on the PostgreSQL connection behind `database` — inside a Fluent transaction, the
/// transaction's own connection — for statements Fluent has no API for (the outbox's prepared INSERT).
private func onPostgresConnection<R: Sendable>(
    of database: any Database, _ body: @escaping @Sendable (PostgresConnection) async throws -> R
) async throws -> R {
    guard let postgres = database as? any PostgresDatabase else {
        throw OutboxNeedsPostgreSQL(database: String(describing: type(of: database)))
    }
    return try await postgres.withConnection { connection in
        let promise = connection.eventLoop.makePromise(of: R.self)
        promise.completeWithTask { try await body(connection) }
        return promise.futureResult
    }.get()
}

/// The outbox write before `COMMIT` failed; thrown through Fluent's `transaction` so it rolls back.
private struct OutboxWriteFailed: Error {
    let underlying: any Error
}

/// The body left the transaction aborted; thrown through Fluent's `transaction` so it rolls back.
private struct AbortedTransaction: Error {
    let underlying: any Error
}

/// Whether the transaction's body returned; set inside Fluent's closure, read after it.
private final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}
