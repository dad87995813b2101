#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif
public import Logging

/// A side effect a scope can buffer and a worker can run: a `Codable` value whose stored
/// properties are the task's arguments.
///
/// On the wire a typed task travels as Celery-style arguments: its encoded fields form the
/// `kwargs` object and `args` is empty. A producer in another language can call it positionally
/// when the type lists ``argumentNames``: positional `args` are then matched to those names.
///
/// ```swift
/// struct SendConfirmationEmail: AirlockTask {
///     static let name = "orders.send_confirmation_email"
///     let orderID: Int
///     func run(_ context: TaskContext) async throws { … }
/// }
/// ```
public protocol AirlockTask: Codable, Sendable {
    /// The task's name on the wire, usually dotted (`"orders.send_confirmation_email"`).
    static var name: String { get }
    /// Keyword names that positional `args` map onto, in order, for callers that send positional
    /// arguments (Celery `send_task("x", args=[…])`). Empty by default: keyword arguments only.
    static var argumentNames: [String] { get }
    /// Options every intent of this task starts from; options given at enqueue override them.
    static var defaultOptions: DispatchOptions { get }
    /// Performs the side effect. A task whose work needs the application's services leaves it out
    /// and is registered with the closure that runs it (`tasks.register(T.self) { task, context in … }`),
    /// which captures them.
    func run(_ context: TaskContext) async throws
}

extension AirlockTask {
    /// No positional names: the task takes keyword arguments only.
    public static var argumentNames: [String] { [] }
    /// No defaults: the executor's own defaults apply.
    public static var defaultOptions: DispatchOptions { DispatchOptions() }

    /// For a task registered with a closure (the closure runs it): reached only when something
    /// runs the task without its registration — the in-process executor, say — and says so.
    public func run(_ context: TaskContext) async throws {
        throw UnrunnableTaskError(taskName: Self.name, typeName: "\(Self.self)")
    }
}

/// What a running task knows about its own execution.
public struct TaskContext: Sendable {
    /// The job's unique id (the intent's id on first delivery).
    public var jobID: String
    /// The task name the job was dispatched under.
    public var taskName: String
    /// The queue the job came from, when it came from one.
    public var queue: String?
    /// 0 on first delivery, incremented by each retry.
    public var attempt: Int
    /// The retry budget in force for this job, when one is known.
    public var maxRetries: Int?
    /// When the job was first enqueued.
    public var enqueuedAt: Date?
    /// The tick a periodic job was enqueued for (its scheduled time, not when it was enqueued);
    /// `nil` for a job no schedule enqueued.
    public var scheduledAt: Date?
    /// The name of the schedule that enqueued the job, if one did.
    public var schedule: String?
    /// The id of the batch the job belongs to (`RedisExecutor.batch`), if any; jobs the task
    /// enqueues join the same batch.
    public var batch: String?
    /// A logger carrying the job's id, task and queue as metadata.
    ///
    /// Built on access: attaching metadata costs more than running a no-op task on some log
    /// handlers, so jobs that never log never pay for it. Keep it in a local when logging often.
    public var logger: Logger {
        get {
            var logger = baseLogger
            // These come from the job's bytes: escaped, so a newline in a task name cannot forge a line.
            logger[metadataKey: "job"] = "\(SafeText.escape(jobID))"
            logger[metadataKey: "task"] = "\(SafeText.escape(taskName))"
            if let queue { logger[metadataKey: "queue"] = "\(SafeText.escape(queue))" }
            return logger
        }
        set { baseLogger = newValue }
    }
    private var baseLogger: Logger

    /// Creates a context; workers and executors build these, tests may too.
    public init(
        jobID: String,
        taskName: String,
        queue: String? = nil,
        attempt: Int = 0,
        maxRetries: Int? = nil,
        enqueuedAt: Date? = nil,
        scheduledAt: Date? = nil,
        schedule: String? = nil,
        batch: String? = nil,
        logger: Logger = Logger(label: "airlock.task")
    ) {
        self.jobID = jobID
        self.taskName = taskName
        self.queue = queue
        self.attempt = attempt
        self.maxRetries = maxRetries
        self.enqueuedAt = enqueuedAt
        self.scheduledAt = scheduledAt
        self.schedule = schedule
        self.batch = batch
        self.baseLogger = logger
    }
}
