public import Tracing
import Synchronization

/// A tracer for tests and the bench: W3C `traceparent` propagation (what real tracers such as
/// swift-otel inject), spans kept in memory once they end.
///
/// Use it through `withTracer(tracer) { … }` (a task-local override), so a test never bootstraps
/// the process-wide `InstrumentationSystem` and suites can run in parallel.
public final class W3CTestTracer: Tracer, Sendable {
    /// A span that has ended.
    public struct FinishedSpan: Sendable, CustomStringConvertible {
        /// The operation name.
        public let name: String
        /// The span's kind.
        public let kind: SpanKind
        /// 32 hex digits.
        public let traceID: String
        /// 16 hex digits.
        public let spanID: String
        /// The parent's span id, `nil` for a root span.
        public let parentSpanID: String?
        /// The span contexts it links to.
        public let links: [SpanIdentity]
        /// The attributes set on it.
        public let attributes: [String: String]
        /// The errors recorded on it, as text.
        public let errors: [String]
        /// Whether its status was set to error.
        public let failed: Bool
        /// When it started and ended, nanoseconds since the Unix epoch (what a waterfall draws).
        public let startNanoseconds: UInt64
        /// When it ended, nanoseconds since the Unix epoch.
        public let endNanoseconds: UInt64

        /// `name trace/span <- parent`.
        public var description: String { "\(name) \(traceID)/\(spanID) <- \(parentSpanID ?? "root")" }
    }

    /// A span's place in a trace.
    public struct SpanIdentity: Sendable, Hashable {
        /// 32 hex digits.
        public let traceID: String
        /// 16 hex digits.
        public let spanID: String
    }

    private struct State {
        var finished: [FinishedSpan] = []
        var ended = 0
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())
    /// When false, ended spans are only counted (the bench: memory stays flat).
    public let keepsSpans: Bool

    /// A tracer; `keepsSpans: false` counts ended spans without keeping them.
    public init(keepsSpans: Bool = true) { self.keepsSpans = keepsSpans }

    /// Every span that has ended, oldest first.
    public var finishedSpans: [FinishedSpan] { state.withLock { $0.finished } }

    /// How many spans have ended.
    public var endedCount: Int { state.withLock { $0.ended } }

    fileprivate func countEnded() { state.withLock { $0.ended += 1 } }

    fileprivate func record(_ span: FinishedSpan) {
        state.withLock { state in
            state.ended += 1
            if keepsSpans { state.finished.append(span) }
        }
    }

    /// Random high bits of every trace id, drawn once: they keep ids of two tracers apart, and the
    /// counter keeps them unique. Drawing them per span cost a `getrandom` system call per job and
    /// was most of what the bench's traced mode measured.
    private let salt = W3CTestTracer.hex(UInt64.random(in: 0...UInt64.max))

    /// A span id (16 hex digits: the counter) or a trace id (32: the salt, then the counter).
    private func nextHex(width: Int) -> String {
        let value = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        return width > 16 ? salt + Self.hex(value) : Self.hex(value)
    }

    /// 16 lowercase hex digits.
    private static func hex(_ value: UInt64) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8](repeating: 0, count: 16)
        for index in 0..<16 { out[15 - index] = digits[Int((value >> (UInt64(index) * 4)) & 0xF)] }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: Tracer

    /// Starts a span: a child of the span in `context`, or a new trace.
    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> TestSpan {
        var context = context()
        let parent = context[SpanIdentityKey.self]
        let identity = SpanIdentity(traceID: parent?.traceID ?? nextHex(width: 32), spanID: nextHex(width: 16))
        context[SpanIdentityKey.self] = identity
        return TestSpan(name: operationName, kind: kind, context: context, identity: identity, parent: parent?.spanID,
                        start: keepsSpans ? instant().nanosecondsSinceEpoch : 0, tracer: self)
    }

    /// Nothing is buffered.
    public func forceFlush() {}

    /// Writes `traceparent` (`00-<trace>-<span>-01`) for the span in `context`.
    public func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        guard let identity = context[SpanIdentityKey.self] else { return }
        injector.inject("00-\(identity.traceID)-\(identity.spanID)-01", forKey: "traceparent", into: &carrier)
    }

    /// Reads `traceparent` into `context` when it is well formed.
    public func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        guard let identity = extractor.extract(key: "traceparent", from: carrier).flatMap(Self.parse) else { return }
        context[SpanIdentityKey.self] = identity
    }

    /// The trace and span ids of a version-00 `traceparent`, or `nil`.
    public static func parse(_ traceparent: String) -> SpanIdentity? {
        let parts = traceparent.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "00", parts[1].count == 32, parts[2].count == 16, parts[3].count == 2,
              parts.dropFirst().allSatisfy({ $0.allSatisfy(\.isHexDigit) })
        else { return nil }
        return SpanIdentity(traceID: String(parts[1]), spanID: String(parts[2]))
    }
}

