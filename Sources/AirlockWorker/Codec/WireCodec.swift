public import Airlock
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How a worker reads the messages of its queues and writes what it sends back (a retry, a dead
/// letter, a result): one conformance per message format, so the engine has no protocol branches.
///
/// ``NativeCodec`` reads and writes Airlock envelopes (`docs/PROTOCOL.md`); ``CeleryCodec`` Celery
/// protocol v2 messages as kombu's Redis transport stores them, with results in the layout of
/// Celery's Redis result backend (`docs/CELERY.md`).
public protocol WireCodec: Sendable {
    /// The format's name, as operators see it (`native`, `celery`).
    var name: String { get }

    /// Reads a message; a message that can never run throws, and is dead-lettered with the reason.
    func decode(_ raw: [UInt8], queue: String) throws(EnvelopeError) -> DecodedJob

    /// The message that runs `job` again, one attempt later, due at `dueAt` (ms), after `error`.
    func retry(_ job: DecodedJob, dueAt: Int64, error: any Error) -> [UInt8]

    /// The dead-letter entry of `job`, which failed for good.
    func deadLetter(_ job: DecodedJob, reason: String, errorType: String, attempts: Int, failedAt: Int64) -> [UInt8]

    /// Fields added to the dead-letter entry of a message that could not be read.
    var unreadableFields: [String: JSONValue] { get }

    /// The result record to store for `job`, when its producer wants one.
    func result(of job: DecodedJob, _ outcome: TaskOutcome, expiry: Duration) -> StoredResult?
}

extension WireCodec {
    /// No extra fields.
    public var unreadableFields: [String: JSONValue] { [:] }

    /// No results.
    public func result(of job: DecodedJob, _ outcome: TaskOutcome, expiry: Duration) -> StoredResult? { nil }

    /// The dead-letter entry of a message that could not be read: `task: null`, the reason, and
    /// the bytes kept as `raw` (UTF-8) or `raw_base64`, so nothing is lost and `dead retry` can
    /// send it again unchanged. Its id is the message's own when it has a readable one.
    public func unreadable(_ raw: [UInt8], queue: String, reason: String, failedAt: Int64) -> [UInt8] {
        var fields: [String: JSONValue] = [
            "v": 1, "id": .string(DecodedJob.readableID(of: raw) ?? UUID().uuidString.lowercased()), "task": .null,
            "queue": .string(queue), "error": .string("malformed message: \(reason)"), "failed_at": .int(Int(failedAt)), "attempts": 0,
        ]
        fields.merge(unreadableFields) { _, new in new }
        if let text = String(validating: raw, as: UTF8.self) {
            fields["raw"] = .string(text)
        } else {
            fields["raw_base64"] = .string(Data(raw).base64EncodedString())
        }
        var bytes: [UInt8] = []
        JSONWriter.write(.object(fields), into: &bytes)
        return bytes
    }
}

/// A message the engine can run: the envelope view every format maps to, and whatever the codec
/// needs to write the message back in its own format.
public struct DecodedJob: Sendable {
    /// Identity, task, arguments, attempt and times, whatever the format.
    public var envelope: Envelope
    /// The codec's own reading of the message (the Celery codec keeps the whole message).
    public let carried: (any Sendable)?

    /// Creates a decoded job.
    public init(envelope: Envelope, carried: (any Sendable)? = nil) {
        self.envelope = envelope
        self.carried = carried
    }

    /// The `id` of a message that is not a valid job, when it has a readable one (a JSON object
    /// with a non-empty string `id`, or a Celery `headers.id`), so `dead show <id>` finds it under
    /// the id its producer knows.
    public static func readableID(of raw: [UInt8]) -> String? {
        guard let value = try? JSONParser.parse(raw), case .object(let fields) = value,
              case .string(let id)? = fields["id"] ?? fields["headers"]?.objectValue?["id"], !id.isEmpty, id.count <= 200
        else { return nil }
        return id
    }
}

/// How a task attempt ended, for the result record.
public enum TaskOutcome: Sendable {
    /// It returned this value.
    case success(JSONValue)
    /// It failed for good: the reason and the error's type name.
    case failure(reason: String, errorType: String)
}

/// A result to store with a settlement, written only if the job was still held.
public struct StoredResult: Sendable, Hashable {
    /// Where it is stored (for Redis, the key).
    public var key: String
    /// The stored bytes.
    public var value: [UInt8]
    /// How long it is kept.
    public var expirySeconds: Int
    /// A list that gets one entry when the result is stored (expiring with it), so a producer
    /// blocked on it wakes without polling; `nil` publishes the result on a channel named
    /// like its key instead (what Celery's result backend does).
    public var notifyKey: String?
    /// Creates a result record.
    public init(key: String, value: [UInt8], expirySeconds: Int, notifyKey: String? = nil) {
        self.key = key
        self.value = value
        self.expirySeconds = expirySeconds
        self.notifyKey = notifyKey
    }
}
