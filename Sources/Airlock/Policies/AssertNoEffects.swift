/// Fails loudly on any enqueue: for code (and tests) that must have no side effects.
public struct AssertNoEffects: Policy {
    /// Creates the policy.
    public init() {}
    /// Refuses every intent with a ``PolicyViolation`` naming it.
    public func onEnqueue(_ intent: Intent) throws {
        throw PolicyViolation("Unexpected side effect: \(intent.name). No side effects are allowed in this scope.")
    }
    /// `AssertNoEffects()`.
    public var description: String { "AssertNoEffects()" }
}

extension Policy where Self == AssertNoEffects {
    /// Fails loudly on any enqueue.
    public static var assertNoEffects: AssertNoEffects { AssertNoEffects() }
}
