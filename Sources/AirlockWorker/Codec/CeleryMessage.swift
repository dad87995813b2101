public import Airlock
#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// A Celery protocol v2 message as kombu's Redis transport stores it: a JSON object whose
/// `body` is the base64 of `[args, kwargs, embed]`, with the task's identity in `headers`.
/// See `docs/CELERY.md`.
public struct CeleryMessage: Sendable {
    /// The outer object, every field kept so a re-published message loses nothing.
    public var fields: [String: JSONValue]
    /// Positional arguments.
    public var args: [JSONValue]
    /// Keyword arguments.
    public var kwargs: [String: JSONValue]
    /// Callbacks, errbacks, chain and chord (kept, not acted on).
    public var embed: JSONValue

    /// The `headers` object.
    public var headers: [String: JSONValue] {
        get { fields["headers"]?.objectValue ?? [:] }
        set { fields["headers"] = .object(newValue) }
    }
    /// The `properties` object.
    public var properties: [String: JSONValue] {
        get { fields["properties"]?.objectValue ?? [:] }
        set { fields["properties"] = .object(newValue) }
    }
    /// The task id.
    public var id: String { headers["id"]?.stringValue ?? "" }
    /// The dotted task name.
    public var task: String { headers["task"]?.stringValue ?? "" }
    /// Retries so far (0 on first delivery).
    public var retries: Int { headers["retries"]?.intValue ?? 0 }
    /// Not before this moment.
    public var eta: Date? { headers["eta"]?.stringValue.flatMap(CeleryTime.parse) }
    /// Drop after this moment.
    public var expires: Date? { headers["expires"]?.stringValue.flatMap(CeleryTime.parse) }
    /// Whether the caller wants the result stored.
    public var wantsResult: Bool { headers["ignore_result"]?.boolValue != true }

    // MARK: Reading

    /// Parses and validates a message; every failure says what is wrong.
    public static func decode(_ raw: some Collection<UInt8>) throws(EnvelopeError) -> CeleryMessage {
        guard !raw.isEmpty else { throw EnvelopeError("empty message") }
        let outer: JSONValue
        do { outer = try JSONParser.parse(raw) } catch { throw EnvelopeError("malformed JSON: \(error)") }
        guard case .object(let fields) = outer else { throw EnvelopeError("Celery message is not a JSON object") }
        guard let headers = fields["headers"]?.objectValue else { throw EnvelopeError("Celery message has no 'headers' object") }
        guard headers["task"] != nil else {
            throw EnvelopeError("not a Celery protocol v2 message (no 'task' header); send with task_protocol=2")
        }
        guard let task = headers["task"]?.stringValue, !task.isEmpty else { throw EnvelopeError("header 'task' must be a non-empty string") }
        guard let id = headers["id"]?.stringValue, !id.isEmpty else { throw EnvelopeError("header 'id' must be a non-empty string") }
        let contentType = fields["content-type"]?.stringValue ?? "application/json"
        guard contentType == "application/json" else {
            throw EnvelopeError("unsupported content type '\(contentType)' for task \(task): only application/json is understood (task_serializer='json')")
        }
        guard case .string(let bodyText)? = fields["body"] else { throw EnvelopeError("Celery message has no string 'body'") }
        var bodyBytes = Array(bodyText.utf8)
        if fields["properties"]?["body_encoding"]?.stringValue == "base64" {
            guard let decoded = Data(base64Encoded: bodyText) else { throw EnvelopeError("body is not valid base64") }
            bodyBytes = Array(decoded)
        }
        let body: JSONValue
        do { body = try JSONParser.parse(bodyBytes) } catch { throw EnvelopeError("body is not valid JSON: \(error)") }
        guard case .array(let parts) = body, parts.count >= 2,
            case .array(let args) = parts[0], case .object(let kwargs) = parts[1]
        else { throw EnvelopeError("body must be [args array, kwargs object, embed]") }
        for name in ["eta", "expires"] {
            if let time = headers[name], !time.isNull, time.stringValue.flatMap(CeleryTime.parse) == nil {
                throw EnvelopeError("header '\(name)' is not an ISO-8601 time: \(time)")
            }
        }
        if let retries = headers["retries"], !retries.isNull {
            guard let count = retries.intValue, Envelope.Limits.attempts.contains(count) else {
                throw EnvelopeError("header 'retries' must be an integer in \(Envelope.Limits.attempts.lowerBound)...\(Envelope.Limits.attempts.upperBound), got \(retries)")
            }
        }
        return CeleryMessage(fields: fields, args: args, kwargs: kwargs, embed: parts.count > 2 ? parts[2] : .null)
    }

    /// The message as a native envelope, for the worker's execution path.
    func envelope(queue: String) -> Envelope {
        Envelope(
            id: id, task: task, args: args, kwargs: kwargs, queue: queue, enqueuedAt: 0,
            eta: eta.map { epochMilliseconds($0) }, expires: expires.map { epochMilliseconds($0) }, attempt: retries,
            origin: headers["origin"]?.stringValue,
            // Where OpenTelemetry's Celery instrumentation puts the producer's context.
            trace: TraceContext(traceparent: headers["traceparent"]?.stringValue, tracestate: headers["tracestate"]?.stringValue))
    }

    // MARK: Writing

    /// The JSON bytes of the message.
    public func encoded() -> [UInt8] {
        var message = fields
        var bodyBytes: [UInt8] = []
        JSONWriter.write(.array([.array(args), .object(kwargs), embed]), into: &bodyBytes)
        message["body"] = .string(Data(bodyBytes).base64EncodedString())
        var properties = message["properties"]?.objectValue ?? [:]
        properties["body_encoding"] = "base64"
        message["properties"] = .object(properties)
        var out: [UInt8] = []
        JSONWriter.write(.object(message), into: &out)
        return out
    }

