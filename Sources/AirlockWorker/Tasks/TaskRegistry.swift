public import Airlock
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

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
/// try tasks.schedule("nightly-report", .cron("0 3 * * *", timeZone: "Europe/Paris"), SendReport(kind: "daily"))
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
        /// How long the task's result (value or failure) is kept for producers that wait on it,
        /// even when the job did not ask; `nil` keeps it only for jobs that asked.
        public var keepResult: Duration? = nil
        /// Turns wire arguments into something runnable; throws when they do not fit (a permanent failure).
        /// The runnable returns the task's result, stored for Celery callers that ask for one.
        let prepare: @Sendable (TaskArguments) throws -> @Sendable (TaskContext) async throws -> JSONValue
    }

    private var entries: [String: Entry] = [:]
    /// The periodic jobs declared with the tasks, in declaration order.
    public private(set) var schedules: [PeriodicJob] = []

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
    /// `AsyncResult.get()` returns, and a native producer's result handle). A separate name keeps
    /// trailing-closure calls of ``register(_:maxRetries:timeout:retry:_:)`` unambiguous.
    /// - Parameter keepResult: keep every job's result this long, even when the job did not ask.
    public mutating func registerFunction(
        _ name: String, maxRetries: Int? = nil, timeout: Duration? = nil, retry: (any RetryStrategy)? = nil, keepResult: Duration? = nil,
        _ handler: @escaping @Sendable (TaskArguments, TaskContext) async throws -> JSONValue
    ) {
        entries[name] = Entry(name: name, maxRetries: maxRetries, timeout: timeout, retry: retry, keepResult: keepResult) { arguments in
            { context in try await handler(arguments, context) }
        }
    }

    /// Registers a typed task whose closure returns a value: the task's result, which a producer
    /// reads back decoded (`ResultHandle.value(as:timeout:)` in `AirlockRedis`).
    /// - Parameter keepResult: keep every job's result this long, even when the job did not ask.
    public mutating func register<T: AirlockTask, R: Encodable & Sendable>(
        _ type: T.Type, returning: R.Type, keepResult: Duration? = nil, maxRetries: Int? = nil, timeout: Duration? = nil,
        retry: (any RetryStrategy)? = nil, _ run: @escaping @Sendable (T, TaskContext) async throws -> R
    ) {
        entries[T.name] = Entry(
            name: T.name, maxRetries: maxRetries ?? T.defaultOptions.maxRetries, timeout: timeout, retry: retry, keepResult: keepResult
        ) { arguments in
            let task = try arguments.decode(T.self)
            return { context in
                let value = try await run(task, context)
                // The value as JSONEncoder would write it, kept as the JSON the result key stores.
                return try JSONParser.parse(try JSONBytesEncoder.encode(value))
            }
        }
    }

    /// Declares a periodic job: at each tick of `timing`, one job of `task` with these arguments
    /// is enqueued to `queue`, exactly once across every worker that declares the schedule (see
    /// ``PeriodicJob``). The task need not be registered here: the worker consuming `queue` runs it.
    /// - Parameters:
    ///   - missed: ticks no worker enqueued within `lateness` (the fleet was down): skipped, or
    ///     the most recent few caught up (the default: one).
    /// - Throws: ``ScheduleError`` for a name already declared or settings outside the rules.
    public mutating func schedule(
        _ name: String, _ timing: ScheduleTiming, task: String, args: [JSONValue] = [], kwargs: [String: JSONValue] = [:],
        queue: String = "default", missed: MissedTicks = .catchUp(upTo: 1), lateness: Duration = .seconds(60)
    ) throws(ScheduleError) {
        try add(PeriodicJob(name: name, timing: timing, task: task, args: args, kwargs: kwargs, queue: queue, missed: missed, lateness: lateness))
    }

    /// Declares a periodic job of a typed task: `task`'s fields are each job's arguments.
    /// - Throws: ``ScheduleError`` for a name already declared, settings outside the rules, or a
    ///   task value that does not encode as a JSON object.
    public mutating func schedule<T: AirlockTask>(
        _ name: String, _ timing: ScheduleTiming, _ task: T, queue: String? = nil, missed: MissedTicks = .catchUp(upTo: 1),
        lateness: Duration = .seconds(60)
    ) throws(ScheduleError) {
        let kwargs: [String: JSONValue]
        do {
            kwargs = try TaskArguments(encoding: task).kwargs
        } catch {
            throw ScheduleError(.invalidSchedule, "schedule \(CronExpression.quote(name)): \(error)")
        }
        try add(PeriodicJob(
            name: name, timing: timing, task: T.name, kwargs: kwargs, queue: queue ?? T.defaultOptions.queue ?? "default", missed: missed,
            lateness: lateness))
    }

    private mutating func add(_ job: PeriodicJob) throws(ScheduleError) {
        if schedules.contains(where: { $0.name == job.name }) {
            throw ScheduleError(.duplicateSchedule, "schedule \(CronExpression.quote(job.name)) is declared twice")
        }
        schedules.append(job)
    }

    /// The entry registered under `name`.
    public subscript(name: String) -> Entry? { entries[name] }

    /// Every registered name, sorted.
    public var names: [String] { entries.keys.sorted() }
}
