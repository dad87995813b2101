public import Tracing

/// The W3C trace context a job carries from the span that enqueued it to the span that runs it:
/// the envelope's `traceparent` and `tracestate` fields (`docs/PROTOCOL.md`).
///
/// Producers take it from the span in force when they dispatch (the scope's `airlock.flush` span)
/// through the bootstrapped tracer's `inject`; with no tracer, or no span, there is none and the
/// envelope has no such fields. The worker hands it back to the tracer's `extract`, so the format
/// is the tracer's (W3C for OpenTelemetry tracers): Airlock only bounds its size.
public struct TraceContext: Sendable, Hashable {
    /// The W3C `traceparent` header value (`00-<trace id>-<span id>-<flags>`).
    public let traceparent: String
    /// The W3C `tracestate` header value, when the tracer wrote one.
    public let tracestate: String?

    /// Longest `traceparent` kept (version 00 is 55 characters; later versions may append fields).
    public static let maxTraceparentLength = 256
    /// Longest `tracestate` kept (the W3C limit for propagated state).
    public static let maxTracestateLength = 512

    /// A trace context, or `nil` when `traceparent` is missing, empty, longer than
    /// ``maxTraceparentLength`` or not printable ASCII without spaces. A `tracestate` that does not
    /// fit (too long, not printable ASCII) is dropped and the `traceparent` kept.
    public init?(traceparent: String?, tracestate: String? = nil) {
        guard let traceparent, (1...Self.maxTraceparentLength).contains(traceparent.utf8.count),
              traceparent.utf8.allSatisfy({ (0x21...0x7E).contains($0) })
        else { return nil }
        self.traceparent = traceparent
        if let tracestate, (1...Self.maxTracestateLength).contains(tracestate.utf8.count),
           tracestate.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) {
            self.tracestate = tracestate
        } else {
            self.tracestate = nil
        }
    }

    /// The context of the span in force in this task, as the bootstrapped tracer injects it;
    /// `nil` without a span or without a tracer (the default no-op instrument injects nothing).
    public static func current() -> TraceContext? {
        // Checked first: most tasks have no span, and then nothing else runs.
        guard let context = ServiceContext.current else { return nil }
        var headers: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &headers, using: HeaderInjector())
        return TraceContext(traceparent: headers["traceparent"], tracestate: headers["tracestate"])
    }

    /// A context holding this trace, as `tracer` extracts it: the parent of a span that continues it.
    public func serviceContext(extractedBy instrument: any Instrument = InstrumentationSystem.instrument) -> ServiceContext {
        var context = ServiceContext.topLevel
        var headers = ["traceparent": traceparent]
        if let tracestate { headers["tracestate"] = tracestate }
        instrument.extract(headers, into: &context, using: HeaderExtractor())
        return context
    }
}

/// Header-style carriers: what tracers read and write `traceparent` through.
struct HeaderInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
}

struct HeaderExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
}
