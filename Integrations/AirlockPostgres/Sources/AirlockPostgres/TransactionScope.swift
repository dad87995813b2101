public import Airlock

/// The airlock side of one database transaction, whatever driver or framework runs it: a scope
/// whose intents wait for the transaction's outcome — released after `COMMIT`, dropped after
/// `ROLLBACK`.
///
/// `Airlock.transaction(on:)` (postgres-nio) and the framework gates (Fluent's
/// `airlockTransaction`) are built on it; use it directly to gate a transaction you run yourself:
///
/// ```swift
/// let transaction = try await TransactionScope.enter()
/// try await connection.query("BEGIN;", logger: logger)
/// do {
///     try await transaction.run { try await work(on: connection) }   // Airlock.enqueue buffers here
/// } catch {
///     await transaction.didRollBack(after: error)
///     try await connection.query("ROLLBACK;", logger: logger)
///     throw error
/// }
/// try await connection.query("COMMIT;", logger: logger)                  // confirmed by the server
/// try await transaction.didCommit()        // released: to the enclosing scope, or dispatched now
/// ```
///
/// Exactly one of ``didCommit()`` and ``didRollBack(after:)`` must be called, once the database
/// has answered: it ends the scope (with `Scope.end(after:flush:)`, so an abandoned transaction
/// never leaves an active scope behind).
///
/// The scope's behaviour is ``DispatchAfterCommit`` over the configured behaviour, so scopes
/// opened inside the body are captured by it and wait for the same commit.
public struct TransactionScope: Sendable {
    /// The scope `Airlock.enqueue` buffers into while ``run(isolation:_:)`` runs.
    public let scope: Scope
    /// What the scope's dispatch waits for.
    public let gate: CommitGate
    /// Where the intents go after the commit.
    public let dispatch: TransactionDispatch

    private init(scope: Scope, gate: CommitGate, dispatch: TransactionDispatch) {
        self.scope = scope
        self.gate = gate
        self.dispatch = dispatch
    }

    /// Creates and enters the scope of a transaction that is about to begin.
    ///
    /// With ``TransactionDispatch/afterEnclosingScope`` the current scope (a request's, say)
    /// becomes its parent and captures its intents after the commit; with
    /// ``TransactionDispatch/atCommit`` it has no parent and dispatches them itself.
    /// - Parameters:
    ///   - dispatch: where the intents go after the commit.
    ///   - policy: the scope's policy (default: the configured one).
    ///   - executor: the executor used when the scope dispatches by itself (no enclosing scope,
    ///     or `.atCommit`); default: the enclosing scope's, else the configured one — a request's
    ///     middleware may use another executor than the configured one.
    ///   - isolation: the caller's actor.
    /// - Throws: `ConfigurationError` when the configured behaviour refuses the configured settings.
    public static func enter(
        dispatch: TransactionDispatch = .afterEnclosingScope,
        policy: (any Policy)? = nil,
        executor: (any Executor)? = nil,
        isolation: isolated (any Actor)? = #isolation
    ) async throws -> TransactionScope {
        let gate = CommitGate()
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
        return TransactionScope(scope: scope, gate: gate, dispatch: dispatch)
    }

    /// Runs `body` — the transaction's work — with the transaction's scope as the current scope.
    @discardableResult
    public func run<R>(isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> R) async rethrows -> R {
        try await scope.withCurrent(isolation: isolation, body)
    }

    /// Records that the database confirmed `COMMIT` and releases the intents: the enclosing
    /// scope captures them (``TransactionDispatch/afterEnclosingScope``), or the executor gets
    /// them now (no enclosing scope, or ``TransactionDispatch/atCommit``).
    /// - Returns: the intents dispatched here; empty when the enclosing scope took them.
    /// - Throws: ``CommittedButNotDispatched`` when dispatching (or handing them to the enclosing
    ///   scope) failed: the data is committed, the side effects are not.
    @discardableResult
    public func didCommit() async throws -> [Intent] {
        var dispatched: [Intent] = []
        var notDispatched: [Intent] = []
        var failure: (any Error)?
        // Batches flushed into the gate while the transaction was open (a scope ended by hand
        // inside the body) go first, in the order they arrived.
        do {
            dispatched += try await gate.commit()
        } catch {
            let error = error as? DispatchError
            dispatched += error?.dispatched ?? []
            notDispatched += error?.notDispatched ?? []
            failure = error
        }
        // Then the scope itself; it is ended even when the gate's batches failed.
        do {
            if case .flushed(let sent) = try await scope.end(after: nil, flush: true) { dispatched += sent }
        } catch let error as DispatchError {
            dispatched += error.dispatched
            notDispatched += error.notDispatched
            failure = failure ?? error
        } catch {
            // A policy hook threw, or the enclosing scope had already ended: nothing left.
            notDispatched += scope.intents
            failure = failure ?? error
        }
        if let failure {
            throw CommittedButNotDispatched(dispatched: dispatched, notDispatched: notDispatched, underlying: failure)
        }
        return dispatched
    }

    /// Records that the transaction rolled back (or will not commit) and drops its intents.
    /// Never throws, so the caller's `ROLLBACK` always runs after it.
    /// - Parameter error: what made the transaction fail, if anything did.
    /// - Returns: the intents dropped, in the order they were enqueued.
    @discardableResult
    public func didRollBack(after error: (any Error)? = nil) async -> [Intent] {
        let held = gate.rollBack()
        guard case .discarded(let dropped)? = try? await scope.end(after: error, flush: false) else { return held }
        return held + dropped
    }
}
