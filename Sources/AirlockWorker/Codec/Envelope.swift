public import Airlock
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

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

    static let knownFields = Set(Field.allCases.map(\.name))

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
        JSONWriter.writeInteger(version, into: &out)
        out.append(contentsOf: #","id":"#.utf8)
        JSONWriter.writeString(id, into: &out)
        out.append(contentsOf: #","task":"#.utf8)
        JSONWriter.writeString(task, into: &out)
    }

    /// Writes everything after the arguments and closes the object. The field names are
    /// constants written as bytes and the numbers from their digits: this runs once per job a
    /// producer sends, and once per retry a worker writes.
    func writeTrailer(into out: inout [UInt8]) {
        out.append(contentsOf: #","queue":"#.utf8)
        JSONWriter.writeString(queue, into: &out)
        out.append(contentsOf: #","enqueued_at":"#.utf8)
        JSONWriter.writeInteger(enqueuedAt, into: &out)
        out.append(contentsOf: #","eta":"#.utf8)
        Self.writeInteger(eta, into: &out)
        out.append(contentsOf: #","expires":"#.utf8)
        Self.writeInteger(expires, into: &out)
        out.append(contentsOf: #","attempt":"#.utf8)
        JSONWriter.writeInteger(attempt, into: &out)
        out.append(contentsOf: #","max_retries":"#.utf8)
        Self.writeInteger(maxRetries, into: &out)
        out.append(contentsOf: #","origin":"#.utf8)
        if let origin { JSONWriter.writeString(origin, into: &out) } else { out.append(contentsOf: "null".utf8) }
        if let priority {
            out.append(contentsOf: #","priority":"#.utf8)
            JSONWriter.writeInteger(priority, into: &out)
        }
        if let idempotencyKey {
            out.append(contentsOf: #","idempotency_key":"#.utf8)
            JSONWriter.writeString(idempotencyKey, into: &out)
        }
        if let trace {
            out.append(contentsOf: #","traceparent":"#.utf8)
            JSONWriter.writeString(trace.traceparent, into: &out)
            if let state = trace.tracestate {
                out.append(contentsOf: #","tracestate":"#.utf8)
                JSONWriter.writeString(state, into: &out)
            }
        }
        for (key, value) in extra where !Self.knownFields.contains(key) {
            out.append(UInt8(ascii: ","))
            JSONWriter.writeString(key, into: &out)
            out.append(UInt8(ascii: ":"))
            JSONWriter.write(value, into: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    /// The integer's digits, or `null`.
    private static func writeInteger(_ value: (some BinaryInteger)?, into out: inout [UInt8]) {
        if let value { JSONWriter.writeInteger(value, into: &out) } else { out.append(contentsOf: "null".utf8) }
    }

    // MARK: Decoding

    /// Parses and validates an envelope; every failure names the field and the problem.
    public static func decode(_ bytes: some Collection<UInt8>) throws(EnvelopeError) -> Envelope {
        guard !bytes.isEmpty else { throw EnvelopeError("empty message") }
        let bytes = Array(bytes)
        return try withKnownFields { (known) throws(EnvelopeError) in
            // Members sorted as they are read: known fields straight to their slots, only unknown
            // ones into a dictionary. Known keys are matched on their bytes, never made strings.
            var extra: [String: JSONValue] = [:]
            do throws(JSONParseError) {
                try JSONParser.forEachMember(of: bytes, classifying: { Field($0)?.rawValue }) { key, value in
                    switch key {
                    case .known(let index): known[index] = value
                    case .other(let name): extra[name] = value
                    }
                }
            } catch {
                if error.message == "expected a JSON object" { throw EnvelopeError("envelope is not a JSON object") }
                throw EnvelopeError("malformed JSON: \(error)")
            }
            return try decode(known: known, extra: extra)
        }
    }

    /// The known fields' values, one slot per ``Field`` (indexed by its raw value).
    typealias Known = UnsafeMutableBufferPointer<JSONValue?>

    /// Runs `body` with an empty ``Known`` table on the stack: no allocation per job.
    private static func withKnownFields<R>(_ body: (Known) throws(EnvelopeError) -> R) throws(EnvelopeError) -> R {
        try withUnsafeTemporaryAllocation(of: JSONValue?.self, capacity: Field.count) { (known) throws(EnvelopeError) -> R in
            known.initialize(repeating: nil)
            defer { known.deinitialize() }
            return try body(known)
        }
    }

    /// The fields this version knows, numbered by their position in `known`; every other field is
    /// carried in ``extra``.
    enum Field: Int, CaseIterable {
        case v, id, task, args, kwargs, queue, enqueuedAt, eta, expires, attempt, maxRetries, origin, priority
        case idempotencyKey, traceparent, tracestate

        static let count = allCases.count

        /// The field's name on the wire.
        var name: String { wireName.description }

        /// The name as static bytes, which compare with no reference counting.
        private var wireName: StaticString {
            switch self {
            case .v: "v"
            case .id: "id"
            case .task: "task"
            case .args: "args"
            case .kwargs: "kwargs"
            case .queue: "queue"
            case .enqueuedAt: "enqueued_at"
            case .eta: "eta"
            case .expires: "expires"
            case .attempt: "attempt"
            case .maxRetries: "max_retries"
            case .origin: "origin"
            case .priority: "priority"
            case .idempotencyKey: "idempotency_key"
            case .traceparent: "traceparent"
            case .tracestate: "tracestate"
            }
        }

        /// The field named `key`, if this version knows it.
        init?(_ key: String) {
            var key = key
            guard let found = key.withUTF8({ Field($0) }) else { return nil }
            self = found
        }

        /// The field whose name is these UTF-8 bytes, if this version knows it. Every job's every
        /// field goes through here, so the length picks the candidates and at most three names are
        /// compared.
        init?(_ key: UnsafeBufferPointer<UInt8>) {
            let found: Field?
            switch key.count {
            case 1: found = Field.v.named(key)
            case 2: found = Field.id.named(key)
            case 3: found = Field.eta.named(key)
            case 4: found = Field.task.named(key) ?? Field.args.named(key)
            case 5: found = Field.queue.named(key)
            case 6: found = Field.kwargs.named(key) ?? Field.origin.named(key)
            case 7: found = Field.expires.named(key) ?? Field.attempt.named(key)
            case 8: found = Field.priority.named(key)
            case 10: found = Field.tracestate.named(key)
            case 11: found = Field.enqueuedAt.named(key) ?? Field.maxRetries.named(key) ?? Field.traceparent.named(key)
            case 15: found = Field.idempotencyKey.named(key)
            default: found = nil
            }
            guard let found else { return nil }
            self = found
        }

        private func named(_ key: UnsafeBufferPointer<UInt8>) -> Field? {
            let name = wireName
            guard name.utf8CodeUnitCount == key.count else { return nil }
            for offset in 0..<key.count where name.utf8Start[offset] != key[offset] { return nil }
            return self
        }
    }

    package static func decode(fields: [String: JSONValue]) throws(EnvelopeError) -> Envelope {
        try withKnownFields { (known) throws(EnvelopeError) in
            var extra: [String: JSONValue] = [:]
            for (key, value) in fields {
                if let field = Field(key) { known[field.rawValue] = value } else { extra[key] = value }
            }
            return try decode(known: known, extra: extra)
        }
    }

    /// Validates the known fields (`known`, indexed by ``Field``; each value is moved out, not
    /// copied) and keeps `extra` as they are.
    private static func decode(known: Known, extra: [String: JSONValue]) throws(EnvelopeError) -> Envelope {
        func fields(_ field: Field) -> JSONValue? { known[field.rawValue].take() }
        if let version = fields(.v), version != .int(1) {
            throw EnvelopeError("unsupported envelope version \(version) (this worker reads version 1)")
        }
        guard let id = fields(.id)?.stringValue, !id.isEmpty else { throw EnvelopeError("missing or non-string field 'id'") }
        guard let task = fields(.task)?.stringValue, !task.isEmpty else {
            throw EnvelopeError("missing or non-string field 'task'")
        }
        let args: [JSONValue]
        switch fields(.args) {
        case nil, .null?: args = []
        case .array(let a)?: args = a
        default: throw EnvelopeError("field 'args' must be an array")
        }
        let kwargs: [String: JSONValue]
        switch fields(.kwargs) {
        case nil, .null?: kwargs = [:]
        case .object(let o)?: kwargs = o
        default: throw EnvelopeError("field 'kwargs' must be an object")
        }
        guard let queue = fields(.queue)?.stringValue else { throw EnvelopeError("missing or non-string field 'queue'") }
        return Envelope(
            id: id, task: task, args: args, kwargs: kwargs, queue: queue,
            enqueuedAt: Int64(try integer(known, .enqueuedAt, in: Limits.timestamps) ?? 0),
            eta: try integer(known, .eta, in: Limits.timestamps).map(Int64.init),
            expires: try integer(known, .expires, in: Limits.timestamps).map(Int64.init),
            attempt: try integer(known, .attempt, in: Limits.attempts) ?? 0,
            maxRetries: try integer(known, .maxRetries, in: Limits.attempts),
            origin: try string(known, .origin),
            priority: try integer(known, .priority, in: Limits.priorities),
            idempotencyKey: try string(known, .idempotencyKey),
            // Tracing is best effort: a trace context that does not fit is ignored, never a reason
            // to dead-letter a job.
            trace: TraceContext(traceparent: fields(.traceparent)?.stringValue, tracestate: fields(.tracestate)?.stringValue),
            extra: extra
        )
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

    private static func integer(_ known: Known, _ field: Field, in range: ClosedRange<Int>) throws(EnvelopeError) -> Int? {
        switch known[field.rawValue].take() {
        case nil, .null?: return nil
        case let value?:
            guard let int = value.intValue else { throw EnvelopeError("field '\(field.name)' must be an integer, got \(value)") }
            guard range.contains(int) else {
                throw EnvelopeError("field '\(field.name)' is out of range: \(int) is not in \(range.lowerBound)...\(range.upperBound)")
            }
            return int
        }
    }

    private static func string(_ known: Known, _ field: Field) throws(EnvelopeError) -> String? {
        switch known[field.rawValue].take() {
        case nil, .null?: return nil
        case .string(let s)?: return s
        case let value?: throw EnvelopeError("field '\(field.name)' must be a string, got \(value)")
        }
    }
}

/// A message that is not a valid envelope. Such a job is dead-lettered at once with this reason.
public struct EnvelopeError: AirlockError, Equatable {
    /// What is wrong with the message.
    public let description: String
    init(_ description: String) { self.description = description }
}
