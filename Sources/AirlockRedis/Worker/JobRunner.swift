import Airlock
import Foundation
import Logging
import Metrics

/// Runs one fetched job and decides how it settles.
///
/// Input that can never succeed (not JSON, invalid UTF-8, missing fields, unknown task,
/// arguments that do not decode) is dead-lettered at once with the reason. A task runs inside an
/// airlock scope whose executor is the Redis executor, so the jobs it enqueues are dispatched
/// atomically, and only if it succeeds.
struct JobRunner: Sendable {
    let registry: TaskRegistry
    let configuration: WorkerConfiguration
    let followUps: RedisExecutor
    let logger: Logger
    let metrics: JobMetrics

    func run(_ job: Job) async -> Finisher.Settlement {
        guard job.raw.count <= configuration.maxMessageBytes else {
            return malformed(job, reason: "the message is \(job.raw.count) bytes, over this worker's limit of \(configuration.maxMessageBytes) (maxMessageBytes, --max-message-bytes); it was not read")
        }
        let envelope: Envelope
        var celery: CeleryMessage?
        do {
            switch configuration.wireProtocol {
            case .native:
                envelope = try Envelope.decode(job.raw)
            case .celery:
                let message = try CeleryMessage.decode(job.raw)
                envelope = message.envelope(queue: job.queue)
                celery = message
            }
        } catch {
            return malformed(job, reason: error.description)
        }
        // Metadata goes with each log call, not onto the logger: some handlers format metadata
        // eagerly whenever it is set, which cost more than a no-op job.
        let logger = JobLogger(logger: self.logger, job: envelope.id, task: envelope.task, queue: job.queue)

        guard let entry = registry[envelope.task] else {
            logger.error("unknown task; dead-lettered")
            return dead(job, envelope, celery, reason: "unknown task '\(envelope.task)': no task of that name is registered on this worker",
                        errorType: "NotRegistered", attempts: envelope.attempt)
        }
        if let eta = envelope.eta, eta > epochMilliseconds() + 5 {
            // Celery producers put future tasks straight on the queue; they wait in Redis, not here.
            logger.debug("job not due yet; moved to the delayed set")
            return .init(job: job, outcome: .postpone(dueAt: eta))
        }
        if let expires = envelope.expires, epochMilliseconds() > expires {
            logger.notice("job expired before it started; dropped")
            metrics.count(.expired, queue: job.queue)
            return .init(job: job, outcome: .expired)
        }
        let body: @Sendable (TaskContext) async throws -> JSONValue
        do {
            body = try entry.prepare(TaskArguments(args: envelope.args, kwargs: envelope.kwargs))
        } catch {
            logger.error("arguments do not fit the task; dead-lettered", metadata: ["error": "\(error)"])
            return dead(job, envelope, celery, reason: "\(error)", errorType: "TypeError", attempts: envelope.attempt)
        }

        let maxRetries = envelope.maxRetries ?? entry.maxRetries ?? configuration.defaultMaxRetries
        let context = TaskContext(
            jobID: envelope.id, taskName: envelope.task, queue: job.queue, attempt: envelope.attempt, maxRetries: maxRetries,
            enqueuedAt: Date(timeIntervalSince1970: Double(envelope.enqueuedAt) / 1000), logger: self.logger)
        let started = ContinuousClock.now
        do {
            let value = try await Airlock.scope(executor: followUps) {
                try await withTimeout(entry.timeout ?? configuration.defaultTimeout) { try await body(context) }
            }
            metrics.finished(.processed, queue: job.queue, after: ContinuousClock.now - started)
            logger.debug("job succeeded")
            var settlement = Finisher.Settlement(job: job, outcome: .acknowledge)
            if let celery, celery.wantsResult {
                settlement.result = stored(CeleryResult.success(taskID: envelope.id, value: value), taskID: envelope.id)
            }
            return settlement
        } catch {
            metrics.finished(.failed, queue: job.queue, after: ContinuousClock.now - started)
            let failures = envelope.attempt + 1
            if !(error is PermanentFailure), envelope.attempt < maxRetries {
                let strategy = entry.retry ?? configuration.retryStrategy
                // A strategy may answer anything; the due time stays a valid wire timestamp.
                let due = min(
                    epochMilliseconds().addingSaturated(strategy.delay(afterFailures: failures).wholeMilliseconds),
                    acceptedEpochMilliseconds.upperBound)
                let next: [UInt8]
                if let celery {
                    next = celery.retried(eta: Date(timeIntervalSince1970: Double(due) / 1000)).encoded()
                } else {
                    var retry = envelope
                    retry.attempt += 1
                    retry.eta = due
                    retry.extra["last_error"] = .string(String(describing: error))
                    next = retry.encoded()
                }
                logger.warning("job failed; retry scheduled", metadata: ["error": "\(error)", "attempt": "\(failures)", "max_retries": "\(maxRetries)"])
                return .init(job: job, outcome: .retry(envelope: next, dueAt: due))
            }
            logger.error("job failed for the last time; dead-lettered", metadata: ["error": "\(error)", "attempts": "\(failures)"])
            return dead(job, envelope, celery, reason: String(describing: error), errorType: "\(type(of: error))", attempts: failures)
        }
    }

