public import Vapor

/// Decides, from the response a handler returned, whether the request's scope flushes.
///
/// A request whose handler *throws* never reaches the rule: its scope is discarded (unless the
/// scope's `ScopeBehavior` says to flush on that error). The rule only judges responses the
/// handler returned normally — including the error responses of an `ErrorMiddleware` that sits
/// *after* ``AirlockMiddleware`` in the chain.
///
/// ```swift
/// AirlockMiddleware()                                        // .status(below: 400), the default
/// AirlockMiddleware(flushWhen: .status(below: 300))          // redirects discard too
/// AirlockMiddleware(flushWhen: FlushRule { response in       // any decision on the response
///     response.status.code < 400 && response.headers.first(name: "X-Dry-Run") == nil
/// })
/// ```
public struct FlushRule: Sendable {
    private let decide: @Sendable (Response) -> Bool

    /// A rule that flushes exactly when `decide` returns `true` for the handler's response.
    public init(_ decide: @escaping @Sendable (Response) -> Bool) {
        self.decide = decide
    }

    /// Flush when the response status code is below `limit` (`.status(below: 400)`: 1xx, 2xx and
    /// 3xx flush; 4xx and 5xx discard). This is the Django middleware's rule and the default.
    public static func status(below limit: UInt) -> FlushRule {
        FlushRule { $0.status.code < limit }
    }

    /// Whether a request that returned `response` flushes its scope.
    public func shouldFlush(_ response: Response) -> Bool {
        decide(response)
    }
}
