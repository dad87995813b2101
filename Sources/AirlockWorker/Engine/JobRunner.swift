package import Airlock
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
package import Logging

/// Runs one fetched job and decides how it settles.
///
/// The message is read by the source's codec; input that can never succeed (unreadable, too
/// large, unknown task, arguments that do not decode, numbers out of range) is dead-lettered at
/// once with the reason. A task runs inside an airlock scope whose executor is the source's
/// follow-up executor, so the jobs it enqueues are dispatched atomically, and only if it succeeds.
package struct JobRunner: Sendable {
    let registry: TaskRegistry
    let configuration: WorkerConfiguration
    let codec: any WireCodec
    let followUps: any Executor
    let logger: Logger
    let metrics: WorkerMetrics

    /// A runner; the worker builds one per run (the fuzz harness one per process).
    package init(registry: TaskRegistry, configuration: WorkerConfiguration, codec: any WireCodec, followUps: any Executor, logger: Logger, metrics: WorkerMetrics) {
        self.registry = registry
        self.configuration = configuration
        self.codec = codec
        self.followUps = followUps
        self.logger = logger
        self.metrics = metrics
    }

    /// Runs `job` and decides its settlement, which carries the instruments its outcome is
    /// counted on once the slot knows it for sure (a shutdown may still turn it into a return).
    package func run(_ job: Job) async -> Settlement {
        let fetched = job.fetched
        guard fetched.raw.count <= configuration.maxMessageBytes else {
            return unreadable(fetched, reason: "the message is \(fetched.raw.count) bytes, over this worker's limit of \(configuration.maxMessageBytes) (maxMessageBytes, --max-message-bytes); it was not read")
        }
        let decoded: DecodedJob
        do {
            decoded = try codec.decode(fetched.raw, queue: fetched.queue)
        } catch {
            return unreadable(fetched, reason: error.description)
        }
        let instruments = metrics.instruments(queue: fetched.queue, task: decoded.envelope.task)
        var settlement: Settlement
        if let batch = BatchMembership(extra: decoded.envelope.extra) {
            // What the task enqueues joins its batch.
            settlement = await BatchMembership.$current.withValue(batch) { await run(fetched, decoded, instruments) }
            settlement.batch = BatchCount(batch: batch, jobID: decoded.envelope.id)
        } else {
            settlement = await run(fetched, decoded, instruments)
        }
        settlement.instruments = instruments
        return settlement
    }

    private func run(_ fetched: FetchedJob, _ decoded: DecodedJob, _ instruments: WorkerMetrics.TaskInstruments) async -> Settlement {
        var decoded = decoded
        let envelope = decoded.envelope
        // Metadata goes with each log call, not onto the logger: some handlers format metadata
        // eagerly whenever it is set, which cost more than a no-op job.
        let logger = JobLogger(logger: self.logger, job: envelope.id, task: envelope.task, queue: fetched.queue)

        guard let entry = registry[envelope.task] else {
            logger.error("unknown task; dead-lettered")
            return dead(fetched, decoded, reason: "unknown task '\(envelope.task)': no task of that name is registered on this worker",
                        errorType: "NotRegistered", attempts: envelope.attempt)
        }
        // A task that always keeps its result asks for it on the job's behalf.
        if let keep = entry.keepResult, envelope.extra[NativeCodec.resultTTLField] == nil {
            decoded.envelope.extra[NativeCodec.resultTTLField] = .int(Int(keep.wholeMilliseconds))
        }
        if let eta = envelope.eta, eta > epochMilliseconds() + 5 {
            // Celery producers put future tasks straight on the queue; they wait in the source, not here.
            logger.debug("job not due yet; moved to the delayed jobs")
            return Settlement(job: fetched, outcome: .postpone(dueAt: eta))
        }
        if let expires = envelope.expires, epochMilliseconds() > expires {
            logger.notice("job expired before it started; dropped")
            return Settlement(job: fetched, outcome: .expired)
        }
        let body: @Sendable (TaskContext) async throws -> JSONValue
        do {
            body = try entry.prepare(TaskArguments(args: envelope.args, kwargs: envelope.kwargs))
        } catch {
            logger.error("arguments do not fit the task; dead-lettered", metadata: ["error": "\(error)"])
            return dead(fetched, decoded, reason: "\(error)", errorType: "TypeError", attempts: envelope.attempt)
        }

        let maxRetries = envelope.maxRetries ?? entry.maxRetries ?? configuration.defaultMaxRetries
        let context = TaskContext(
            jobID: envelope.id, taskName: envelope.task, queue: fetched.queue, attempt: envelope.attempt, maxRetries: maxRetries,
            enqueuedAt: Date(timeIntervalSince1970: Double(envelope.enqueuedAt) / 1000),
            scheduledAt: envelope.extra[PeriodicJob.scheduledAtField]?.intValue.map { Date(timeIntervalSince1970: Double($0) / 1000) },
            schedule: envelope.extra[PeriodicJob.scheduleField]?.stringValue,
            batch: envelope.extra[BatchMembership.idField]?.stringValue, logger: self.logger)
        // A delayed or retried job waits from its due time, not from its first enqueue.
        let readyAt = max(envelope.enqueuedAt, envelope.eta ?? 0)
        if readyAt > 0 { instruments.started(readyAt: readyAt, now: epochMilliseconds()) }
        instruments.running(1)
        defer { instruments.running(-1) }
        let started = ContinuousClock.now
        do {
            let value = try await JobSpan.around(envelope, queue: fetched.queue) {
                try await Airlock.scope(executor: followUps) {
                    try await withTimeout(entry.timeout ?? configuration.defaultTimeout) { try await body(context) }
                }
            }
            instruments.runDuration.record(duration: ContinuousClock.now - started)
            logger.debug("job succeeded")
            return Settlement(job: fetched, outcome: .acknowledge, result: codec.result(of: decoded, .success(value), expiry: configuration.resultExpiry))
        } catch {
            instruments.runDuration.record(duration: ContinuousClock.now - started)
            // `attempt` is at most Envelope.Limits.attempts.upperBound: no overflow.
            let failures = envelope.attempt + 1
            if !(error is PermanentFailure), envelope.attempt < maxRetries {
                let strategy = entry.retry ?? configuration.retryStrategy
                // A strategy may answer anything; the due time stays a valid wire timestamp.
                let due = min(
                    epochMilliseconds().addingSaturated(strategy.delay(afterFailures: failures).wholeMilliseconds),
                    acceptedEpochMilliseconds.upperBound)
                logger.warning("job failed; retry scheduled", metadata: ["error": "\(error)", "attempt": "\(failures)", "max_retries": "\(maxRetries)"])
                return Settlement(job: fetched, outcome: .retry(message: codec.retry(decoded, dueAt: due, error: error), dueAt: due))
            }
            logger.error("job failed for the last time; dead-lettered", metadata: ["error": "\(error)", "attempts": "\(failures)"])
            return dead(fetched, decoded, reason: String(describing: error), errorType: "\(type(of: error))", attempts: failures)
        }
    }

    private func dead(_ fetched: FetchedJob, _ decoded: DecodedJob, reason: String, errorType: String, attempts: Int) -> Settlement {
        Settlement(
            job: fetched,
            outcome: .dead(entry: codec.deadLetter(decoded, reason: reason, errorType: errorType, attempts: attempts, failedAt: epochMilliseconds())),
            result: codec.result(of: decoded, .failure(reason: reason, errorType: errorType), expiry: configuration.resultExpiry))
    }

    /// A message that cannot be read keeps its bytes in the dead letter.
    private func unreadable(_ fetched: FetchedJob, reason: String) -> Settlement {
        logger.error("malformed job; dead-lettered", metadata: ["queue": "\(SafeText.escape(fetched.queue))", "error": "\(SafeText.escape(reason))"])
        var settlement = Settlement(job: fetched, outcome: .dead(entry: codec.unreadable(fetched.raw, queue: fetched.queue, reason: reason, failedAt: epochMilliseconds())))
        settlement.instruments = metrics.instruments(queue: fetched.queue, task: nil)
        return settlement
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

/// Runs `body`, cancelling it and throwing ``TaskTimeoutError`` when it outlives `timeout`.
/// The timeout is a ``Deadlines`` sleep, not `Task.sleep`: a job that finishes first would leave
/// a `Task.sleep`'s timer allocated until the timeout, one per job.
func withTimeout<T: Sendable>(
    _ timeout: Duration?, deadlines: Deadlines = .shared, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    guard let timeout else { return try await body() }
    let deadline = ContinuousClock.now + timeout
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            guard await deadlines.sleep(until: deadline) else { throw CancellationError() }
            return nil
        }
        let first = try await group.next() ?? nil
        group.cancelAll()
        guard let value = first else { throw TaskTimeoutError(timeout: timeout) }
        return value
    }
}
