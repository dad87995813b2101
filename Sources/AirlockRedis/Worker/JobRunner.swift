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

    func run(_ job: Job) async -> Finisher.Outcome {
        let envelope: Envelope
        do {
            envelope = try Envelope.decode(job.raw)
        } catch {
            return dead(job, reason: error.description, attempts: 0)
        }
        var logger = self.logger
        logger[metadataKey: "job"] = "\(envelope.id)"
        logger[metadataKey: "task"] = "\(envelope.task)"
        logger[metadataKey: "queue"] = "\(job.queue)"

        guard let entry = registry[envelope.task] else {
            logger.error("unknown task; dead-lettered")
            return dead(envelope, reason: "unknown task '\(envelope.task)': no task of that name is registered on this worker", attempts: envelope.attempt)
        }
        if let expires = envelope.expires, epochMilliseconds() > expires {
            logger.notice("job expired before it started; dropped")
            metrics.count(.expired, queue: job.queue)
            return .expired
        }
        let body: @Sendable (TaskContext) async throws -> Void
        do {
            body = try entry.prepare(TaskArguments(args: envelope.args, kwargs: envelope.kwargs))
        } catch {
            logger.error("arguments do not fit the task; dead-lettered", metadata: ["error": "\(error)"])
            return dead(envelope, reason: "\(error)", attempts: envelope.attempt)
        }

        let maxRetries = envelope.maxRetries ?? entry.maxRetries ?? configuration.defaultMaxRetries
        let context = TaskContext(
            jobID: envelope.id, taskName: envelope.task, queue: job.queue, attempt: envelope.attempt, maxRetries: maxRetries,
            enqueuedAt: Date(timeIntervalSince1970: Double(envelope.enqueuedAt) / 1000), logger: logger)
        let started = ContinuousClock.now
        do {
            try await Airlock.scope(executor: followUps) {
                try await withTimeout(entry.timeout ?? configuration.defaultTimeout) { try await body(context) }
            }
            metrics.finished(.processed, queue: job.queue, after: ContinuousClock.now - started)
            logger.debug("job succeeded")
            return .acknowledge
        } catch {
            metrics.finished(.failed, queue: job.queue, after: ContinuousClock.now - started)
            let failures = envelope.attempt + 1
            if !(error is PermanentFailure), envelope.attempt < maxRetries {
                let strategy = entry.retry ?? configuration.retryStrategy
                let due = epochMilliseconds() + Int64(strategy.delay(afterFailures: failures).timeInterval * 1000)
                var retry = envelope
                retry.attempt += 1
                retry.eta = due
                retry.extra["last_error"] = .string(String(describing: error))
                logger.warning("job failed; retry scheduled", metadata: ["error": "\(error)", "attempt": "\(failures)", "max_retries": "\(maxRetries)"])
                return .retry(envelope: retry.encoded(), dueAt: due)
            }
            logger.error("job failed for the last time; dead-lettered", metadata: ["error": "\(error)", "attempts": "\(failures)"])
            return dead(envelope, reason: String(describing: error), attempts: failures)
        }
    }

    private func dead(_ envelope: Envelope, reason: String, attempts: Int) -> Finisher.Outcome {
        var entry = envelope
        entry.extra["error"] = .string(reason)
        entry.extra["failed_at"] = .int(Int(epochMilliseconds()))
        entry.extra["attempts"] = .int(attempts)
        entry.extra["last_error"] = nil
        metrics.count(.dead, queue: envelope.queue)
        return .dead(entry: entry.encoded())
    }

    /// A message that is not an envelope keeps its bytes: as a string when they are UTF-8, else base64.
    private func dead(_ job: Job, reason: String, attempts: Int) -> Finisher.Outcome {
        logger.error("malformed job; dead-lettered", metadata: ["queue": "\(job.queue)", "error": "\(reason)"])
        var fields: [String: JSONValue] = [
            "v": 1, "id": .string(UUID().uuidString.lowercased()), "task": .null, "queue": .string(job.queue),
            "error": .string("malformed message: \(reason)"), "failed_at": .int(Int(epochMilliseconds())), "attempts": .int(attempts),
        ]
        if let text = String(validating: job.raw, as: UTF8.self) {
            fields["raw"] = .string(text)
        } else {
            fields["raw_base64"] = .string(Data(job.raw).base64EncodedString())
        }
        metrics.count(.dead, queue: job.queue)
        var bytes: [UInt8] = []
        JSONWriter.write(.object(fields), into: &bytes)
        return .dead(entry: bytes)
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
func withTimeout(_ timeout: Duration?, _ body: @escaping @Sendable () async throws -> Void) async throws {
    guard let timeout else { return try await body() }
    try await withThrowingTaskGroup(of: Bool.self) { group in
        group.addTask {
            try await body()
            return true
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return false
        }
        let finished = try await group.next() ?? false
        group.cancelAll()
        if !finished { throw TaskTimeoutError(timeout: timeout) }
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
