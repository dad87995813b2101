import Synchronization

/// Records what it is asked to dispatch instead of running it: for tests of code that enqueues.
///
/// ```swift
/// let recorder = RecordingExecutor()
/// try await Airlock.scope(executor: recorder) { try await checkout(order) }
/// #expect(recorder.intents.map(\.taskName) == ["orders.send_confirmation_email"])
/// ```
public final class RecordingExecutor: Executor {
    private let state = Mutex<[[Intent]]>([])

    /// Creates an empty recorder.
    public init() {}

    /// Records the batch.
    public func dispatch(_ intents: [Intent]) async throws {
        state.withLock { $0.append(intents) }
    }

    /// Every batch received, one per flush, oldest first.
    public var batches: [[Intent]] { state.withLock { $0 } }

    /// Every intent received, in dispatch order.
    public var intents: [Intent] { state.withLock { $0.flatMap { $0 } } }

    /// Forgets what was recorded.
    public func reset() { state.withLock { $0.removeAll() } }
}
