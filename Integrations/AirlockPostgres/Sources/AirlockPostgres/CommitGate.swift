public import Airlock
import Synchronization

/// What Airlock knows about one database transaction: still open, committed, or rolled back —
/// and the dispatches waiting for it to commit.
///
/// ``TransactionScope`` (behind `Airlock.transaction(on:)` and the framework gates) creates one per
/// transaction and resolves it before its scope ends.
/// Use one directly to tie a scope to a transaction you run yourself: give the scope
/// ``DispatchAfterCommit`` over the gate, and call ``commit()`` once `COMMIT` succeeded or
/// ``rollBack()`` once it did not.
///
/// Only the first of ``commit()`` and ``rollBack()`` counts; later calls do nothing.
public final class CommitGate: Sendable, CustomStringConvertible {
    /// Where the transaction stands.
    public enum Outcome: Sendable, Hashable {
        /// Not yet committed or rolled back: dispatches wait.
        case pending
        /// Committed: dispatches go out at once.
        case committed
        /// Rolled back (or its commit failed): dispatches are dropped.
        case rolledBack
    }

    private struct Held {
        var intents: [Intent]
        var send: @Sendable () async throws -> Void
    }
    private struct State {
        var outcome: Outcome = .pending
        var held: [Held] = []
    }
    private let state = Mutex(State())

    /// A gate for a transaction that has not ended yet.
    public init() {}

    /// Where the transaction stands.
    public var outcome: Outcome { state.withLock { $0.outcome } }

    /// The intents waiting for the commit, in the order they would be dispatched.
    public var heldIntents: [Intent] { state.withLock { $0.held.flatMap(\.intents) } }

    /// `CommitGate(pending, held: N)`.
    public var description: String {
        let (outcome, count) = state.withLock { ($0.outcome, $0.held.reduce(0) { $0 + $1.intents.count }) }
        return "CommitGate(\(outcome), held: \(count))"
    }

    /// Dispatches `intents` through `executor` now if the transaction committed, holds them until
    /// ``commit()`` while it is pending, and drops them if it rolled back.
    public func dispatch(_ intents: [Intent], to executor: any Executor) async throws {
        try await dispatch(intents) { try await executor.dispatch(intents) }
    }

    /// Runs `send` (which dispatches `intents`) now if the transaction committed, keeps it for
    /// ``commit()`` while it is pending, and drops it if the transaction rolled back.
    public func dispatch(_ intents: [Intent], _ send: @escaping @Sendable () async throws -> Void) async throws {
        let sendNow = state.withLock { state -> Bool in
            switch state.outcome {
            case .committed: return true
            case .rolledBack: return false
            case .pending:
                state.held.append(Held(intents: intents, send: send))
                return false
            }
        }
        if sendNow { try await send() }
    }

    /// Records that the transaction committed and dispatches what was held, batch by batch in
    /// arrival order.
    /// - Returns: the intents dispatched.
    /// - Throws: `DispatchError` naming what went out before the first failure and what did not.
    @discardableResult
    public func commit() async throws -> [Intent] {
        let held = state.withLock { state -> [Held] in
            guard state.outcome == .pending else { return [] }
            state.outcome = .committed
            defer { state.held.removeAll() }
            return state.held
        }
        var dispatched: [Intent] = []
        for (index, batch) in held.enumerated() {
            do {
                try await batch.send()
            } catch {
                let later = held[(index + 1)...].flatMap(\.intents)
                if var error = error as? DispatchError {
                    error.dispatched = dispatched + error.dispatched
                    error.notDispatched += later
                    throw error
                }
                throw DispatchError(dispatched: dispatched, notDispatched: batch.intents + later, underlying: error)
            }
            dispatched += batch.intents
        }
        return dispatched
    }

    /// Records that the transaction rolled back (or failed to commit) and drops what was held.
    /// - Returns: the intents dropped.
    @discardableResult
    public func rollBack() -> [Intent] {
        state.withLock { state in
            guard state.outcome == .pending else { return [] }
            state.outcome = .rolledBack
            defer { state.held.removeAll() }
            return state.held.flatMap(\.intents)
        }
    }
}
