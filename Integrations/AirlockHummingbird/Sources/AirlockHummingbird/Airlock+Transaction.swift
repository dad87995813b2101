public import Airlock
public import Logging
public import PostgresNIO

/// Where a transaction's intents go once `COMMIT` succeeded.
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

/// A PostgreSQL transaction run by `Airlock.transaction` did not commit although its body
/// succeeded; the intents the body enqueued were dropped.
public struct TransactionNotCommitted: AirlockError {
    /// Why the transaction did not commit.
    public struct Reason: Hashable, Sendable, CustomStringConvertible {
        private let code: Int
        /// `COMMIT` answered `ROLLBACK`: a statement had failed earlier in the transaction (and
        /// the body caught its error), so PostgreSQL rolled everything back.
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
    /// commit. The scope's behaviour is ``DispatchAfterCommit`` over the configured behaviour.
    /// Savepoints are not managed: the connection must not already be in a transaction.
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
    /// - Throws: the body's error; ``TransactionNotCommitted``; `DispatchError` when dispatching
    ///   after a commit failed (the data is committed); PostgreSQL errors from `BEGIN`.
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
        let gate = CommitGate()
        // The enclosing scope's executor is the natural one for intents this scope dispatches itself
        // (`.atCommit` inside a request): the request's middleware may not use the configured one.
        let scope = try Scope(
            policy: policy, executor: executor ?? Airlock.currentScope?.executor,
            behavior: DispatchAfterCommit(gate, base: Airlock.configuration.behavior))

        if dispatch.detachesFromEnclosingScope {
            // Entered while it is itself the current scope, the scope records no parent: its
            // flush dispatches instead of being captured by the enclosing scope.
            try await scope.withCurrent(isolation: isolation) { try scope.enter() }
        } else {
            try scope.enter()
        }
        do {
            try await connection.query("BEGIN;", logger: logger)
        } catch {
            _ = abandon(scope, gate: gate)
            throw error
        }

        let result: R
        do {
            result = try await scope.withCurrent(isolation: isolation) { try await body(connection) }
        } catch {
            let dropped = abandon(scope, gate: gate)
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
            throw TransactionNotCommitted(reason: .commitFailed, droppedIntents: abandon(scope, gate: gate), underlying: error)
        }
        guard command == "COMMIT" else {
            throw TransactionNotCommitted(reason: .rolledBackByServer, droppedIntents: abandon(scope, gate: gate), underlying: nil)
        }

        try await gate.commit()
        if scope.isActive { try scope.exit() }
        if !scope.isFlushed && !scope.isDiscarded {
            try await scope.flush()
        }
        return result
    }

    /// Ends a transaction scope that will not commit: discards what it holds and what its gate
    /// holds. Never throws, so the ROLLBACK after it always runs.
    private static func abandon(_ scope: Scope, gate: CommitGate) -> [Intent] {
        if scope.isActive { try? scope.exit() }
        let held = gate.rollBack()
        guard !scope.isFlushed && !scope.isDiscarded else { return held }
        return ((try? scope.discard()) ?? []) + held
    }
}
