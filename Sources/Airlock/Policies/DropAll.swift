/// Buffers every intent and lets none escape: dry runs, migrations, previews of what would happen.
public struct DropAll: Policy {
    /// Creates the policy.
    public init() {}
    /// Never allows.
    public func allows(_ intent: Intent) throws -> Bool { false }
    /// `DropAll()`.
    public var description: String { "DropAll()" }
}

extension Policy where Self == DropAll {
    /// Buffers every intent and lets none escape.
    public static var dropAll: DropAll { DropAll() }
}
