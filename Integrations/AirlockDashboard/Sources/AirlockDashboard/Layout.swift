import Airlock
import Foundation

/// What every page knows while it renders: where the dashboard is mounted, who is looking, and the
/// switches that change what may be shown.
struct PageContext: Sendable {
    /// The mount point without a trailing slash (`""` at the root).
    let base: String
    let visitor: Visitor
    let configuration: DashboardConfiguration
    let namespace: String
    /// When the page was rendered, ms since the epoch.
    let now: Int64

    /// A link inside the dashboard: `path` (starting with `/`) and query fields, percent-encoded.
    func link(_ path: String, _ query: [(String, String?)] = []) -> String {
        let fields = query.compactMap { name, value in value.map { "\(name)=\(HTML.percentEncode($0))" } }
        return base + path + (fields.isEmpty ? "" : "?" + fields.joined(separator: "&"))
    }

    /// The hidden CSRF field every POST form carries.
    var csrfField: HTML { "<input type=\"hidden\" name=\"\(attribute: AccessControl.csrfField)\" value=\"\(attribute: visitor.csrf)\">" }

    /// Whether action buttons are shown.
    var canAct: Bool { !configuration.readOnly }
}

/// The page shell: header with navigation and the job finder, the body, the footer.
enum Layout {
    enum Section: String, CaseIterable {
        case overview, queues, workers, schedules, delayed, dead, job

        var title: String {
            switch self {
            case .overview: "Overview"
            case .queues: "Queues"
            case .workers: "Workers"
            case .schedules: "Schedules"
            case .delayed: "Delayed & retrying"
            case .dead: "Dead letters"
            case .job: "Find a job"
            }
        }

        var path: String {
            switch self {
            case .overview: "/"
            case .queues: "/queues"
            case .workers: "/workers"
            case .schedules: "/schedules"
            case .delayed: "/delayed"
            case .dead: "/dead"
            case .job: "/job"
            }
        }
    }

