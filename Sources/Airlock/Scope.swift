import Synchronization

/// A buffer of intents with a lifecycle: it is entered, collects what is enqueued while it is
/// current, and ends by flushing (policies run, survivors go to the executor) or discarding.
///
/// Most code never touches a `Scope` directly: ``Airlock/scope(policy:executor:behavior:settings:isolation:_:)``
/// creates one, runs the body with it as the current scope, and ends it. The imperative methods
/// (``enter()``, ``exit()``, ``flush()``, ``discard()``) exist for frameworks that manage the
/// lifecycle themselves, such as a web middleware.
///
/// A scope is safe to share between tasks: its state is guarded by a lock, and no lock is held
/// while the executor runs.
public final class Scope: Sendable, CustomStringConvertible {
    /// Decides, at flush, which intents escape.
    public let policy: any Policy
    /// Dispatches what escapes.
    public let executor: any Executor
    /// The customisation points (when to flush, what ancestors capture, how dispatch is scheduled).
    public let behavior: any ScopeBehavior
    /// The settings the behaviour reads.
    public let settings: ScopeSettings

    private enum Phase { case new, active, exited, flushed, discarded }
    private struct Entry {
        var intent: Intent
        var captured: Bool
    }
    private struct State {
        var phase: Phase = .new
        var entries: [Entry] = []
        var parent: Scope?
    }
    private let state = Mutex(State())

    /// Creates a scope that is not yet entered. Omitted arguments come from ``Airlock/configuration``,
    /// and `settings` are merged over the configured ones.
    /// - Throws: ``ConfigurationError`` when the behaviour does not understand a setting.
    public init(
        policy: (any Policy)? = nil,
        executor: (any Executor)? = nil,
        behavior: (any ScopeBehavior)? = nil,
        settings: ScopeSettings = [:]
    ) throws {
        let defaults = Airlock.configuration
        self.policy = policy ?? defaults.policy
        self.executor = executor ?? defaults.executor
        self.behavior = behavior ?? defaults.behavior
        self.settings = defaults.settings.merging(settings)
        try self.settings.validate(for: self.behavior)
    }

    // MARK: Inspection

    /// Everything in the buffer, in arrival order: own and captured intents. Still readable after
    /// a flush; empty after a discard.
    public var intents: [Intent] { state.withLock { $0.entries.map(\.intent) } }
    /// The intents enqueued directly into this scope.
    public var ownIntents: [Intent] { state.withLock { $0.entries.filter { !$0.captured }.map(\.intent) } }
    /// The intents captured from descendant scopes that flushed into this one.
    public var capturedIntents: [Intent] { state.withLock { $0.entries.filter(\.captured).map(\.intent) } }
    /// Whether the scope has flushed (it stays flushed even when the dispatch failed).
    public var isFlushed: Bool { state.withLock { $0.phase == .flushed } }
    /// Whether the scope has discarded its intents.
    public var isDiscarded: Bool { state.withLock { $0.phase == .discarded } }
    /// Whether the scope is entered and not yet exited.
    public var isActive: Bool { state.withLock { $0.phase == .active } }
    /// The scope that was current when this one was entered.
    public var parent: Scope? { state.withLock { $0.parent } }

    /// `Scope(policy: …, intents: N, state)`.
    public var description: String {
        let (phase, count) = state.withLock { ($0.phase, $0.entries.count) }
        return "Scope(policy: \(policy), intents: \(count), \(phase))"
    }

    // MARK: Lifecycle

    /// Marks the scope active and records the current scope as its parent.
    ///
    /// Entering does not make the scope current for the calling task (task-local values can only
    /// be bound around a body): run the code inside ``withCurrent(isolation:_:)`` for that.
    /// - Throws: ``ScopeStateError`` when the scope is already active or has ended.
    public func enter() throws {
        let parent = Airlock.currentScope
        try state.withLock { state in
            switch state.phase {
            case .new: break
            case .active: throw ScopeStateError("Cannot enter the scope: it is already active.")
            case .exited, .flushed, .discarded:
                throw ScopeStateError("Cannot enter the scope: it has already been used (\(state.phase)); create a new scope.")
            }
            state.phase = .active
            state.parent = parent === self ? nil : parent
        }
    }

    /// Marks the scope inactive; it can then be flushed or discarded.
    /// - Throws: ``ScopeStateError`` when the scope is not active.
    public func exit() throws {
        try state.withLock { state in
            guard state.phase == .active else {
                throw ScopeStateError("Cannot exit the scope: it is not active (\(state.phase)).")
            }
            state.phase = .exited
        }
    }

