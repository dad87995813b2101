import AirlockTracingTestSupport
import Foundation
import Tracing

/// The spans the in-memory tracer recorded, drawn as a tracing UI's waterfall would draw them (one
/// row per span, indented under its parent, a bar from its start to its end), so the browser suite
/// can check and screenshot a trace without a tracing back end on the machine. Test support, not a
/// dashboard page: every value a span carries (names, attributes, error text) is escaped.
enum TraceWaterfall {
    /// Where the page goes: `AIRLOCK_DASHBOARD_ARTIFACTS` (scripts/test.sh sets it; the browser
    /// suite reads it from there), else a temporary directory. Returns the file's path.
    static func write(_ spans: [W3CTestTracer.FinishedSpan], traceID: String, jobID: String, name: String) throws -> String {
        let directory = ProcessInfo.processInfo.environment["AIRLOCK_DASHBOARD_ARTIFACTS"].flatMap { $0.isEmpty ? nil : $0 }
            ?? NSTemporaryDirectory() + "airlock-dashboard-artifacts"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/" + name
        try page(spans.filter { $0.traceID == traceID }, traceID: traceID, jobID: jobID).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func page(_ spans: [W3CTestTracer.FinishedSpan], traceID: String, jobID: String) -> String {
        let start = spans.map(\.startNanoseconds).min() ?? 0
        let end = max(spans.map(\.endNanoseconds).max() ?? 0, start + 1)
        let total = Double(end - start)
        let rows = ordered(spans).map { span, depth -> String in
            let left = Double(span.startNanoseconds - start) / total * 100
            let width = max(Double(span.endNanoseconds - span.startNanoseconds) / total * 100, 0.4)
            let attributes = span.attributes.sorted { $0.key < $1.key }.map { "\(escape($0.key))=\(escape($0.value))" }.joined(separator: "<br>")
            let errors = span.errors.map { "<div class=\"error\">\(escape($0))</div>" }.joined()
            return """
                <tr class="span\(span.errors.isEmpty ? "" : " failed")" data-trace-id="\(escape(span.traceID))" data-span-id="\(escape(span.spanID))" data-parent-id="\(escape(span.parentSpanID ?? ""))">
                <td class="name" style="padding-left:\(8 + depth * 22)px"><span class="kind">\(escape(kind(span.kind)))</span> \(escape(span.name))</td>
                <td class="timeline"><div class="bar" style="margin-left:\(format(left))%;width:\(format(width))%"></div></td>
                <td class="duration">\(format(Double(span.endNanoseconds - span.startNanoseconds) / 1_000_000)) ms</td>
                <td class="ids"><code>\(escape(span.spanID))</code><br>parent <code>\(escape(span.parentSpanID ?? "none"))</code></td>
                <td class="attributes">\(attributes)\(errors)</td></tr>
                """
        }.joined(separator: "\n")
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Trace \(escape(traceID))</title>
            <style>
            body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; }
            h1 { font-size: 20px; margin: 0 0 4px; } p.note { color: #5b6475; margin: 0 0 16px; }
            table { border-collapse: collapse; width: 100%; } td { border-top: 1px solid #dde2ea; padding: 8px; vertical-align: top; }
            th { text-align: left; padding: 6px 8px; color: #5b6475; font-weight: 600; }
            td.timeline { width: 34%; } .bar { height: 14px; border-radius: 3px; background: #3b6fd8; margin-top: 3px; }
            tr.failed .bar { background: #c43d3d; } .kind { font-size: 11px; color: #fff; background: #5b6475; border-radius: 3px; padding: 1px 5px; }
            td.duration { white-space: nowrap; } code { font-size: 12px; } .error { color: #a52a2a; margin-top: 4px; } td.attributes { font-size: 12px; overflow-wrap: anywhere; }
            </style></head><body>
            <h1>Trace <code id="trace-id">\(escape(traceID))</code></h1>
            <p class="note">\(spans.count) spans recorded by the in-memory W3C tracer in the dashboard's trace test (TraceTests): a real POST to a Hummingbird app, the job it enqueued (<code id="job-id">\(escape(jobID))</code>) run and failed by a real worker over a real Redis. With a real tracer (swift-otel, say) these spans go to the tracing back end instead.</p>
            <table><thead><tr><th>span</th><th>timeline (\(format(total / 1_000_000)) ms)</th><th>duration</th><th>ids</th><th>attributes</th></tr></thead>
            <tbody>
            \(rows)
            </tbody></table></body></html>
            """
    }

    /// Depth-first from the roots, children by start time.
    static func ordered(_ spans: [W3CTestTracer.FinishedSpan]) -> [(W3CTestTracer.FinishedSpan, Int)] {
        let ids = Set(spans.map(\.spanID))
        let byStart = spans.sorted { $0.startNanoseconds < $1.startNanoseconds }
        var out: [(W3CTestTracer.FinishedSpan, Int)] = []
        func visit(_ span: W3CTestTracer.FinishedSpan, _ depth: Int) {
            out.append((span, depth))
            for child in byStart where child.parentSpanID == span.spanID { visit(child, depth + 1) }
        }
        for root in byStart where root.parentSpanID.map({ !ids.contains($0) }) ?? true { visit(root, 0) }
        return out
    }

    static func kind(_ kind: SpanKind) -> String {
        switch kind {
        case .server: "server"
        case .client: "client"
        case .producer: "producer"
        case .consumer: "consumer"
        default: "internal"
        }
    }

    static func format(_ value: Double) -> String { String(format: "%.2f", value) }

    static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
