public import Airlock

/// Why the dashboard cannot start or cannot serve as configured. The description is one line
/// meant for an operator.
public struct DashboardError: AirlockError, Equatable {
    /// The category of a ``DashboardError``.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Code: String, Sendable, Hashable { case unsafeBinding, weakToken, invalidAddress, invalidTraceURL }
        fileprivate let code: Code
        /// Bound to a non-loopback address without a token.
        public static let unsafeBinding = Kind(code: .unsafeBinding)
        /// A token too short to resist guessing.
        public static let weakToken = Kind(code: .weakToken)
        /// A `--listen` address that is not `host:port`.
        public static let invalidAddress = Kind(code: .invalidAddress)
        /// A `--trace-url` that is not an http(s) URL with `{trace_id}` in it.
        public static let invalidTraceURL = Kind(code: .invalidTraceURL)
        /// The kind's name.
        public var description: String { code.rawValue }
    }

    /// What kind of problem this is.
    public let kind: Kind
    /// The explanation, one line.
    public let description: String

    /// Creates an error of `kind`.
    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }

    static let weakToken = DashboardError(.weakToken, "the dashboard token must be at least 16 characters (e.g. `openssl rand -hex 16`)")
}
