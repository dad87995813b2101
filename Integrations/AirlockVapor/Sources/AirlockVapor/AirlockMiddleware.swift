public import Airlock
import Logging
public import Vapor

/// Runs every request inside an airlock scope: the side effects a handler enqueues escape only
/// when the request succeeds.
///
/// ```swift
/// try app.airlock.useRedis(url: "redis://127.0.0.1:6379/0")
/// app.middleware.use(AirlockMiddleware())
/// ```
///
/// What happens to the intents a request enqueued:
/// - the handler returns a response and ``flushRule`` accepts it (default: status below 400) →
///   the scope **flushes**: policies run and the survivors go to the executor, before the response
///   is sent;
/// - the handler returns a response the rule rejects (default: 4xx, 5xx) → **discarded**;
/// - the handler (or a middleware after this one) throws, `Abort` included → **discarded**, and
///   the error is re-thrown for Vapor's `ErrorMiddleware` to turn into a response. A
///   `ScopeBehavior` whose `shouldFlush(_:error:)` returns `true` for that error flushes instead.
///
/// If the flush's dispatch fails (say Redis is down), the middleware throws the `DispatchError`,
/// which `ErrorMiddleware` answers with a 500: the client never sees a success whose side effects
/// were lost. When the handler had thrown too, the `DispatchError` carries its error
/// (`bodyError`), so neither is lost.
///
/// The scope ends through `Scope.end(after:flush:)`, the core's one scope-ending function. Inside
/// handlers it is `req.airlock.scope` (and `Airlock.currentScope`). Nested scopes a handler opens,
/// `req.airlock.transaction` included, are captured by it, so the request's outcome decides for
/// them too.
///
/// Vapor's default middleware (`RouteLoggingMiddleware`, `ErrorMiddleware`) runs before this one,
/// so thrown errors reach it as errors. Enqueue in the handler, not while a streamed response
/// body is written: by then the scope has ended and `enqueue` throws `ScopeStateError`.
public struct AirlockMiddleware: AsyncMiddleware {
    /// Decides from the returned response whether the request's scope flushes.
    public let flushRule: FlushRule
    /// Policy of each request's scope; `nil` takes the one from `Airlock.configuration`.
    public let policy: (any Policy)?
    /// Executor of each request's scope; `nil` takes `app.airlock.executor`, else the one from
    /// `Airlock.configuration`.
    public let executor: (any Executor)?
    /// Behaviour of each request's scope; `nil` takes the one from `Airlock.configuration`.
    public let behavior: (any ScopeBehavior)?
    /// Settings merged over the configured ones for each request's scope.
    public let settings: ScopeSettings

    /// Creates the middleware.
    /// - Parameters:
    ///   - flushRule: when a returned response flushes the scope (default `.status(below: 400)`).
    ///   - policy: the policy of every request's scope.
    ///   - executor: the executor of every request's scope (for example a `RedisExecutor`).
    ///   - behavior: the scope behaviour of every request's scope.
    ///   - settings: scope settings for that behaviour.
    public init(
        flushWhen flushRule: FlushRule = .status(below: 400),
        policy: (any Policy)? = nil,
        executor: (any Executor)? = nil,
        behavior: (any ScopeBehavior)? = nil,
        settings: ScopeSettings = [:]
    ) {
        self.flushRule = flushRule
        self.policy = policy
        self.executor = executor
        self.behavior = behavior
        self.settings = settings
    }

    /// Runs the rest of the chain inside a fresh scope, then flushes or discards it.
    public func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        let scope = try Scope(
            policy: policy, executor: executor ?? request.application.airlock.executor, behavior: behavior, settings: settings)
        request.airlock.scope = scope

        try scope.enter()
        let response: Response
        do {
            response = try await scope.withCurrent { try await next.respond(to: request) }
        } catch {
            try await end(scope, flush: scope.behavior.shouldFlush(scope, error: error), bodyError: error, reason: "error", logger: request.logger)
            throw error
        }
        let flush = flushRule.shouldFlush(response) && scope.behavior.shouldFlush(scope, error: nil)
        try await end(scope, flush: flush, bodyError: nil, reason: "status \(response.status.code)", logger: request.logger)
        return response
    }

    private func end(_ scope: Scope, flush: Bool, bodyError: (any Error)?, reason: String, logger: Logger) async throws {
        switch try await scope.end(after: bodyError, flush: flush) {
        case .flushed(let dispatched) where !dispatched.isEmpty:
            logger.debug("airlock: dispatched the request's intents", metadata: ["intents": "\(dispatched.count)"])
        case .discarded(let dropped) where !dropped.isEmpty:
            logger.debug("airlock: discarded the request's intents", metadata: ["intents": "\(dropped.count)", "reason": "\(reason)"])
        default:
            break
        }
    }
}
