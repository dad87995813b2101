import Airlock

/// Where an operator's tracing UI shows a trace: a URL with `{trace_id}` in it, such as
/// `https://tempo.example/trace/{trace_id}` or `http://jaeger:16686/trace/{trace_id}`.
public struct TraceLinkTemplate: Sendable, Hashable, CustomStringConvertible {
    /// The placeholder a trace id replaces.
    public static let placeholder = "{trace_id}"

    /// The template as given.
    public let description: String

    /// A template; only `http` and `https` URLs holding ``placeholder`` are accepted, so a link on
    /// a page can never run script (`javascript:`) or point nowhere.
    /// - Throws: ``DashboardError`` of kind ``DashboardError/Kind/invalidTraceURL`` otherwise.
    public init(_ template: String) throws(DashboardError) {
        let lowered = template.lowercased()
        guard lowered.hasPrefix("http://") || lowered.hasPrefix("https://"), template.contains(Self.placeholder),
              template.unicodeScalars.allSatisfy({ (0x21...0x7E).contains($0.value) })
        else {
            throw DashboardError(.invalidTraceURL, "the trace URL must be an http(s) URL containing \(Self.placeholder), e.g. https://tempo.example/trace/\(Self.placeholder)")
        }
        description = template
    }

    /// The link to `trace`.
    func link(_ trace: JobTrace) -> String { description.replacingOccurrences(of: Self.placeholder, with: trace.traceID) }
}

/// The trace a job belongs to: the trace id of its envelope's W3C `traceparent` (written by the
/// producer's `airlock.flush` span; docs/OPERATIONS.md, "Tracing"). The worker's run of the job is a
/// child of that span, so this one id finds the web request, the flush and every attempt.
struct JobTrace: Equatable {
    /// 32 lowercase hex digits.
    let traceID: String
    /// The producer span the run continues (16 lowercase hex digits).
    let parentSpanID: String

    /// The trace of a version-00 `traceparent` field, or `nil` when there is none or it is not
    /// well formed (an all-zero id is invalid per W3C). Only hex digits survive, so the id is safe
    /// in a URL; it is escaped on the page all the same.
    init?(_ fields: [String: JSONValue]) {
        guard let value = fields["traceparent"]?.stringValue else { return nil }
        let parts = value.split(separator: "-", omittingEmptySubsequences: false)
        func hex(_ part: Substring, _ count: Int) -> Bool {
            part.utf8.count == count && part.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
        }
        guard parts.count >= 4, parts[0] == "00", hex(parts[1], 32), hex(parts[2], 16), hex(parts[3], 2),
              parts[1].contains(where: { $0 != "0" }), parts[2].contains(where: { $0 != "0" })
        else { return nil }
        traceID = String(parts[1])
        parentSpanID = String(parts[2])
    }

    /// The trace id, linked through `template` when the dashboard has one.
    func html(_ template: TraceLinkTemplate?) -> HTML {
        let id: HTML = "<code class=\"trace-id\">\(traceID)</code>"
        guard let template else { return id }
        return "\(id) <a class=\"trace-link\" href=\"\(attribute: template.link(self))\" rel=\"noopener noreferrer\">open the trace</a>"
    }
}
