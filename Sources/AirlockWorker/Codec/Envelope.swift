public import Airlock
import Foundation

/// One job on the wire: a JSON object, UTF-8, version 1. See `docs/PROTOCOL.md`.
///
/// Readers ignore fields they do not know but keep them in ``extra``, so a job re-queued by a
/// worker (retry, dead letter, recovery) carries every field another tool put there.
public struct Envelope: Sendable, Hashable {
    /// Format version; this code writes and reads 1.
    public var version: Int = 1
    /// The job id (a UUID string).
    public var id: String
    /// The task name a worker looks up.
    public var task: String
    /// Positional arguments.
    public var args: [JSONValue]
    /// Keyword arguments.
    public var kwargs: [String: JSONValue]
    /// The queue the job was routed to.
    public var queue: String
    /// When the job was first enqueued, in milliseconds since the epoch.
    public var enqueuedAt: Int64
    /// Not before this moment (ms since the epoch), or `nil`.
    public var eta: Int64?
    /// Drop, unrun, after this moment (ms since the epoch), or `nil`.
    public var expires: Int64?
    /// 0 on first delivery; each retry adds one.
    public var attempt: Int = 0
    /// Retries allowed after the first attempt; `nil` means the task's or worker's default.
    public var maxRetries: Int?
    /// Free-form provenance.
    public var origin: String?
    /// Priority as given by the producer (see `docs/PROTOCOL.md` for the model).
    public var priority: Int?
    /// The idempotency key the producer gave, if any.
    public var idempotencyKey: String?
    /// The W3C trace context of the span that enqueued the job (`traceparent`, and `tracestate`
    /// when the tracer uses one), written only while a tracer records a span; the worker's span
    /// for the run continues that trace. See ``TraceContext``.
    public var trace: TraceContext?
    /// Every other field, preserved verbatim.
    public var extra: [String: JSONValue] = [:]

    /// Creates an envelope.
    public init(
        id: String, task: String, args: [JSONValue] = [], kwargs: [String: JSONValue] = [:], queue: String,
        enqueuedAt: Int64, eta: Int64? = nil, expires: Int64? = nil, attempt: Int = 0, maxRetries: Int? = nil,
        origin: String? = nil, priority: Int? = nil, idempotencyKey: String? = nil, trace: TraceContext? = nil,
        extra: [String: JSONValue] = [:]
    ) {
        self.id = id
        self.task = task
        self.args = args
        self.kwargs = kwargs
        self.queue = queue
        self.enqueuedAt = enqueuedAt
        self.eta = eta
        self.expires = expires
        self.attempt = attempt
        self.maxRetries = maxRetries
        self.origin = origin
        self.priority = priority
        self.idempotencyKey = idempotencyKey
        self.trace = trace
        self.extra = extra
    }

    static let knownFields = Set(FieldIndex.names)

    // MARK: Encoding

