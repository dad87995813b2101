public import Airlock
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Celery protocol v2 messages as kombu's Redis transport stores them (`docs/CELERY.md`): a retry
/// is the same message with `retries + 1`, a new `eta` and a fresh delivery tag, so a Celery worker
/// could take it too; a dead letter keeps the whole message under `message`; results go where
/// Celery's Redis result backend keeps them, so a Python caller's `AsyncResult.get()` returns the
/// value or raises the failure.
public struct CeleryCodec: WireCodec {
    /// Creates the codec.
    public init() {}

    /// `celery`.
    public var name: String { "celery" }

    /// Parses and validates a Celery message into the envelope view.
    public func decode(_ raw: [UInt8], queue: String) throws(EnvelopeError) -> DecodedJob {
        let message = try CeleryMessage.decode(raw)
        return DecodedJob(envelope: message.envelope(queue: queue), carried: message)
    }

    /// The message one retry later, due at `dueAt`.
    public func retry(_ job: DecodedJob, dueAt: Int64, error: any Error) -> [UInt8] {
        message(of: job).retried(eta: Date(timeIntervalSince1970: Double(dueAt) / 1000)).encoded()
    }

    /// The envelope view plus the dead-letter fields, `protocol: celery` and the message itself
    /// (so it can be re-sent as it was).
    public func deadLetter(_ job: DecodedJob, reason: String, errorType: String, attempts: Int, failedAt: Int64) -> [UInt8] {
        var entry = job.envelope
        entry.extra["error"] = .string(reason)
        entry.extra["failed_at"] = .int(Int(failedAt))
        entry.extra["attempts"] = .int(attempts)
        entry.extra["protocol"] = "celery"
        entry.extra["message"] = .object(message(of: job).fields)
        return entry.encoded()
    }

    /// `protocol: celery`.
    public var unreadableFields: [String: JSONValue] { ["protocol": "celery"] }

    /// A `celery-task-meta-<id>` record, unless the message asked to ignore the result.
    public func result(of job: DecodedJob, _ outcome: TaskOutcome, expiry: Duration) -> StoredResult? {
        guard message(of: job).wantsResult else { return nil }
        let id = job.envelope.id
        let value: [UInt8]
        switch outcome {
        case .success(let result): value = CeleryResult.success(taskID: id, value: result)
        case .failure(let reason, let errorType): value = CeleryResult.failure(taskID: id, error: reason, typeName: errorType)
        }
        return StoredResult(key: CeleryResult.key(taskID: id), value: value, expirySeconds: Int(expiry.timeInterval))
    }

    private func message(of job: DecodedJob) -> CeleryMessage {
        // Every DecodedJob this codec hands out carries its message; one built elsewhere gets a
        // fresh message for the same task, so a retry is still a valid Celery message.
        job.carried as? CeleryMessage ?? CeleryMessage.make(
            id: job.envelope.id, task: job.envelope.task, args: job.envelope.args, kwargs: job.envelope.kwargs,
            queue: job.envelope.queue, retries: job.envelope.attempt)
    }
}

extension WireCodec where Self == CeleryCodec {
    /// Celery protocol v2.
    public static var celery: CeleryCodec { CeleryCodec() }
}