/// Where the test tracer keeps a span's identity in a `ServiceContext`.
enum SpanIdentityKey: ServiceContextKey {
    typealias Value = W3CTestTracer.SpanIdentity
}

/// A span of ``W3CTestTracer``; reported to it when it ends.
public final class TestSpan: Span, Sendable {
    private struct State {
        var name: String
        var attributes: SpanAttributes = [:]
        var links: [W3CTestTracer.SpanIdentity] = []
        var errors: [String] = []
        var failed = false
        var ended = false
    }

    /// The context that carries this span.
    public let context: ServiceContext
    private let kind: SpanKind
    private let identity: W3CTestTracer.SpanIdentity
    private let parent: String?
    private let tracer: W3CTestTracer
    private let start: UInt64
    private let state: Mutex<State>

    init(name: String, kind: SpanKind, context: ServiceContext, identity: W3CTestTracer.SpanIdentity, parent: String?, start: UInt64, tracer: W3CTestTracer) {
        self.start = start
        self.context = context
        self.kind = kind
        self.identity = identity
        self.parent = parent
        self.tracer = tracer
        self.state = Mutex(State(name: name))
    }

    /// The operation name.
    public var operationName: String {
        get { state.withLock { $0.name } }
        set { state.withLock { $0.name = newValue } }
    }

    /// The attributes so far.
    public var attributes: SpanAttributes {
        get { state.withLock { $0.attributes } }
        set { state.withLock { $0.attributes = newValue } }
    }

    /// Always recording.
    public var isRecording: Bool { true }

    /// An error status marks the span failed.
    public func setStatus(_ status: SpanStatus) {
        if status.code == .error { state.withLock { $0.failed = true } }
    }

    /// Events are not kept.
    public func addEvent(_ event: SpanEvent) {}

    /// Keeps the error's text.
    public func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {
        state.withLock { $0.errors.append(String(describing: error)) }
    }

    /// Keeps the linked span's identity (links to contexts without one are ignored).
    public func addLink(_ link: SpanLink) {
        guard let other = link.context[SpanIdentityKey.self] else { return }
        state.withLock { $0.links.append(other) }
    }

    /// Reports the span to its tracer, once.
    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        let keeps = tracer.keepsSpans
        let finished = state.withLock { state -> W3CTestTracer.FinishedSpan? in
            guard !state.ended else { return nil }
            state.ended = true
            // A counting tracer (the bench) does not pay for building what it would not keep.
            guard keeps else { return nil }
            let end = instant().nanosecondsSinceEpoch
            var attributes: [String: String] = [:]
            state.attributes.forEach { key, value in attributes[key] = Self.text(value) }
            return W3CTestTracer.FinishedSpan(
                name: state.name, kind: kind, traceID: identity.traceID, spanID: identity.spanID, parentSpanID: parent,
                links: state.links, attributes: attributes, errors: state.errors, failed: state.failed,
                startNanoseconds: start, endNanoseconds: max(end, start))
        }
        if let finished { tracer.record(finished) } else if !keeps { tracer.countEnded() }
    }

    private static func text(_ value: SpanAttribute) -> String {
        switch value {
        case .string(let text): text
        case .int64(let number): String(number)
        case .int32(let number): String(number)
        case .bool(let flag): String(flag)
        case .double(let number): String(number)
        default: "\(value)"
        }
    }
}
