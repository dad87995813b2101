import Airlock
import AirlockRedis

/// `/delayed`: scheduled jobs and failed jobs waiting for their retry, soonest first; run now, delete.
extension Dashboard {
    func delayed(_ visit: Visit) async throws -> Reply {
        let page = visit.page
        let queue = visit.query.nonEmpty("queue")
        let number = max(1, visit.query["page"].flatMap(Int.init) ?? 1)
        let size = max(1, configuration.pageSize)
        let known = try await admin.queueNames()
        let listing = try await admin.delayedJobs(queues: queue.map { [$0] }, offset: (number - 1) * size, limit: size)
        let options: [HTML] = [HTML("<option value=\"\">all queues</option>")] + known.map { name in
            "<option value=\"\(attribute: name)\"\(HTML(trusted: name == queue ? " selected" : ""))>\(name)</option>"
        }
        let filter: HTML = """
            <form class="filters" method="get" action="\(attribute: page.link("/delayed"))"><label>Queue <select name="queue">\(options)</select></label><button>Show</button></form>
            """
        var forms: [HTML] = []
        let rows: [HTML] = listing.entries.enumerated().map { index, job in
            let value = Self.selection(queue: job.queue, id: job.id)
            var buttons: HTML = .empty
            if page.canAct {
                forms.append("<form id=\"delayed-row-\(index)\" method=\"post\">\(page.csrfField)<input type=\"hidden\" name=\"jobs\" value=\"\(attribute: value)\"></form>")
                buttons = """
                    <button form="delayed-row-\(index)" formaction="\(attribute: page.link("/delayed/run"))" class="run">Run now</button> <button form="delayed-row-\(index)" formaction="\(attribute: page.link("/delayed/delete"))" class="delete">Delete</button>
                    """
            }
            let check: HTML = page.canAct ? "<td><input type=\"checkbox\" form=\"delayed-selection\" name=\"jobs\" value=\"\(attribute: value)\" aria-label=\"select\"></td>" : .empty
            return """
                <tr>\(check)<td title="\(attribute: Format.date(job.dueAtMilliseconds))">\(Format.relative(job.dueAtMilliseconds, now: page.now))</td><td>\(job.queue)</td>
                <td><a href="\(attribute: page.link("/job", [("id", job.id)]))"><code>\(job.id)</code></a></td><td>\(job.task, or: "(not an envelope)")</td>
                <td>\(job.isRetry ? "retry" : "scheduled")</td><td class="num">\(job.attempt)</td><td class="error">\(HTML.truncated(job.lastError ?? "", 160))</td><td class="actions">\(buttons)</td></tr>
                """
        }
        let selection: HTML = page.canAct && !listing.entries.isEmpty ? """
            <form id="delayed-selection" method="post" class="bulk">\(page.csrfField)Selected: <button formaction="\(attribute: page.link("/delayed/run"))">Run now</button> <button formaction="\(attribute: page.link("/delayed/delete"))" class="delete">Delete</button></form>
            """ : .empty
        let table: HTML = listing.entries.isEmpty ? "<p class=\"empty\">No delayed jobs.</p>" : """
            \(forms)
            <table id="delayed"><thead><tr>\(HTML(trusted: page.canAct ? "<th></th>" : ""))<th>Due</th><th>Queue</th><th>Id</th><th>Task</th><th>Kind</th><th class="num">Attempt</th><th>Last error</th><th></th></tr></thead>
            <tbody>\(rows)</tbody></table>
            \(selection)
            """
        let pager = Pager(page: page, path: "/delayed", query: [("queue", queue)], number: number, size: size, total: listing.total)
        let body: HTML = """
            \(filter)
            <p class="summary" id="delayed-total">\(pager.summary(noun: "delayed job"))</p>
            \(table)
            \(pager.links)
            <p class="hint">Run now moves a job to the back of its ready list with its eta set to now (as the promoter would at its due time).</p>
            """
        return .page(Layout.page(page, section: .delayed, notice: Layout.notice(visit.query), body))
    }

    func runDelayed(_ visit: Visit) async throws -> Reply {
        try await takeDelayed(visit, run: true)
    }

    func deleteDelayed(_ visit: Visit) async throws -> Reply {
        try await takeDelayed(visit, run: false)
    }

    private func takeDelayed(_ visit: Visit, run: Bool) async throws -> Reply {
        let picked = visit.form.all("jobs").compactMap(Self.parseSelection)
        var total = 0
        for (queue, entries) in Dictionary(grouping: picked, by: \.queue).sorted(by: { $0.key < $1.key }) {
            let ids = entries.map(\.id)
            let count = run ? try await admin.runDelayedNow(queue: queue, ids: ids) : try await admin.deleteDelayed(queue: queue, ids: ids)
            record(run ? "delayed.run_now" : "delayed.delete", by: visit.visitor, queue: queue, count: count, detail: ids.joined(separator: ","))
            total += count
        }
        return .redirect(visit.page.link("/delayed", [("done", run ? "ran" : "dropped"), ("n", String(total))]))
    }

    /// A selected job as one form value: `<length of queue>:<queue><id>`, which no id can confuse.
    static func selection(queue: String, id: String) -> String { "\(queue.utf8.count):\(queue)\(id)" }

    static func parseSelection(_ value: String) -> (queue: String, id: String)? {
        let bytes = Array(value.utf8)
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), let length = Int(String(decoding: bytes[..<colon], as: UTF8.self)),
              length > 0, colon + 1 + length <= bytes.count else { return nil }
        let queue = String(decoding: bytes[(colon + 1)..<(colon + 1 + length)], as: UTF8.self)
        let id = String(decoding: bytes[(colon + 1 + length)...], as: UTF8.self)
        return id.isEmpty ? nil : (queue, id)
    }
}

/// Previous/next links and the "41–60 of 100,000" line.
struct Pager {
    let page: PageContext
    let path: String
    let query: [(String, String?)]
    let number: Int
    let size: Int
    let total: Int

    var pages: Int { max(1, (total + size - 1) / size) }

    func summary(noun: String) -> String {
        guard total > 0 else { return "No \(noun)s." }
        let first = (number - 1) * size + 1
        let last = min(total, number * size)
        let plural = total == 1 ? noun : noun + "s"
        return first > total ? "\(Format.count(total)) \(plural); page \(number) is past the end." : "\(Format.count(first))–\(Format.count(last)) of \(Format.count(total)) \(plural)"
    }

    var links: HTML {
        guard pages > 1 else { return .empty }
        let previous: HTML = number > 1 ? "<a rel=\"prev\" id=\"page-prev\" href=\"\(attribute: page.link(path, query + [("page", String(number - 1))]))\">← previous</a>" : .empty
        let next: HTML = number < pages ? "<a rel=\"next\" id=\"page-next\" href=\"\(attribute: page.link(path, query + [("page", String(number + 1))]))\">next →</a>" : .empty
        return "<nav class=\"pager\">\(previous) <span>page \(number) of \(Format.count(pages))</span> \(next)</nav>"
    }
}
