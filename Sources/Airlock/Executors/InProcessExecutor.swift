public import Logging

/// Runs each intent's task right away, in the flushing task: the default executor, like the
/// original's `sync_executor`.
///
/// Typed tasks run their own ``AirlockTask/run(_:)``. Tasks known only by name run the handler
/// registered for that name; one with no handler fails the dispatch with a clear error.
/// Dispatch options (queue, countdown, …) do not apply in-process and are ignored.
///
/// Intents run one after another and the first failure stops the batch; the thrown
/// ``DispatchError`` lists the intents that ran before it.
public struct InProcessExecutor: Executor {
    /// Runs a task known only by name.
    public typealias Handler = @Sendable (TaskArguments, TaskContext) async throws -> Void

    private let handlers: [String: Handler]
    private let logger: Logger

    /// Creates the executor.
    /// - Parameter handlers: implementations of tasks that are enqueued by name.
    public init(handlers: [String: Handler] = [:], logger: Logger = Logger(label: "airlock.inprocess")) {
        self.handlers = handlers
        self.logger = logger
    }

    /// Runs the intents in order, stopping at the first failure.
    public func dispatch(_ intents: [Intent]) async throws {
        for (index, intent) in intents.enumerated() {
            do {
                try await run(intent)
            } catch {
                throw DispatchError(
                    dispatched: Array(intents[..<index]),
                    notDispatched: Array(intents[index...]),
                    underlying: error
                )
            }
        }
    }

    private func run(_ intent: Intent) async throws {
        let context = TaskContext(
            jobID: intent.id.uuidString.lowercased(),
            taskName: intent.taskName,
            queue: intent.options.queue,
            maxRetries: intent.options.maxRetries,
            logger: logger
        )
        switch intent.payload {
        case .typed(let task):
            try await task.run(context)
        case .dynamic(let arguments):
            guard let handler = handlers[intent.taskName] else {
                throw UnknownTaskError(taskName: intent.taskName, known: handlers.keys.sorted())
            }
            try await handler(arguments, context)
        }
    }
}

/// A task was dispatched by name to an executor that has no implementation for it.
public struct UnknownTaskError: AirlockError {
    /// The name that was not found.
    public let taskName: String
    /// The names that are known.
    public let known: [String]
    /// Names the task and what to do.
    public var description: String {
        "No implementation for task '\(taskName)' in this process (known: \(known.isEmpty ? "none" : known.joined(separator: ", "))). "
            + "Register a handler for it, enqueue a typed AirlockTask, or use an executor that sends it to a worker."
    }
}
