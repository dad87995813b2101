/// Thrown by a task to fail without retrying: the job goes to the dead letter at once, with this
/// description as the reason.
public struct PermanentFailure: AirlockError {
    /// Why retrying would not help.
    public let description: String
    /// Creates the failure.
    public init(_ description: String) { self.description = description }
}

/// A task attempt that ran longer than its timeout; it was cancelled and counts as a failure
/// (retried like any other while the retry budget lasts).
public struct TaskTimeoutError: AirlockError {
    /// The limit that was exceeded.
    public let timeout: Duration
    /// Creates the error.
    public init(timeout: Duration) { self.timeout = timeout }
    /// `task timed out after N s and was cancelled`.
    public var description: String { "task timed out after \(timeout.timeInterval) s and was cancelled" }
}

/// A typed task without a `run(_:)` of its own was run without the closure it is registered with
/// (for example by the in-process executor).
public struct UnrunnableTaskError: AirlockError {
    /// The task's wire name.
    public let taskName: String
    /// The Swift type.
    public let typeName: String
    /// Says how the task is meant to run.
    public var description: String {
        "task \(taskName) has no run(_:) of its own: it runs through the closure it was registered with "
            + "(tasks.register(\(typeName).self) { task, context in … }); run it on a worker, or give \(typeName) a run(_:)"
    }
}
