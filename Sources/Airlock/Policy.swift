/// A per-intent gate: observes or refuses intents at enqueue, and decides at flush which escape.
///
/// Policies filter; they never reorder and never create intents (an `enqueue` from inside a hook
/// throws ``PolicyEnqueueError``). Combine several by writing a policy that asks each in turn.
public protocol Policy: Sendable, CustomStringConvertible {
    /// Called when an intent is enqueued in a scope with this policy; throw (usually
    /// ``PolicyViolation``) to refuse it, and the intent is not buffered.
    func onEnqueue(_ intent: Intent) throws
    /// Called at flush; `false` drops the intent silently. A thrown error aborts the whole flush
    /// before anything is dispatched.
    func allows(_ intent: Intent) throws -> Bool
}

extension Policy {
    /// Accepts every intent at enqueue.
    public func onEnqueue(_ intent: Intent) throws {}
    /// Lets every intent through at flush.
    public func allows(_ intent: Intent) throws -> Bool { true }
}
