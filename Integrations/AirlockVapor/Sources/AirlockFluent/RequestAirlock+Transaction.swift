public import Airlock
public import AirlockPostgres
public import AirlockVapor
public import FluentKit
import Fluent
import Vapor

extension RequestAirlock {
    /// Runs `body` in a transaction on the request's database (`req.db`, or `req.db(id)`) whose
    /// intents are dispatched only after `COMMIT` — and, by default, only if the request then
    /// succeeds too: after the commit they are captured by the request's scope, which flushes
    /// when the response status is below 400.
    ///
    /// ```swift
    /// app.post("orders") { req async throws -> Response in
    ///     let order = try await req.airlock.transaction { db in
    ///         let order = Order(item: "widget", quantity: 2, email: "ada@example.com")
    ///         try await order.create(on: db)
    ///         try Airlock.enqueue(name: "orders.send_confirmation", kwargs: ["orderID": .int(order.id!)])
    ///         return order
    ///     }
    ///     return try await order.encodeResponse(status: .created, for: req)
    /// }
    /// ```
    ///
    /// | transaction | request | row | job |
    /// |---|---|---|---|
    /// | committed | < 400 | committed | dispatched when the request's scope flushes |
    /// | committed | ≥ 400 or throws | committed | dropped (or sent anyway with `dispatch: .atCommit`) |
    /// | rolled back | any | none | dropped |
    ///
    /// With an outbox (`outbox:`, `app.airlock.use(outbox:)` or `Airlock.configure(outbox:)`) the job is a row committed with
    /// the order: it is sent at `COMMIT` whatever the response (the first two rows above become
    /// "queued at `COMMIT`"), and a Redis outage or a crash after `COMMIT` leaves it in the table
    /// for an `OutboxRelay` instead of losing it.
    ///
    /// The same as `req.db(id).airlockTransaction(dispatch:outbox:policy:executor:_:)`; see it for
    /// the outcomes and errors.
    /// - Parameters:
    ///   - id: the database (default: the application's default one).
    ///   - dispatch: where the intents go after the commit (with an outbox: at the commit, always).
    ///   - outbox: whether the intents are written through an outbox (default: the application's,
    ///     `app.airlock.use(outbox:)`, else `Airlock.configure(outbox:)`'s, if any).
    ///   - policy: the transaction scope's policy.
    ///   - executor: the executor used when the transaction's scope dispatches by itself (no
    ///     enclosing scope, or `.atCommit`); default: the enclosing scope's (the request's), else
    ///     `app.airlock.executor`, else the configured one.
    ///   - body: the transaction's work, on the transaction's database.
    @discardableResult
    public func transaction<R: Sendable>(
        on id: DatabaseID? = nil,
        dispatch: TransactionDispatch = .afterEnclosingScope,
        outbox: TransactionOutbox = .configured,
        policy: (any Policy)? = nil,
        executor: (any Executor)? = nil,
        _ body: @escaping @Sendable (any Database) async throws -> R
    ) async throws -> R {
        // On a route the middleware does not cover there is no enclosing scope: the application's
        // executor is still the one this application chose, not the process-wide default.
        let executor = executor ?? Airlock.currentScope?.executor ?? request.application.airlock.executor
        // The application's outbox comes before the process-wide one, as its executor does.
        let outbox = outbox.resolved(preferring: request.application.airlock.outbox).map(TransactionOutbox.using) ?? .off
        return try await request.db(id).airlockTransaction(dispatch: dispatch, outbox: outbox, policy: policy, executor: executor, body)
    }
}
