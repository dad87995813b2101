public import Airlock
public import Hummingbird
import Logging

/// Runs every request inside an airlock scope: the side effects a handler enqueues escape only
/// when the request succeeds.
///
/// ```swift
/// try Airlock.configure(executor: RedisExecutor(url: redisURL))
/// router.add(middleware: AirlockMiddleware())
/// ```
///
/// What happens to the intents a request enqueued:
/// - the handler returns a response and ``flushRule`` accepts it (default: status below 400) →
///   the scope **flushes**: policies run and the survivors go to the executor, before the response
///   is sent;
/// - the handler returns a response the rule rejects (default: 4xx, 5xx) → **discarded**;
/// - the handler (or a middleware after this one) throws, including `HTTPError` → **discarded**,
///   and the error is re-thrown for Hummingbird to turn into a response. A `ScopeBehavior`
///   whose `shouldFlush(_:error:)` returns `true` for that error flushes instead.
///
/// If the flush's dispatch fails (say Redis is down), the middleware throws the `DispatchError`,
/// which Hummingbird answers with a 500: the client never sees a success whose side effects were
/// lost.
///
/// Inside handlers the scope is `Airlock.currentScope`; with a context conforming to
/// ``AirlockRequestContext`` it is also `context.airlockScope`. Nested scopes a handler opens
/// (including `Airlock.transaction(on:)`)
/// are captured by the request scope, so the request's outcome decides for them too.
///
/// Hummingbird applies a middleware only to the routes added after it: add this one first.
/// Intents enqueued while a streamed response body is being written arrive after the scope has
/// ended and fail with `ScopeStateError`; enqueue in the handler, before returning the response.
public struct AirlockMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Decides from the returned response whether the request's scope flushes.
    public let flushRule: FlushRule
    /// Policy of each request's scope; `nil` takes the one from `Airlock.configuration`.
    public let policy: (any Policy)?
    /// Executor of each request's scope; `nil` takes the one from `Airlock.configuration`.
    public let executor: (any Executor)?
    /// Behaviour of each request's scope; `nil` takes the one from `Airlock.configuration`.
    public let behavior: (any ScopeBehavior)?
    /// Settings of each request's scope, merged over the configured ones.
    public let settings: ScopeSettings

    /// Creates the middleware. Omitted scope arguments are read from `Airlock.configuration` for
    /// each request, so `Airlock.configure(…)` may run after the router is built.
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
    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let scope = try Scope(policy: policy, executor: executor, behavior: behavior, settings: settings)
        var context = context
        if var airlockContext = context as? any AirlockRequestContext {
            airlockContext.airlockScope = scope
            if let updated = airlockContext as? Context { context = updated }
        }
        let logger = context.logger

        try scope.enter()
        let response: Response
        do {
            response = try await scope.withCurrent { try await next(request, context) }
        } catch {
            try await end(scope, flush: scope.behavior.shouldFlush(scope, error: error), bodyError: error, reason: "error", logger: logger)
            throw error
        }
        let flush = flushRule.shouldFlush(response) && scope.behavior.shouldFlush(scope, error: nil)
        try await end(scope, flush: flush, bodyError: nil, reason: "status \(response.status.code)", logger: logger)
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