    /// Runs `body` with this scope as the current scope, so `Airlock.enqueue` adds to it.
    public func withCurrent<R>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> R
    ) async rethrows -> R {
        var context = AirlockContext.current
        context.scope = self
        return try await AirlockContext.$current.withValue(context, operation: body, isolation: isolation)
    }

    /// Flushes: ancestors capture what they claim, policies filter the rest, the executor
    /// dispatches the survivors in FIFO order.
    ///
    /// The scope is marked flushed first and stays flushed whatever happens next: a failed flush
    /// is never retried half way.
    /// - Returns: the intents this scope dispatched itself (not those its ancestors captured).
    /// - Throws: ``ScopeStateError`` when the scope is active or already ended; an error from a
    ///   policy hook (nothing dispatched); ``DispatchError`` when the executor failed.
    @discardableResult
    public func flush() async throws -> [Intent] {
        let (pending, parent) = try state.withLock { state -> ([Intent], Scope?) in
            try Self.requireEnded(state.phase, action: "flush")
            state.phase = .flushed
            return (state.entries.map(\.intent), state.parent)
        }

        // Ancestors, nearest first, claim what they want to hold back for their own flush.
        var leaving = pending
        var ancestor = parent
        while let holder = ancestor {
            let offered = leaving
            let allowedIDs = Set(holder.behavior.beforeDescendantFlushes(holder, exiting: self, intents: offered).map(\.id))
            leaving = offered.filter { allowedIDs.contains($0.id) }
            let captured = offered.filter { !allowedIDs.contains($0.id) }
            if !captured.isEmpty { try holder.capture(captured) }
            ancestor = holder.parent
        }

        // Every policy judges every intent before anything is dispatched.
        let allowed = try AirlockContext.judging {
            try leaving.filter { intent in
                for local in intent.localPolicies.reversed() where try !local.allows(intent) { return false }
                return try policy.allows(intent)
            }
        }
        guard !allowed.isEmpty else { return [] }

        // A task the in-process executor runs during a nested flush enqueues into the parent,
        // and during a top-level flush has no scope at all.
        var context = AirlockContext.current
        context.scope = parent
        do {
            try await AirlockContext.$current.withValue(context) {
                try await FlushSpan.around(allowed.count, executor: executor) {
                    try await behavior.dispatch(allowed, from: self, to: executor)
                }
            }
        } catch {
            throw DispatchError.wrapping(error, batch: allowed)
        }
        return allowed
    }

    /// Drops everything the scope holds.
    /// - Returns: the intents that were discarded.
    /// - Throws: ``ScopeStateError`` when the scope is active or already ended.
    @discardableResult
    public func discard() throws -> [Intent] {
        try state.withLock { state in
            try Self.requireEnded(state.phase, action: "discard")
            state.phase = .discarded
            let dropped = state.entries.map(\.intent)
            state.entries.removeAll()
            return dropped
        }
    }

    // MARK: Ending

    /// How ``end(after:flush:)`` ended a scope.
    public enum Ending: Sendable {
        /// Flushed; these are the intents this scope dispatched itself.
        case flushed([Intent])
        /// Discarded; these are the intents that were dropped.
        case discarded([Intent])
        /// The body had already flushed or discarded the scope by hand; nothing more was done.
        case alreadyEnded
    }

    /// Ends a scope whose body has finished — the one place that does it, for
    /// ``Airlock/scope(_:isolation:_:)`` and for frameworks that drive a scope themselves (web
    /// middleware): exits it if still active; unless the body already flushed or discarded it by
    /// hand, flushes when `flush` says so (default: the behaviour's ``ScopeBehavior/shouldFlush(_:error:)``
    /// for `bodyError`) and discards otherwise.
    ///
    /// When the body failed, the scope flushes anyway and the dispatch fails too, the thrown
    /// ``DispatchError`` carries both: which intents went out and the body's error
    /// (``DispatchError/bodyError``), so neither is lost.
    /// - Parameters:
    ///   - bodyError: what the body threw, or `nil` when it returned.
    ///   - flush: the caller's decision (a middleware combines its response rule with the
    ///     behaviour); `nil` asks the behaviour.
    /// - Throws: ``ScopeStateError`` when the scope was never entered; what ``flush()`` throws.
    @discardableResult
    public func end(after bodyError: (any Error)?, flush: Bool? = nil) async throws -> Ending {
        if isActive { try exit() }
        guard !isFlushed && !isDiscarded else { return .alreadyEnded }
        guard flush ?? behavior.shouldFlush(self, error: bodyError) else {
            return .discarded(try discard())
        }
        do {
            return .flushed(try await self.flush())
        } catch {
            guard let bodyError else { throw error }
            var dispatchError = DispatchError.wrapping(error, batch: intents)
            dispatchError.bodyError = bodyError
            throw dispatchError
        }
    }

    // MARK: Buffer

    /// Adds an intent enqueued while this scope is current, after the policy accepted it.
    func append(_ intent: Intent) throws {
        try state.withLock { state in
            try Self.requireOpen(state.phase, for: intent)
            state.entries.append(Entry(intent: intent, captured: false))
        }
    }

    /// Throws ``ScopeStateError`` unless the scope can still take intents.
    func requireOpen(for intent: Intent) throws {
        try Self.requireOpen(state.withLock { $0.phase }, for: intent)
    }

    private static func requireOpen(_ phase: Phase, for intent: Intent) throws {
        guard phase == .flushed || phase == .discarded else { return }
        throw ScopeStateError(
            "Cannot enqueue '\(intent.name)': the scope has already \(phase == .flushed ? "flushed" : "been discarded"). "
                + "A task that outlives its scope must run in a scope of its own.")
    }

    private func capture(_ intents: [Intent]) throws {
        try state.withLock { state in
            guard state.phase != .flushed && state.phase != .discarded else {
                throw ScopeStateError(
                    "Cannot capture \(intents.count) intent(s) into an ancestor scope that has already "
                        + "\(state.phase == .flushed ? "flushed" : "been discarded"); they would be lost. "
                        + "End inner scopes before their ancestors.")
            }
            state.entries.append(contentsOf: intents.map { Entry(intent: $0, captured: true) })
        }
    }

    private static func requireEnded(_ phase: Phase, action: String) throws {
        switch phase {
        case .new, .exited: return
        case .active: throw ScopeStateError("Cannot \(action) the scope while it is still active; exit it first.")
        case .flushed: throw ScopeStateError("Cannot \(action) the scope: it has already been flushed.")
        case .discarded: throw ScopeStateError("Cannot \(action) the scope: it has already been discarded.")
        }
    }
}
