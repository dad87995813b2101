public import Airlock

/// The tasks a worker can run, by wire name: typed ``AirlockTask`` types and named closures over
/// Celery-style arguments.
///
/// A task that needs the application's services — a database pool, an HTTP client, a mailer —
/// gets them from the closure it is registered with, which captures them: nothing global,
/// nothing that fails at run time because it was forgotten.
///
/// ```swift
/// var tasks = TaskRegistry()
/// tasks.register(SendConfirmationEmail.self) { task, context in   // the decoded arguments, and the job
///     try await mailer.send(to: task.email, orderID: task.orderID)
/// }
/// tasks.register(NotifyWarehouse.self)                             // a task with a `run(_:)` of its own
/// tasks.register("proj.tasks.add") { arguments, context in … }     // by name, Celery-style arguments
/// ```
public struct TaskRegistry: Sendable {
    /// Runs a task known by name.
    public typealias Handler = @Sendable (TaskArguments, TaskContext) async throws -> Void

    /// One registered task and its execution settings.
    public struct Entry: Sendable {
        /// Wire name.
        public let name: String
        /// Retries after the first attempt; `nil` defers to the envelope, then the worker default.
        public let maxRetries: Int?
        /// Longest a single attempt may run before it is cancelled and counted as failed.
        public let timeout: Duration?
        /// Delay before each retry; `nil` means the worker's strategy.
        public let retry: (any RetryStrategy)?
        /// Turns wire arguments into something runnable; throws when they do not fit (a permanent failure).
        /// The runnable returns the task's result, stored for Celery callers that ask for one.
        let prepare: @Sendable (TaskArguments) throws -> @Sendable (TaskContext) async throws -> JSONValue
    }

    private var entries: [String: Entry] = [:]

    /// An empty registry.
    public init() {}

    /// Registers a typed task under `T.name`; its arguments are decoded from the envelope.
    public mutating func register<T: AirlockTask>(
        _ type: T.Type, maxRetries: Int? = nil, timeout: Duration? = nil, retry: (any RetryStrategy)? = nil
    ) {
        entries[T.name] = Entry(name: T.name, maxRetries: maxRetries ?? T.defaultOptions.maxRetries, timeout: timeout, retry: retry) { arguments in
            let task = try arguments.decode(T.self)
            return { context in
                try await task.run(context)
                return .null
            }
        }
    }

    /// Registers a typed task under `T.name` with the closure that runs it: the closure receives the
    /// decoded task value and the job's context, and captures whatever services the task needs.
    /// The type's own ``AirlockTask/run(_:)`` is not called.
    public mutating func register<T: AirlockTask>(
        _ type: T.Type, maxRetries: Int? = nil, timeout: Duration? = nil, retry: (any RetryStrategy)? = nil,
        _ run: @escaping @Sendable (T, TaskContext) async throws -> Void
    ) {
        entries[T.name] = Entry(name: T.name, maxRetries: maxRetries ?? T.defaultOptions.maxRetries, timeout: timeout, retry: retry) { arguments in
            let task = try arguments.decode(T.self)
            return { context in
                try await run(task, context)
                return .null
            }
        }
    }

    /// Registers a closure under `name`; it receives the arguments as sent.
    public mutating func register(
        _ name: String, maxRetries: Int? = nil, timeout: Duration? = nil, retry: (any RetryStrategy)? = nil,
        _ handler: @escaping Handler
    ) {
        entries[name] = Entry(name: name, maxRetries: maxRetries, timeout: timeout, retry: retry) { arguments in
            { context in
                try await handler(arguments, context)
                return .null
            }
        }
    }

    /// Registers a closure whose return value is the task's result (what a Celery caller's
    /// `AsyncResult.get()` returns). A separate name keeps trailing-closure calls of
    /// ``register(_:maxRetries:timeout:retry:_:)`` unambiguous.
    public mutating func registerFunction(
        _ name: String, maxRetries: Int? = nil, timeout: Duration? = nil, retry: (any RetryStrategy)? = nil,
        _ handler: @escaping @Sendable (TaskArguments, TaskContext) async throws -> JSONValue
    ) {
        entries[name] = Entry(name: name, maxRetries: maxRetries, timeout: timeout, retry: retry) { arguments in
            { context in try await handler(arguments, context) }
        }
    }

    /// The entry registered under `name`.
    public subscript(name: String) -> Entry? { entries[name] }

    /// Every registered name, sorted.
    public var names: [String] { entries.keys.sorted() }
}
