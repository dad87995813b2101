public import Airlock
public import Logging
public import PostgresNIO
import Synchronization

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
///
/// **With an outbox** (`enter(outbox:)`) call ``willCommit(on:logger:)`` after the body and before
/// `COMMIT`: the scope flushes there (policies run) and what escapes is written to the outbox on
/// the transaction's connection; ``didCommit()`` then sends it to Redis (the fast path) and never
/// fails for Redis — rows it could not send wait for the relay.
public struct TransactionScope: Sendable {
    /// The scope `Airlock.enqueue` buffers into while ``run(isolation:_:)`` runs.
    public let scope: Scope
    /// What the scope's dispatch waits for.
    public let gate: CommitGate
    /// Where the intents go after the commit.
    public let dispatch: TransactionDispatch
    /// The outbox the intents are written through, if any.
    public let outbox: Outbox?
    private let capture: OutboxCapture?

    private init(scope: Scope, gate: CommitGate, dispatch: TransactionDispatch, outbox: Outbox?, capture: OutboxCapture?) {
        self.scope = scope
        self.gate = gate
        self.dispatch = dispatch
        self.outbox = outbox
        self.capture = capture
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
    ///     middleware may use another executor than the configured one. Unused with an outbox
    ///     (the outbox's executor sends).
    ///   - outbox: write the intents through this outbox (see ``willCommit(on:logger:)``); the
    ///     scope then has no parent, as with `.atCommit`, whatever `dispatch` says.
    ///   - isolation: the caller's actor.
    /// - Throws: `ConfigurationError` when the configured behaviour refuses the configured settings.
    public static func enter(
        dispatch: TransactionDispatch = .afterEnclosingScope,
        policy: (any Policy)? = nil,
        executor: (any Executor)? = nil,
        outbox: Outbox? = nil,
        isolation: isolated (any Actor)? = #isolation
    ) async throws -> TransactionScope {
        let gate = CommitGate()
        let base = Airlock.configuration.behavior
        let capture = outbox.map { _ in OutboxCapture(base: base) }
        let scope = try Scope(
            policy: policy, executor: outbox.map { $0.executor as any Executor } ?? executor ?? Airlock.currentScope?.executor,
            behavior: capture.map { $0 as any ScopeBehavior } ?? DispatchAfterCommit(gate, base: base))
        if dispatch.detachesFromEnclosingScope || outbox != nil {
            // Entered while it is itself the current scope, the scope records no parent: its
            // flush dispatches instead of being captured by the enclosing scope.
            try await scope.withCurrent(isolation: isolation) { try scope.enter() }
        } else {
            try scope.enter()
        }
        return TransactionScope(scope: scope, gate: gate, dispatch: dispatch, outbox: outbox, capture: capture)
    }

    /// Runs `body` — the transaction's work — with the transaction's scope as the current scope.
    @discardableResult
    public func run<R>(isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> R) async rethrows -> R {
        try await scope.withCurrent(isolation: isolation, body)
    }

    /// With an outbox: ends the scope (its policies judge every intent) and writes what escapes
    /// to the outbox on `connection`, in the transaction, so `COMMIT` makes the rows durable with
    /// the data. Call it once the body returned, right before `COMMIT`. Without an outbox it does nothing.
    /// - Returns: the rows written (`nil` without an outbox).
    /// - Throws: the policy's error or ``OutboxError``: roll the transaction back (and call
    ///   ``didRollBack(after:)``), so the data never commits without its side effects.
    @discardableResult
    public func willCommit(on connection: PostgresConnection, logger: Logger? = nil) async throws -> OutboxBatch? {
        guard let outbox, let capture else { return nil }
        try await scope.end(after: nil, flush: true)
        let batch = try await outbox.write(capture.intents, on: connection, logger: logger)
        capture.written(batch)
        return batch
    }

    /// Records that the database confirmed `COMMIT` and releases the intents: the enclosing
    /// scope captures them (``TransactionDispatch/afterEnclosingScope``), or the executor gets
    /// them now (no enclosing scope, or ``TransactionDispatch/atCommit``).
    ///
    /// With an outbox the committed rows are sent to Redis now (deduplicated by job id) and
    /// deleted in the background; if Redis does not take them this does **not** throw — unlike
    /// ``CommittedButNotDispatched`` without an outbox, nothing is lost: the rows wait for the relay.
    /// - Returns: the intents dispatched here; empty when the enclosing scope took them. With an
    ///   outbox, every committed intent (sent now, or later by the relay).
    /// - Throws: ``CommittedButNotDispatched`` when dispatching (or handing them to the enclosing
    ///   scope) failed: the data is committed, the side effects are not. Never with an outbox.
    @discardableResult
    public func didCommit() async throws -> [Intent] {
        if let outbox, let capture {
            _ = try? await gate.commit()   // holds nothing: the capture took every flush
            guard let batch = capture.batch else {
                // willCommit was never called, so nothing reached the table: send what the scope holds
                // straight away, the way `.atCommit` would, rather than drop it.
                _ = try? await scope.end(after: nil, flush: true)
                let intents = capture.intents
                outbox.logger.error("airlock: outbox transaction committed without willCommit(on:); its intents were not written to the outbox",
                                    metadata: ["intents": "\(intents.count)"])
                do {
                    try await outbox.executor.dispatch(intents)
                } catch {
                    throw CommittedButNotDispatched(dispatched: [], notDispatched: intents, underlying: error)
                }
                return intents
            }
            await outbox.deliver(batch)
            return batch.intents
        }
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
        let ending = try? await scope.end(after: error, flush: false)
        if let capture {
            // Flushed by willCommit (then COMMIT failed), or discarded now: either way nothing leaves.
            if case .discarded(let dropped)? = ending { return dropped }
            return capture.intents
        }
        guard case .discarded(let dropped)? = ending else { return held }
        return held + dropped
    }
}

/// The scope behaviour of an outbox transaction: like ``DispatchAfterCommit`` it captures every
/// descendant's flush, but its own flush (at `willCommit`, before `COMMIT`) keeps the intents for
/// the outbox instead of dispatching them.
final class OutboxCapture: ScopeBehavior, Sendable {
    private struct State {
        var intents: [Intent] = []
        var batch: OutboxBatch?
    }
    private let base: any ScopeBehavior
    private let state = Mutex(State())

    init(base: any ScopeBehavior) { self.base = base }

    var intents: [Intent] { state.withLock { $0.intents } }
    var batch: OutboxBatch? { state.withLock { $0.batch } }
    func written(_ batch: OutboxBatch) { state.withLock { $0.batch = batch } }

    var supportedSettings: Set<String> { base.supportedSettings }
    func shouldFlush(_ scope: Scope, error: (any Error)?) -> Bool { base.shouldFlush(scope, error: error) }
    func beforeDescendantFlushes(_ scope: Scope, exiting: Scope, intents: [Intent]) -> [Intent] { [] }
    func dispatch(_ intents: [Intent], from scope: Scope, to executor: any Executor) async throws {
        state.withLock { $0.intents.append(contentsOf: intents) }
    }
}