    private func stored(_ value: [UInt8], taskID: String) -> Finisher.StoredResult {
        Finisher.StoredResult(key: CeleryResult.key(taskID: taskID), value: value, expirySeconds: Int(configuration.resultExpiry.timeInterval))
    }

    /// A dead letter: the envelope with the reason, the attempt count and the time; for a Celery
    /// message also the message itself (so it can be re-sent as is) and a stored failure result.
    private func dead(
        _ job: Job, _ envelope: Envelope, _ celery: CeleryMessage?, reason: String, errorType: String, attempts: Int
    ) -> Finisher.Settlement {
        var entry = envelope
        entry.extra["error"] = .string(reason)
        entry.extra["failed_at"] = .int(Int(epochMilliseconds()))
        entry.extra["attempts"] = .int(attempts)
        entry.extra["last_error"] = nil
        var settlement = Finisher.Settlement(job: job, outcome: .dead(entry: []))
        if let celery {
            entry.extra["protocol"] = "celery"
            entry.extra["message"] = .object(celery.fields)
            if celery.wantsResult {
                settlement.result = stored(CeleryResult.failure(taskID: envelope.id, error: reason, typeName: errorType), taskID: envelope.id)
            }
        }
        metrics.count(.dead, queue: job.queue)
        settlement.outcome = .dead(entry: entry.encoded())
        return settlement
    }

    /// A message that is not an envelope keeps its bytes: as a string when they are UTF-8, else base64.
    private func malformed(_ job: Job, reason: String) -> Finisher.Settlement {
        logger.error("malformed job; dead-lettered", metadata: ["queue": "\(SafeText.escape(job.queue))", "error": "\(SafeText.escape(reason))"])
        var fields: [String: JSONValue] = [
            "v": 1, "id": .string(Self.readableID(of: job.raw) ?? UUID().uuidString.lowercased()), "task": .null, "queue": .string(job.queue),
            "error": .string("malformed message: \(reason)"), "failed_at": .int(Int(epochMilliseconds())), "attempts": 0,
        ]
        if configuration.wireProtocol == .celery { fields["protocol"] = "celery" }
        if let text = String(validating: job.raw, as: UTF8.self) {
            fields["raw"] = .string(text)
        } else {
            fields["raw_base64"] = .string(Data(job.raw).base64EncodedString())
        }
        metrics.count(.dead, queue: job.queue)
        var bytes: [UInt8] = []
        JSONWriter.write(.object(fields), into: &bytes)
        return .init(job: job, outcome: .dead(entry: bytes))
    }
}

