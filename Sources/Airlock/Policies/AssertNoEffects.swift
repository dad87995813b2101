/// Fails loudly on any enqueue, and lets nothing escape: for code (and tests) that must have no
/// side effects.
///
/// `onEnqueue` refuses every intent made directly in its scope; `allows` answers `false`, so an
/// intent that reaches it another way — captured from an inner scope, or enqueued under a local
/// `Airlock.policy(AssertNoEffects())` whose `onEnqueue` is never called — is dropped, never
/// dispatched.
public struct AssertNoEffects: Policy {
    /// Creates the policy.
    public init() {}
    /// Refuses every intent with a ``PolicyViolation`` naming it.
    public func onEnqueue(_ intent: Intent) throws {
        throw PolicyViolation("Unexpected side effect: \(intent.name). No side effects are allowed in this scope.")
    }
    /// Never allows: nothing escapes a scope that asserts there are no side effects.
    public func allows(_ intent: Intent) throws -> Bool { false }
    /// `AssertNoEffects()`.
    public var description: String { "AssertNoEffects()" }
}

extension Policy where Self == AssertNoEffects {
    /// Fails loudly on any enqueue.
    public static var assertNoEffects: AssertNoEffects { AssertNoEffects() }
}
