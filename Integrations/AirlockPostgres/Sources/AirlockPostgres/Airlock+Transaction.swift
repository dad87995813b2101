public import Airlock
public import Logging
public import PostgresNIO

extension Airlock {
    private static let transactionLogger = Logger(label: "airlock.postgres")

    /// Runs `body` in a PostgreSQL transaction, on a connection leased from `client`, inside an
    /// airlock scope whose intents are dispatched only after `COMMIT` succeeded and are dropped
    /// when the transaction rolls back.
    ///
    /// ```swift
    /// let orderID = try await Airlock.transaction(on: postgres) { connection in   // BEGIN
    ///     let id = try await insertOrder(item, on: connection)                   // INSERT … RETURNING id
    ///     try Airlock.enqueue(SendOrderConfirmation(orderID: id))                 // held
    ///     return id
    /// }                                                     // COMMIT, then released: a worker finds the row
    /// ```
    ///
    /// - `body` returns → `COMMIT`; once PostgreSQL confirms it, the scope flushes: see
    ///   ``TransactionDispatch`` for where the intents go (by default: to the enclosing scope, so
    ///   inside a request they are dispatched only if the request succeeds too).
    /// - `body` throws → `ROLLBACK`, the intents are dropped, the body's error is re-thrown as is.
    /// - `COMMIT` fails, or answers `ROLLBACK` (a statement failed earlier and `body` caught its
    ///   error) → the intents are dropped and ``TransactionNotCommitted`` is thrown.
    ///
    /// Scopes opened inside `body` are captured by the transaction's scope and wait for the same
    /// commit (see ``TransactionScope``). Savepoints are not managed: the connection must not
    /// already be in a transaction.
    /// - Parameters:
    ///   - client: the pool to lease a connection from (it must be running).
    ///   - dispatch: where the intents go after the commit.
    ///   - policy: the transaction scope's policy (default: the configured one).
    ///   - executor: the executor used when the intents are dispatched by this scope itself (no
    ///     enclosing scope, or ``TransactionDispatch/atCommit``); default: the enclosing scope's,
    ///     else the configured one.
    ///   - logger: where `BEGIN`/`COMMIT`/`ROLLBACK` are logged.
    ///   - isolation: the actor `body` runs on (the caller's, by default).
    ///   - body: the transaction's work; `Airlock.enqueue` inside it buffers into the transaction's scope.
    /// - Returns: what `body` returned (a `Sendable` value: it crosses the connection lease).
    /// - Throws: the body's error; ``TransactionNotCommitted``; ``CommittedButNotDispatched`` when
    ///   dispatching after the commit failed (the data is committed); PostgreSQL errors from `BEGIN`.
    @discardableResult
    public static func transaction<R: Sendable>(
        on client: PostgresClient,
        dispatch: TransactionDispatch = .afterEnclosingScope,
        policy: (any Policy)? = nil,
        executor: (any Executor)? = nil,
        logger: Logger? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> R
    ) async throws -> R {
        try await client.withConnection(isolation: isolation) { connection in
            try await transaction(
                on: connection, dispatch: dispatch, policy: policy, executor: executor, logger: logger,
                isolation: isolation, body)
        }
    }

    /// Runs `body` in a PostgreSQL transaction on `connection`, inside an airlock scope whose
    /// intents are dispatched only after `COMMIT` succeeded: the form of
    /// `transaction(on: PostgresClient, …)` for code that already holds a connection. Same
    /// parameters and outcomes.
    @discardableResult
    public static func transaction<R: Sendable>(
        on connection: PostgresConnection,
        dispatch: TransactionDispatch = .afterEnclosingScope,
        policy: (any Policy)? = nil,
        executor: (any Executor)? = nil,
        logger: Logger? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> R
    ) async throws -> R {
        let logger = logger ?? transactionLogger
        let transaction = try await TransactionScope.enter(dispatch: dispatch, policy: policy, executor: executor)
        do {
            try await connection.query("BEGIN;", logger: logger)
        } catch {
            await transaction.didRollBack(after: error)
            throw error
        }

        let result: R
        do {
            result = try await transaction.run(isolation: isolation) { try await body(connection) }
        } catch {
            let dropped = await transaction.didRollBack(after: error)
            do {
                try await connection.query("ROLLBACK;", logger: logger)
            } catch let rollbackError {
                logger.warning("airlock: ROLLBACK failed after the transaction body threw", metadata: [
                    "error": "\(rollbackError)", "body_error": "\(error)",
                ])
            }
            if !dropped.isEmpty {
                logger.debug("airlock: transaction rolled back; intents dropped", metadata: ["intents": "\(dropped.count)"])
            }
            throw error
        }

        let command: String
        do {
            // The future-based query reports the command tag: "ROLLBACK" when the transaction
            // had already failed, which the async form would hide.
            command = try await connection.query("COMMIT;", logger: logger).get().metadata.command
        } catch {
            throw TransactionNotCommitted(reason: .commitFailed, droppedIntents: await transaction.didRollBack(after: error), underlying: error)
        }
        guard command == "COMMIT" else {
            throw TransactionNotCommitted(reason: .rolledBackByServer, droppedIntents: await transaction.didRollBack())
        }
        try await transaction.didCommit()
        return result
    }
}
