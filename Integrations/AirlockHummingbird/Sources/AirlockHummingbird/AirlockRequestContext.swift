public import Airlock
public import Hummingbird

/// A request context that carries the request's airlock scope, so handlers (and middleware added
/// after ``AirlockMiddleware``) can inspect it through `context.airlockScope`.
///
/// Conforming is optional: inside a handler `Airlock.currentScope` is the same scope
/// (unless the handler opened a nested scope of its own). ``AirlockMiddleware`` sets the property
/// before it calls the next responder when the router's context conforms.
///
/// ```swift
/// struct AppRequestContext: AirlockRequestContext {
///     var coreContext: CoreRequestContextStorage
///     var airlockScope: Scope?
///     init(source: Source) { coreContext = .init(source: source) }
/// }
/// let router = Router(context: AppRequestContext.self)
/// router.add(middleware: AirlockMiddleware())
/// router.post("/orders") { request, context in
///     …
///     context.logger.info("buffered: \(context.airlockScope?.intents.count ?? 0)")
/// }
/// ```
public protocol AirlockRequestContext: RequestContext {
    /// The scope the current request runs in; `nil` until ``AirlockMiddleware`` has run.
    var airlockScope: Scope? { get set }
}

/// `BasicRequestContext` plus the request's airlock scope: use it when the application needs no
/// context of its own (`Router(context: BasicAirlockRequestContext.self)`).
public struct BasicAirlockRequestContext: AirlockRequestContext {
    /// Hummingbird's per-request storage (logger, parameters, …).
    public var coreContext: CoreRequestContextStorage
    /// The request's airlock scope, set by ``AirlockMiddleware``.
    public var airlockScope: Scope?

    /// Creates the context for a request; called by Hummingbird.
    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.airlockScope = nil
    }
}