extension JobRunner {
    /// The `id` of a message that is not a valid envelope, when it has a readable one (a JSON
    /// object with a non-empty string `id`), so `dead show <id>` finds it under the id its
    /// producer knows; otherwise the dead letter gets a fresh one.
    static func readableID(of raw: [UInt8]) -> String? {
        guard let value = try? JSONParser.parse(raw), case .object(let fields) = value,
              case .string(let id)? = fields["id"] ?? fields["headers"]?.objectValue?["id"], !id.isEmpty, id.count <= 200
        else { return nil }
        return id
    }
}

/// A logger plus one job's identity, turned into metadata only when a line is emitted.
struct JobLogger {
    let logger: Logger
    let job: String
    let task: String
    let queue: String

    /// Every value may carry a job's bytes (its id, its task name, the error its task threw), so
    /// each goes through ``SafeText``: a newline in a task name must not forge a log line.
    private func metadata(_ extra: Logger.Metadata) -> Logger.Metadata {
        var metadata = extra.mapValues { Logger.MetadataValue.string(SafeText.escape("\($0)")) }
        metadata["job"] = .string(SafeText.escape(job))
        metadata["task"] = .string(SafeText.escape(task))
        metadata["queue"] = .string(SafeText.escape(queue))
        return metadata
    }

    func debug(_ message: @autoclosure () -> Logger.Message, metadata extra: Logger.Metadata = [:]) {
        logger.debug(message(), metadata: metadata(extra))
    }
    func notice(_ message: @autoclosure () -> Logger.Message, metadata extra: Logger.Metadata = [:]) {
        logger.notice(message(), metadata: metadata(extra))
    }
    func warning(_ message: @autoclosure () -> Logger.Message, metadata extra: Logger.Metadata = [:]) {
        logger.warning(message(), metadata: metadata(extra))
    }
    func error(_ message: @autoclosure () -> Logger.Message, metadata extra: Logger.Metadata = [:]) {
        logger.error(message(), metadata: metadata(extra))
    }
}

/// A task attempt that ran longer than its timeout; it was cancelled.
public struct TaskTimeoutError: Error, CustomStringConvertible, Sendable {
    /// The limit that was exceeded.
    public let timeout: Duration
    /// `task timed out after N s`.
    public var description: String { "task timed out after \(timeout.timeInterval) s and was cancelled" }
}

/// Runs `body`, cancelling it and throwing ``TaskTimeoutError`` when it outlives `timeout`.
func withTimeout<T: Sendable>(_ timeout: Duration?, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    guard let timeout else { return try await body() }
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        let first = try await group.next() ?? nil
        group.cancelAll()
        guard let value = first else { throw TaskTimeoutError(timeout: timeout) }
        return value
    }
}

/// swift-metrics instruments, created once per queue and outcome rather than per job.
struct JobMetrics: Sendable {
    enum Outcome: String, CaseIterable, Sendable { case processed, failed, dead, expired }
    private let counters: [String: [Outcome: Counter]]
    private let timers: [String: Timer]

    init(queues: [String]) {
        var counters: [String: [Outcome: Counter]] = [:]
        var timers: [String: Timer] = [:]
        for queue in queues {
            counters[queue] = Dictionary(uniqueKeysWithValues: Outcome.allCases.map {
                ($0, Counter(label: "airlock_jobs_total", dimensions: [("queue", queue), ("outcome", $0.rawValue)]))
            })
            timers[queue] = Timer(label: "airlock_job_duration", dimensions: [("queue", queue)])
        }
        self.counters = counters
        self.timers = timers
    }

    func count(_ outcome: Outcome, queue: String) { counters[queue]?[outcome]?.increment() }

    func finished(_ outcome: Outcome, queue: String, after duration: Duration) {
        count(outcome, queue: queue)
        let (seconds, attoseconds) = duration.components
        timers[queue]?.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