    /// A whole page. `live` names the JSON feed the script polls to refresh the figures in place.
    static func page(_ context: PageContext, section: Section, title: String? = nil, notice: HTML = .empty, live: String? = nil, _ body: HTML) -> HTML {
        let nav: [HTML] = Section.allCases.map { item in
            let current = item == section ? " aria-current=\"page\"" : ""
            return "<a href=\"\(attribute: context.link(item.path))\"\(HTML(trusted: current)) id=\"nav-\(attribute: item.rawValue)\">\(item.title)</a>"
        }
        let mode: HTML = context.configuration.readOnly ? "<span class=\"badge\" id=\"read-only\">read-only</span>" : .empty
        let liveAttributes: HTML = if let live, context.configuration.refreshSeconds > 0 {
            " data-live=\"\(attribute: context.link(live))\" data-refresh=\"\(context.configuration.refreshSeconds)\""
        } else { .empty }
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(title ?? section.title) · \(context.configuration.title)</title>
            <link rel="stylesheet" href="\(attribute: context.link("/assets/dashboard.css"))">
            <script src="\(attribute: context.link("/assets/dashboard.js"))" defer></script>
            </head><body\(liveAttributes)>
            <header><div class="brand"><a href="\(attribute: context.link("/"))">\(context.configuration.title)</a>
            <span class="ns">namespace <code>\(context.namespace)</code></span> \(mode)</div>
            <nav>\(nav)</nav>
            <form class="finder" method="get" action="\(attribute: context.link("/job"))"><input name="id" placeholder="job id" aria-label="job id"><button>Find</button></form>
            </header>
            <main><h1>\(title ?? section.title)</h1>\(notice)
            \(body)
            </main>
            <footer>Rendered \(Format.date(context.now)) · <span id="live-status">\(context.configuration.refreshSeconds > 0 && live != nil ? "live" : "static")</span></footer>
            </body></html>
            """
    }

    /// The line a finished action leaves at the top of the page it redirected to.
    static func notice(_ form: FormFields) -> HTML {
        guard let done = form["done"], let count = form["n"].flatMap(Int.init) else { return .empty }
        let what: String
        switch done {
        case "retried": what = count == 1 ? "1 dead letter moved back to its queue" : "\(count) dead letters moved back to their queues"
        case "deleted": what = count == 1 ? "1 dead letter deleted" : "\(count) dead letters deleted"
        case "ran": what = count == 1 ? "1 delayed job moved to its ready list" : "\(count) delayed jobs moved to their ready list"
        case "dropped": what = count == 1 ? "1 delayed job deleted" : "\(count) delayed jobs deleted"
        case "paused": what = "queue paused: workers stop taking its jobs within a second"
        case "resumed": what = "queue resumed"
        case "cancelled": what = "job cancelled: removed from its queue, it will not run"
        case "requested": what = "cancel requested from the worker holding the job: it is dropped, or its task cancelled, at the worker's next heartbeat, and never retried"
        case "not-cancelled": what = "nothing to cancel: the job is no longer ready, delayed or in flight"
        default: return .empty
        }
        return "<p class=\"notice\" id=\"notice\">\(what)</p>"
    }

    /// An error box (the message is escaped like everything else).
    static func problem(_ message: String) -> HTML { "<p class=\"problem\" id=\"problem\">\(message)</p>" }
}

/// Numbers, times and durations as the pages show them.
enum Format {
    /// `2026-12-01 22:05:17Z` (UTC).
    static func date(_ milliseconds: Int64?) -> String {
        guard let milliseconds else { return "-" }
        let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ n: Int?) -> String { let n = n ?? 0; return n < 10 ? "0\(n)" : "\(n)" }
        return "\(c.year ?? 0)-\(two(c.month))-\(two(c.day)) \(two(c.hour)):\(two(c.minute)):\(two(c.second))Z"
    }

    /// `850ms`, `12s`, `4m 05s`, `3h 20m`, `2d 4h`.
    static func duration(_ milliseconds: Int64?) -> String {
        guard let milliseconds else { return "-" }
        let ms = max(0, milliseconds)
        if ms < 1000 { return "\(ms)ms" }
        let s = ms / 1000
        if s < 60 { return ms < 10_000 ? String(format: "%.1fs", Double(ms) / 1000) : "\(s)s" }
        if s < 3600 { return "\(s / 60)m \(pad(s % 60))s" }
        if s < 86400 { return "\(s / 3600)h \(pad(s / 60 % 60))m" }
        return "\(s / 86400)d \(s / 3600 % 24)h"
    }

    /// `5s ago` or `in 3m 10s`, relative to `now`.
    static func relative(_ milliseconds: Int64?, now: Int64) -> String {
        guard let milliseconds else { return "-" }
        let delta = milliseconds.subtractingSaturated(now)
        return delta >= 0 ? "in " + duration(delta) : duration(now.subtractingSaturated(milliseconds)) + " ago"
    }

    /// `12,345`.
    static func count(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out += "," }
            out.append(digit)
        }
        return n < 0 ? "-" + out : out
    }

    /// `yyyy-MM-ddTHH:mm` (a `datetime-local` value, read as UTC) in ms since the epoch.
    static func parseLocalDateTime(_ text: String) -> Int64? {
        let parts = text.split(whereSeparator: { "-T: ".contains($0) }).map { Int($0) }
        guard parts.count >= 5, parts.allSatisfy({ $0 != nil }) else { return nil }
        var components = DateComponents()
        components.year = parts[0]; components.month = parts[1]; components.day = parts[2]
        components.hour = parts[3]; components.minute = parts[4]; components.second = parts.count > 5 ? parts[5] : 0
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        guard let date = calendar.date(from: components) else { return nil }
        return epochMilliseconds(date)
    }

    /// The `datetime-local` value of a moment (UTC, minutes).
    static func localDateTime(_ milliseconds: Int64?) -> String {
        guard let milliseconds else { return "" }
        let text = date(milliseconds)
        return String(text.prefix(16)).replacingOccurrences(of: " ", with: "T")
    }

    private static func pad(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
}