    /// The same task, one retry later, due at `eta`, with a fresh delivery tag.
    func retried(eta: Date) -> CeleryMessage {
        var next = self
        var headers = next.headers
        headers["retries"] = .int(retries + 1)
        headers["eta"] = .string(CeleryTime.format(eta))
        next.headers = headers
        var properties = next.properties
        properties["delivery_tag"] = .string(UUID().uuidString.lowercased())
        next.properties = properties
        return next
    }

    /// A new message in the layout a stock Celery 5 worker accepts.
    public static func make(
        id: String, task: String, args: [JSONValue], kwargs: [String: JSONValue], queue: String,
        eta: Date? = nil, expires: Date? = nil, retries: Int = 0, priority: Int = 0, origin: String? = nil, trace: TraceContext? = nil
    ) -> CeleryMessage {
        func repr(_ value: JSONValue) -> JSONValue { .string(value.description) }
        var headers: [String: JSONValue] = [
            "lang": "py", "task": .string(task), "id": .string(id), "shadow": .null,
            "eta": eta.map { .string(CeleryTime.format($0)) } ?? .null,
            "expires": expires.map { .string(CeleryTime.format($0)) } ?? .null,
            "group": .null, "group_index": .null, "retries": .int(retries), "timelimit": [.null, .null],
            "root_id": .string(id), "parent_id": .null,
            "argsrepr": repr(.array(args)), "kwargsrepr": repr(.object(kwargs)),
            "origin": origin.map { .string($0) } ?? .string("airlock-swift@\(ProcessInfo.processInfo.hostName)"),
            "ignore_result": false, "replaced_task_nesting": 0, "stamped_headers": .null, "stamps": [:],
        ]
        if let trace {
            headers["traceparent"] = .string(trace.traceparent)
            if let state = trace.tracestate { headers["tracestate"] = .string(state) }
        }
        let properties: [String: JSONValue] = [
            "correlation_id": .string(id), "reply_to": .string(UUID().uuidString.lowercased()), "delivery_mode": 2,
            "delivery_info": ["exchange": "", "routing_key": .string(queue)], "priority": .int(priority),
            "body_encoding": "base64", "delivery_tag": .string(UUID().uuidString.lowercased()),
        ]
        return CeleryMessage(
            fields: ["headers": .object(headers), "properties": .object(properties),
                     "content-encoding": "utf-8", "content-type": "application/json"],
            args: args, kwargs: kwargs, embed: ["callbacks": .null, "errbacks": .null, "chain": .null, "chord": .null])
    }

    /// kombu's key for `queue` at `priority`: steps 0, 3, 6, 9 (the largest step ≤ priority);
    /// step 0 is the queue name itself and is consumed first.
    public static func queueKey(_ queue: String, priority: Int) -> String {
        let step = [0, 3, 6, 9].last { $0 <= max(0, min(priority, 9)) } ?? 0
        return step == 0 ? queue : queue + "\u{06}\u{16}" + String(step)
    }

    /// Every key a consumer of `queue` reads, highest priority first.
    public static func queueKeys(_ queue: String) -> [String] {
        [0, 3, 6, 9].map { queueKey(queue, priority: $0) }
    }
}

/// ISO-8601 times as Celery writes and reads them (UTC, microseconds).
enum CeleryTime {
    static func format(_ date: Date) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        let seconds = micros.flooredDiv(1_000_000)
        let fraction = micros - seconds * 1_000_000
        // Civil arithmetic, not Calendar: without ICU, FoundationEssentials has no zone named "UTC".
        let c = CivilTime(seconds)
        func pad(_ v: Int, _ n: Int) -> String { String(repeating: "0", count: max(0, n - String(v).count)) + String(v) }
        return "\(pad(c.year, 4))-\(pad(c.month, 2))-\(pad(c.day, 2))T\(pad(c.hour, 2)):\(pad(c.minute, 2)):\(pad(c.second, 2)).\(pad(Int(fraction), 6))+00:00"
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.f…][Z|±HH:MM]`; no zone means UTC, as Celery reads it.
    static func parse(_ text: String) -> Date? {
        let s = Array(text.utf8)
        func int(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= s.count else { return nil }
            var value = 0
            for byte in s[from..<(from + count)] {
                guard (48...57).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard s.count >= 19, let year = int(0, 4), let month = int(5, 2), let day = int(8, 2),
            let hour = int(11, 2), let minute = int(14, 2), let second = int(17, 2),
            s[4] == 45, s[7] == 45, s[10] == 84 || s[10] == 32, s[13] == 58, s[16] == 58
        else { return nil }
        var index = 19
        var fraction = 0.0
        if index < s.count, s[index] == 46 {
            index += 1
            var scale = 0.1
            while index < s.count, (48...57).contains(s[index]) {
                fraction += Double(s[index] - 48) * scale
                scale /= 10
                index += 1
            }
        }
        var offsetSeconds = 0
        if index < s.count {
            if s[index] == 90 {
                index += 1
            } else if s[index] == 43 || s[index] == 45, let oh = int(index + 1, 2), let om = int(index + 4, 2) {
                offsetSeconds = (oh * 3600 + om * 60) * (s[index] == 45 ? -1 : 1)
                index += 6
            } else {
                return nil
            }
        }
        guard index == s.count else { return nil }
        guard (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second <= 60 else { return nil }
        let seconds = CivilTime.days(year: year, month: month, day: day) * CivilTime.secondsPerDay + Int64(hour * 3600 + minute * 60 + second)
        return Date(timeIntervalSince1970: Double(seconds - Int64(offsetSeconds)) + fraction)
    }
}
