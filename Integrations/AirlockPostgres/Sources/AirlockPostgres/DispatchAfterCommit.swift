public import Airlock

/// A scope behaviour that dispatches only after a database transaction committed: the
/// `dispatch(_:from:to:)` hook hands the batch to a ``CommitGate``, which sends it at once when
/// the transaction already committed, holds it until the commit while the transaction is open,
/// and drops it when the transaction rolled back. (The Python original's Django scope, which
/// defers its dispatch to `transaction.on_commit`.)
///
/// It builds on a `base` behaviour (by default the built-in one): the base's settings are
/// accepted, its `shouldFlush` decides, and the base's own `dispatch` runs once the gate lets the
/// batch through. Capture is not delegated: a scope with this behaviour captures everything its
/// descendants flush, so nothing enqueued inside the transaction can leave before the commit.
public struct DispatchAfterCommit: ScopeBehavior {
    /// The transaction the dispatch waits for.
    public let gate: CommitGate
    /// The behaviour whose settings, flush decision and dispatch this one keeps.
    public let base: any ScopeBehavior

    /// A behaviour that ties `base`'s dispatch to `gate`.
    public init(_ gate: CommitGate, base: any ScopeBehavior = DefaultScopeBehavior()) {
        self.gate = gate
        self.base = base
    }

    /// The base behaviour's settings.
    public var supportedSettings: Set<String> { base.supportedSettings }

    /// The base behaviour's decision.
    public func shouldFlush(_ scope: Scope, error: (any Error)?) -> Bool {
        base.shouldFlush(scope, error: error)
    }

    /// Captures everything: descendants inside the transaction wait for the same commit.
    public func beforeDescendantFlushes(_ scope: Scope, exiting: Scope, intents: [Intent]) -> [Intent] { [] }

    /// Hands the batch to the gate: the base behaviour dispatches it now, after the commit, or never.
    public func dispatch(_ intents: [Intent], from scope: Scope, to executor: any Executor) async throws {
        let base = self.base
        try await gate.dispatch(intents) { try await base.dispatch(intents, from: scope, to: executor) }
    }
}