    /// The JSON bytes of this envelope.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        writeHeader(into: &out)
        out.append(contentsOf: #","args":"#.utf8)
        JSONWriter.write(.array(args), into: &out)
        out.append(contentsOf: #","kwargs":"#.utf8)
        JSONWriter.write(.object(kwargs), into: &out)
        writeTrailer(into: &out)
        return out
    }

    /// Writes everything before the arguments, so an executor can splice pre-encoded arguments.
    func writeHeader(into out: inout [UInt8]) {
        out.append(contentsOf: #"{"v":"#.utf8)
        out.append(contentsOf: String(version).utf8)
        out.append(contentsOf: #","id":"#.utf8)
        JSONWriter.writeString(id, into: &out)
        out.append(contentsOf: #","task":"#.utf8)
        JSONWriter.writeString(task, into: &out)
    }

    /// Writes everything after the arguments and closes the object.
    func writeTrailer(into out: inout [UInt8]) {
        out.append(contentsOf: #","queue":"#.utf8)
        JSONWriter.writeString(queue, into: &out)
        out.append(contentsOf: #","enqueued_at":"#.utf8)
        out.append(contentsOf: String(enqueuedAt).utf8)
        Self.field("eta", eta.map { .int(Int($0)) }, into: &out)
        Self.field("expires", expires.map { .int(Int($0)) }, into: &out)
        out.append(contentsOf: #","attempt":"#.utf8)
        out.append(contentsOf: String(attempt).utf8)
        Self.field("max_retries", maxRetries.map { .int($0) }, into: &out)
        Self.field("origin", origin.map { .string($0) }, into: &out)
        if let priority { Self.field("priority", .int(priority), into: &out) }
        if let idempotencyKey { Self.field("idempotency_key", .string(idempotencyKey), into: &out) }
        if let trace {
            Self.field("traceparent", .string(trace.traceparent), into: &out)
            if let state = trace.tracestate { Self.field("tracestate", .string(state), into: &out) }
        }
        for (key, value) in extra where !Self.knownFields.contains(key) {
            out.append(UInt8(ascii: ","))
            JSONWriter.writeString(key, into: &out)
            out.append(UInt8(ascii: ":"))
            JSONWriter.write(value, into: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    private static func field(_ name: String, _ value: JSONValue?, into out: inout [UInt8]) {
        out.append(UInt8(ascii: ","))
        JSONWriter.writeString(name, into: &out)
        out.append(UInt8(ascii: ":"))
        JSONWriter.write(value ?? .null, into: &out)
    }

    // MARK: Decoding

    /// Parses and validates an envelope; every failure names the field and the problem.
    public static func decode(_ bytes: some Collection<UInt8>) throws(EnvelopeError) -> Envelope {
        guard !bytes.isEmpty else { throw EnvelopeError("empty message") }
        // Known fields go straight to their slots; only unknown ones land in a dictionary.
        var known = [JSONValue?](repeating: nil, count: FieldIndex.count)
        var extra: [String: JSONValue] = [:]
        do {
            try JSONParser.forEachMember(of: Array(bytes)) { key, value in
                if let index = FieldIndex.of(key) { known[index] = value } else { extra[key] = value }
            }
        } catch {
            if error.message == "expected a JSON object" { throw EnvelopeError("envelope is not a JSON object") }
            throw EnvelopeError("malformed JSON: \(error)")
        }
        return try decode(field: { name in FieldIndex.of(name).flatMap { known[$0] } }, extra: extra)
    }

    /// The known fields' positions, for ``decode(_:)``'s fast path.
    private enum FieldIndex {
        static let names = [
            "v", "id", "task", "args", "kwargs", "queue", "enqueued_at", "eta", "expires", "attempt", "max_retries", "origin", "priority",
            "idempotency_key", "traceparent", "tracestate",
        ]
        static let count = names.count
        static func of(_ key: String) -> Int? { names.firstIndex(of: key) }
    }

    package static func decode(fields: [String: JSONValue]) throws(EnvelopeError) -> Envelope {
        try decode(field: { fields[$0] }, extra: fields.filter { !knownFields.contains($0.key) })
    }

    /// Validates the known fields (read through `field`) and keeps `extra` as they are.
    private static func decode(field fields: (String) -> JSONValue?, extra: [String: JSONValue]) throws(EnvelopeError) -> Envelope {
        if let version = fields("v"), version != .int(1) {
            throw EnvelopeError("unsupported envelope version \(version) (this worker reads version 1)")
        }
        guard let id = fields("id")?.stringValue, !id.isEmpty else { throw EnvelopeError("missing or non-string field 'id'") }
        guard let task = fields("task")?.stringValue, !task.isEmpty else {
            throw EnvelopeError("missing or non-string field 'task'")
        }
        let args: [JSONValue]
        switch fields("args") {
        case nil, .null?: args = []
        case .array(let a)?: args = a
        default: throw EnvelopeError("field 'args' must be an array")
        }
        let kwargs: [String: JSONValue]
        switch fields("kwargs") {
        case nil, .null?: kwargs = [:]
        case .object(let o)?: kwargs = o
        default: throw EnvelopeError("field 'kwargs' must be an object")
        }
        guard let queue = fields("queue")?.stringValue else { throw EnvelopeError("missing or non-string field 'queue'") }
        var envelope = Envelope(
            id: id, task: task, args: args, kwargs: kwargs, queue: queue,
            enqueuedAt: Int64(try integer(fields, "enqueued_at", in: Limits.timestamps) ?? 0),
            eta: try integer(fields, "eta", in: Limits.timestamps).map(Int64.init),
            expires: try integer(fields, "expires", in: Limits.timestamps).map(Int64.init),
            attempt: try integer(fields, "attempt", in: Limits.attempts) ?? 0,
            maxRetries: try integer(fields, "max_retries", in: Limits.attempts),
            origin: try string(fields, "origin"),
            priority: try integer(fields, "priority", in: Limits.priorities),
            idempotencyKey: try string(fields, "idempotency_key"),
            // Tracing is best effort: a trace context that does not fit is ignored, never a reason
            // to dead-letter a job.
            trace: TraceContext(traceparent: fields("traceparent")?.stringValue, tracestate: fields("tracestate")?.stringValue)
        )
        envelope.extra = extra
        return envelope
    }

    /// The ranges a valid envelope's numbers lie in. A number outside them makes the message
    /// malformed (dead-lettered with the reason), so no arithmetic on it can ever overflow.
    public enum Limits {
        /// `enqueued_at`, `eta`, `expires`: milliseconds from the epoch to the end of year 9999.
        public static let timestamps: ClosedRange<Int> = Int(acceptedEpochMilliseconds.lowerBound)...Int(acceptedEpochMilliseconds.upperBound)
        /// `attempt` and `max_retries`.
        public static let attempts: ClosedRange<Int> = 0...1_000_000
        /// `priority`.
        public static let priorities: ClosedRange<Int> = -1_000_000...1_000_000
    }

    private static func integer(_ fields: (String) -> JSONValue?, _ name: String, in range: ClosedRange<Int>) throws(EnvelopeError) -> Int? {
        switch fields(name) {
        case nil, .null?: return nil
        case let value?:
            guard let int = value.intValue else { throw EnvelopeError("field '\(name)' must be an integer, got \(value)") }
            guard range.contains(int) else {
                throw EnvelopeError("field '\(name)' is out of range: \(int) is not in \(range.lowerBound)...\(range.upperBound)")
            }
            return int
        }
    }

    private static func string(_ fields: (String) -> JSONValue?, _ name: String) throws(EnvelopeError) -> String? {
        switch fields(name) {
        case nil, .null?: return nil
        case .string(let s)?: return s
        case let value?: throw EnvelopeError("field '\(name)' must be a string, got \(value)")
        }
    }
}

/// A message that is not a valid envelope. Such a job is dead-lettered at once with this reason.
public struct EnvelopeError: AirlockError, Equatable {
    /// What is wrong with the message.
    public let description: String
    init(_ description: String) { self.description = description }
}
