public import Airlock
public import Vapor

extension Request {
    /// The request's airlock scope and its intents: `req.airlock.scope`, `req.airlock.intents`.
    public var airlock: RequestAirlock { RequestAirlock(request: self) }
}

/// What `req.airlock` gives a handler: the scope ``AirlockMiddleware`` opened for the request.
///
/// ```swift
/// app.post("checkout") { req async throws -> HTTPStatus in
///     try Airlock.enqueue(SendReceipt(cart: 7))
///     req.logger.info("buffered \(req.airlock.intents.count) side effect(s)")
///     return .accepted
/// }
/// ```
///
/// Framework gates add to it (`req.airlock.transaction { db in … }` in AirlockFluent).
public struct RequestAirlock: Sendable {
    /// The request this is about.
    public let request: Request

    private struct ScopeKey: StorageKey {
        typealias Value = Scope
    }

    /// The request's scope; `nil` when ``AirlockMiddleware`` does not cover the route.
    ///
    /// Inside the handler `Airlock.currentScope` is the same scope, unless the handler opened a
    /// nested one. Set by the middleware before it calls the next responder.
    public internal(set) var scope: Scope? {
        get { request.storage[ScopeKey.self] }
        nonmutating set { request.storage[ScopeKey.self] = newValue }
    }

    /// What the request's scope holds so far (own and captured intents, in arrival order); after
    /// the scope flushed, what it flushed; empty when it was discarded or there is no scope.
    public var intents: [Intent] { scope?.intents ?? [] }
}
