public import Airlock
#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// An intent turned into the job a producer writes: its envelope bytes and where they go. Built
/// the same way by every producer (`RedisExecutor`, ``InMemoryQueues``), so every back end
/// receives the same jobs and refuses the same invalid ones.
public struct OutgoingJob: Sendable {
    /// Where the job is placed.
    public enum Placement: Sendable, Equatable {
        /// The back of the ready jobs (the usual case).
        case back
        /// The consuming end of the ready jobs, ahead of the backlog (priority above 0).
        case front
        /// Among the delayed jobs, until ``OutgoingJob/dueAt``.
        case delayed
    }

    /// The job id (the intent's id).
    public var id: String
    /// The queue.
    public var queue: String
    /// Where it goes.
    public var placement: Placement
    /// When it is due, in ms since the epoch (now, when it is not delayed).
    public var dueAt: Int64
    /// The producer's idempotency key, if any.
    public var idempotencyKey: String?
    /// The envelope's JSON bytes.
    public var bytes: [UInt8]

    /// The job for `intent`, dispatched at `now`.
    /// - Parameters:
    ///   - defaultQueue: the queue of an intent that names none.
    ///   - origin: written when the intent has no origin of its own.
    ///   - maxBytes: the largest envelope accepted.
    ///   - trace: the producer's trace context (``TraceContext/current()``, taken once per batch).
    /// - Throws: ``EnqueueError`` when the intent cannot become a valid job; nothing should be sent.
    public init(intent: Intent, now: Date, defaultQueue: String, origin: String?, maxBytes: Int, trace: TraceContext? = nil) throws(EnqueueError) {
        let options = intent.options
        let queue = options.queue ?? defaultQueue
        let nowMS = epochMilliseconds(now)
        let due = options.dueDate(dispatchedAt: now).map { epochMilliseconds($0) }
        let expires = options.expiryDate(dispatchedAt: now).map { epochMilliseconds($0) }
        if let problem = Self.problem(queue: queue, due: due, expires: expires, options: options) {
            throw EnqueueError(.invalidIntent, "cannot dispatch \(SafeText.escape(intent.name)) (\(intent.id)): \(problem); nothing was enqueued")
        }
        let envelope = Envelope(
            id: intent.id.jobID, task: intent.taskName, queue: queue, enqueuedAt: nowMS, eta: due, expires: expires,
            maxRetries: options.maxRetries, origin: intent.origin ?? origin, priority: options.priority,
            idempotencyKey: options.idempotencyKey, trace: trace, extra: options.extra)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        envelope.writeHeader(into: &bytes)
        do {
            switch intent.payload {
            case .typed(let task):
                // Typed arguments go straight from the encoder into the envelope, never through a JSONValue tree.
                let fields = try JSONBytesEncoder.encode(task)
                guard fields.first == UInt8(ascii: "{") else {
                    throw TaskArgumentsError("task \(intent.taskName) must encode as a keyed container (a JSON object)")
                }
                bytes.append(contentsOf: #","args":[],"kwargs":"#.utf8)
                bytes.append(contentsOf: fields)
            case .dynamic(let arguments):
                bytes.append(contentsOf: #","args":"#.utf8)
                JSONWriter.write(.array(arguments.args), into: &bytes)
                bytes.append(contentsOf: #","kwargs":"#.utf8)
                JSONWriter.write(.object(arguments.kwargs), into: &bytes)
            }
        } catch {
            throw EnqueueError(.encodingFailed, "cannot encode the arguments of \(SafeText.escape(intent.name)): \(error)")
        }
        envelope.writeTrailer(into: &bytes)
        guard bytes.count <= maxBytes else {
            throw EnqueueError(
                .payloadTooLarge,
                "the envelope of \(SafeText.escape(intent.name)) (\(intent.id)) is \(bytes.count) bytes, over the limit of \(maxBytes); "
                    + "store large data elsewhere and pass a reference, or raise maxPayloadBytes")
        }
        let delayed = due.map { $0 > nowMS } ?? false
        self.id = envelope.id
        self.queue = queue
        self.placement = delayed ? .delayed : ((options.priority ?? 0) > 0 ? .front : .back)
        self.dueAt = due ?? nowMS
        self.idempotencyKey = options.idempotencyKey
        self.bytes = bytes
    }

    /// A job whose envelope is already encoded — read back from a PostgreSQL outbox row, say —
    /// to be sent as is. Nothing is checked here: ``problem(maxBytes:)`` says what a producer
    /// would refuse.
    public init(id: String, queue: String, placement: Placement, dueAt: Int64, idempotencyKey: String?, bytes: [UInt8]) {
        self.id = id
        self.queue = queue
        self.placement = placement
        self.dueAt = dueAt
        self.idempotencyKey = idempotencyKey
        self.bytes = bytes
    }

    /// What would make a producer refuse to send this already-encoded job (an envelope over
    /// `maxBytes`, a queue name outside the rule, a due time outside the wire range), or `nil`.
    /// The envelope's own fields are not parsed: `Envelope.decode` does that.
    public func problem(maxBytes: Int) -> String? {
        if let problem = QueueName.problem(with: queue) { return problem }
        if bytes.count > maxBytes {
            return "the envelope is \(bytes.count) bytes, over the limit of \(maxBytes)"
        }
        if !acceptedEpochMilliseconds.contains(dueAt) { return "its due time lies outside the years 1970 to 9999" }
        return nil
    }

    /// What would make a worker refuse the job, found before anything is sent.
    static func problem(queue: String, due: Int64?, expires: Int64?, options: DispatchOptions) -> String? {
        if let problem = QueueName.problem(with: queue) { return problem }
        if let due, !acceptedEpochMilliseconds.contains(due) { return "its eta/countdown lies outside the years 1970 to 9999" }
        if let expires, !acceptedEpochMilliseconds.contains(expires) { return "its expires lies outside the years 1970 to 9999" }
        if let retries = options.maxRetries, !Envelope.Limits.attempts.contains(retries) {
            return "maxRetries \(retries) is not in \(Envelope.Limits.attempts.lowerBound)...\(Envelope.Limits.attempts.upperBound)"
        }
        if let priority = options.priority, !Envelope.Limits.priorities.contains(priority) {
            return "priority \(priority) is not in \(Envelope.Limits.priorities.lowerBound)...\(Envelope.Limits.priorities.upperBound)"
        }
        return nil
    }
}

/// An intent that cannot become a job; nothing was sent.
public struct EnqueueError: AirlockError {
    /// The kind of problem, stable for code that branches on it.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Code: String, Sendable, Hashable { case payloadTooLarge, encodingFailed, invalidIntent }
        fileprivate let code: Code
        /// The envelope exceeded the payload limit.
        public static let payloadTooLarge = Kind(code: .payloadTooLarge)
        /// The task's arguments could not be encoded.
        public static let encodingFailed = Kind(code: .encodingFailed)
        /// A queue name outside the rule, a due time past year 9999, a retry count out of range.
        public static let invalidIntent = Kind(code: .invalidIntent)
        /// The kind's name.
        public var description: String { code.rawValue }
    }

    /// The kind of problem.
    public let kind: Kind
    /// What is wrong, in one line.
    public let description: String

    init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
