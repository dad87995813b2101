/// The root of every error Airlock itself throws — the core's, and those of its Redis client,
/// transport and worker (`RedisError`, `RedisExecutorError`, `AdminError`, …) — so
/// `catch let error as any AirlockError` catches them all. Errors a task throws are the task's own.
public protocol AirlockError: Error, CustomStringConvertible, Sendable {}

/// Airlock was used in a way it does not support; the message says what to do instead.
public protocol UsageError: AirlockError {}

/// A policy hook tried to enqueue: policies judge intents, they never create them.
public struct PolicyEnqueueError: UsageError {
    /// The task that was being enqueued.
    public let taskName: String
    /// Explains the rule and the way out.
    public var description: String {
        "Cannot enqueue '\(taskName)' from inside a policy hook: policies judge intents, they do not create them. "
            + "Enqueue from the code the scope wraps instead."
    }
}

/// `enqueue` was called with no surrounding scope; nothing escapes without one.
public struct NoScopeError: UsageError {
    /// The task that was being enqueued.
    public let taskName: String
    /// Tells the user to wrap the code in a scope.
    public var description: String {
        "Cannot enqueue '\(taskName)': there is no active airlock scope. "
            + "Wrap the code in `try await Airlock.scope { … }` (or run it inside a worker task, which has one)."
    }
}

/// A scope was used in a state that does not allow the operation.
public struct ScopeStateError: AirlockError {
    /// What went wrong, naming the state.
    public let description: String
    /// Creates the error with its message.
    public init(_ description: String) { self.description = description }
}

/// A policy refused an intent at enqueue time.
public struct PolicyViolation: AirlockError {
    /// The policy's reason.
    public let description: String
    /// Creates the violation with its reason.
    public init(_ description: String) { self.description = description }
}

/// The configuration cannot be used as given.
public struct ConfigurationError: AirlockError {
    /// What is wrong and how to fix it.
    public let description: String
    /// Creates the error with its message.
    public init(_ description: String) { self.description = description }
}

/// A flush's dispatch failed: says exactly which intents were dispatched and which were not.
///
/// Executors that dispatch a batch atomically report either all or none; executors that
/// dispatch one by one report the prefix that went out. When the scope's body had failed too
/// (and the scope's behaviour chose to flush anyway) ``bodyError`` keeps that first error.
public struct DispatchError: AirlockError {
    /// Intents that were dispatched before the failure.
    public var dispatched: [Intent]
    /// Intents that were not dispatched.
    public var notDispatched: [Intent]
    /// Why dispatch failed.
    public var underlying: any Error
    /// The error the scope's body threw, when the flush happened after a failed body.
    public var bodyError: (any Error)?

    /// Creates the error.
    public init(dispatched: [Intent], notDispatched: [Intent], underlying: any Error, bodyError: (any Error)? = nil) {
        self.dispatched = dispatched
        self.notDispatched = notDispatched
        self.underlying = underlying
        self.bodyError = bodyError
    }

    /// Names the failure and the intents on each side of it.
    public var description: String {
        var text = "Dispatch failed after \(dispatched.count) of \(dispatched.count + notDispatched.count) intent(s): \(underlying)."
        if !notDispatched.isEmpty {
            text += " Not dispatched: " + notDispatched.map(\.description).joined(separator: ", ") + "."
        }
        if !dispatched.isEmpty {
            text += " Dispatched: " + dispatched.map(\.description).joined(separator: ", ") + "."
        }
        if let bodyError { text += " The scope's body had failed first: \(bodyError)." }
        return text
    }
}
