import Airlock
import AirlockRedis

/// `/dead` and `/dead/show`: search dead letters (task, queue, error text, time range), page through
/// them, show one's envelope, retry or delete one, a selection, or everything a search matches.
extension Dashboard {
    /// The search a request describes (query string on GET, hidden fields on the bulk POST).
    static func deadQuery(_ fields: FormFields) -> DeadLetterQuery {
        DeadLetterQuery(
            queues: fields.nonEmpty("queue").map { [$0] }, task: fields.nonEmpty("task"), error: fields.nonEmpty("error"),
            failedFromMilliseconds: fields.nonEmpty("from").flatMap(Format.parseLocalDateTime),
            failedBeforeMilliseconds: fields.nonEmpty("to").flatMap(Format.parseLocalDateTime))
    }

    /// The search as query-string fields, to carry it across pages and actions.
    static func deadQueryFields(_ fields: FormFields) -> [(String, String?)] {
        ["queue", "task", "error", "from", "to"].map { ($0, fields.nonEmpty($0)) }
    }

    func dead(_ visit: Visit) async throws -> Reply {
        let page = visit.page
        let query = Self.deadQuery(visit.query)
        let carried = Self.deadQueryFields(visit.query)
        let number = max(1, visit.query["page"].flatMap(Int.init) ?? 1)
        let size = max(1, configuration.pageSize)
        let known = try await admin.queueNames()
        let result = try await admin.searchDeadLetters(query, offset: (number - 1) * size, limit: size)

        let selectedQueue = visit.query.nonEmpty("queue")
        let options: [HTML] = [HTML("<option value=\"\">all queues</option>")] + known.map { name in
            "<option value=\"\(attribute: name)\"\(HTML(trusted: name == selectedQueue ? " selected" : ""))>\(name)</option>"
        }
        let search: HTML = """
            <form class="filters" id="dead-search" method="get" action="\(attribute: page.link("/dead"))">
            <label>Queue <select name="queue">\(options)</select></label>
            <label>Task <input name="task" value="\(attribute: visit.query["task"] ?? "")" placeholder="part of the name"></label>
            <label>Error <input name="error" value="\(attribute: visit.query["error"] ?? "")" placeholder="part of the text"></label>
            <label>Failed from <input type="datetime-local" name="from" value="\(attribute: visit.query["from"] ?? "")"></label>
            <label>to <input type="datetime-local" name="to" value="\(attribute: visit.query["to"] ?? "")"></label>
            <button id="dead-search-button">Search</button> <a href="\(attribute: page.link("/dead"))">clear</a>
            </form><p class="hint">Times are UTC. Task and error match any part, ignoring the case of A–Z.</p>
            """
        var forms: [HTML] = []
        let rows: [HTML] = result.entries.enumerated().map { index, letter in
            var buttons: HTML = .empty
            if page.canAct {
                forms.append("<form id=\"dead-row-\(index)\" method=\"post\">\(page.csrfField)<input type=\"hidden\" name=\"ids\" value=\"\(attribute: letter.id)\"></form>")
                buttons = """
                    <button form="dead-row-\(index)" formaction="\(attribute: page.link("/dead/retry", carried))" class="retry" data-id="\(attribute: letter.id)">Retry</button> <button form="dead-row-\(index)" formaction="\(attribute: page.link("/dead/delete", carried))" class="delete" data-confirm="Delete this dead letter?">Delete</button>
                    """
            }
            let check: HTML = page.canAct ? "<td><input type=\"checkbox\" form=\"dead-selection\" name=\"ids\" value=\"\(attribute: letter.id)\" aria-label=\"select\"></td>" : .empty
            return """
                <tr class="dead-letter">\(check)<td title="\(attribute: Format.relative(letter.failedAtMilliseconds, now: page.now))">\(Format.date(letter.failedAtMilliseconds))</td><td>\(letter.queue)</td>
                <td><a class="show" href="\(attribute: page.link("/dead/show", [("id", letter.id)]))"><code>\(letter.id)</code></a></td>
                <td class="task">\(letter.task, or: "(malformed)")</td><td class="num">\(letter.attempts.map(String.init), or: "?")</td>
                <td class="error">\(HTML.truncated(letter.error ?? "", 160))</td><td class="actions">\(buttons)</td></tr>
                """
        }
        var bulk: HTML = .empty
        if page.canAct && result.total > 0 {
            let hidden: [HTML] = carried.compactMap { name, value in value.map { "<input type=\"hidden\" name=\"\(attribute: name)\" value=\"\(attribute: $0)\">" } }
            let scope = query.selectsWholeLists && query.queues == nil ? "every dead letter of every queue" : "every dead letter this search matches"
            bulk = """
                <form id="dead-selection" method="post" class="bulk">\(page.csrfField)Selected: <button formaction="\(attribute: page.link("/dead/retry", carried))" id="retry-selected">Retry</button> <button formaction="\(attribute: page.link("/dead/delete", carried))" class="delete" data-confirm="Delete the selected dead letters?">Delete</button></form>
                <form id="dead-matching" method="post" class="bulk" data-confirm="This acts on \(Format.count(result.total)) dead letters. Go on?">\(page.csrfField)<input type="hidden" name="scope" value="matching">\(hidden)
                All \(Format.count(result.total)) (\(scope)): <button formaction="\(attribute: page.link("/dead/retry", carried))" id="retry-matching">Retry all</button> <button formaction="\(attribute: page.link("/dead/delete", carried))" class="delete" id="delete-matching">Delete all</button></form>
                """
        }
        let table: HTML = result.entries.isEmpty ? "<p class=\"empty\" id=\"dead-empty\">No dead letter matches.</p>" : """
            \(forms)
            <table id="dead"><thead><tr>\(HTML(trusted: page.canAct ? "<th></th>" : ""))<th>Failed at</th><th>Queue</th><th>Id</th><th>Task</th><th class="num">Attempts</th><th>Error</th><th></th></tr></thead>
            <tbody>\(rows)</tbody></table>
            """
        let pager = Pager(page: page, path: "/dead", query: carried, number: number, size: size, total: result.total)
        let body: HTML = """
            \(search)
            <p class="summary" id="dead-total" data-total="\(result.total)">\(pager.summary(noun: "dead letter"))</p>
            \(table)
            \(bulk)
            \(pager.links)
            """
        return .page(Layout.page(page, section: .dead, notice: Layout.notice(visit.query), body))
    }

    func deadLetter(_ visit: Visit) async throws -> Reply {
        let page = visit.page
        guard let id = visit.query["id"], !id.isEmpty else { return .redirect(page.link("/dead")) }
        let letter = try await admin.deadLetter(id: id)
        var actions: HTML = .empty
        if page.canAct {
            actions = """
                <form method="post" class="actions" id="dead-letter-actions">\(page.csrfField)<input type="hidden" name="ids" value="\(attribute: letter.id)">
                <button formaction="\(attribute: page.link("/dead/retry"))" class="retry" id="retry-one">Retry</button> <button formaction="\(attribute: page.link("/dead/delete"))" class="delete" data-confirm="Delete this dead letter?" id="delete-one">Delete</button></form>
                """
        }
        let body: HTML = """
            <dl class="facts">
            <dt>Id</dt><dd><code id="letter-id">\(letter.id)</code></dd>
            <dt>Queue</dt><dd>\(letter.queue)</dd>
            <dt>Task</dt><dd id="letter-task">\(letter.task, or: "(malformed message)")</dd>
            <dt>Error</dt><dd class="error" id="letter-error">\(letter.error, or: "-")</dd>
            \(JobTrace(letter.fields).map { "<dt>Trace</dt><dd class=\"trace\">\($0.html(configuration.traceLink))</dd>" as HTML } ?? .empty)
            <dt>Attempts</dt><dd>\(letter.attempts.map(String.init), or: "?")</dd>
            <dt>Failed at</dt><dd>\(Format.date(letter.failedAtMilliseconds)) (\(Format.relative(letter.failedAtMilliseconds, now: page.now)))</dd>
            </dl>
            \(actions)
            <h2>Envelope</h2>
            <pre class="envelope" id="envelope">\(PrettyJSON.render(letter.fields, stored: letter.stored))</pre>
            """
        return .page(Layout.page(page, section: .dead, title: "Dead letter", body))
    }

    func retryDead(_ visit: Visit) async throws -> Reply {
        let back = Self.deadQueryFields(visit.query)
        let moved: Int
        if visit.form["scope"] == "matching" {
            let query = Self.deadQuery(visit.form)
            let results = try await admin.retryDeadLetters(matching: query)
            moved = results.filter { $0.outcome == .requeued || $0.outcome == .requeuedRaw }.count
            record("dead.retry_matching", by: visit.visitor, queue: query.queues?.first, count: moved, detail: Self.describe(query))
        } else {
            let ids = visit.form.all("ids").filter { !$0.isEmpty }
            let results = try await admin.retryDeadLetters(ids: ids)
            moved = results.filter { $0.outcome == .requeued || $0.outcome == .requeuedRaw }.count
            record("dead.retry", by: visit.visitor, queue: Set(results.map(\.queue)).sorted().joined(separator: ","), count: moved, detail: ids.joined(separator: ","))
        }
        return .redirect(visit.page.link("/dead", back + [("done", "retried"), ("n", String(moved))]))
    }

    func deleteDead(_ visit: Visit) async throws -> Reply {
        let back = Self.deadQueryFields(visit.query)
        let removed: Int
        if visit.form["scope"] == "matching" {
            let query = Self.deadQuery(visit.form)
            removed = try await admin.deleteDeadLetters(matching: query)
            record("dead.delete_matching", by: visit.visitor, queue: query.queues?.first, count: removed, detail: Self.describe(query))
        } else {
            let ids = visit.form.all("ids").filter { !$0.isEmpty }
            removed = try await admin.deleteDeadLetters(ids: ids)
            record("dead.delete", by: visit.visitor, count: removed, detail: ids.joined(separator: ","))
        }
        return .redirect(visit.page.link("/dead", back + [("done", "deleted"), ("n", String(removed))]))
    }

    /// A search in words, for the action log.
    static func describe(_ query: DeadLetterQuery) -> String {
        var parts: [String] = []
        if let queues = query.queues { parts.append("queue=\(queues.joined(separator: ","))") }
        if let task = query.task { parts.append("task~\(task)") }
        if let error = query.error { parts.append("error~\(error)") }
        if let from = query.failedFromMilliseconds { parts.append("from=\(Format.date(from))") }
        if let before = query.failedBeforeMilliseconds { parts.append("before=\(Format.date(before))") }
        return parts.isEmpty ? "everything" : parts.joined(separator: " ")
    }
}

/// An envelope as indented JSON, identifying fields first. Strings go through the JSON writer
/// (which escapes control and bidirectional characters), the whole through ``HTML``.
enum PrettyJSON {
    static let order = [
        "v", "id", "task", "queue", "error", "attempts", "failed_at", "args", "kwargs", "enqueued_at", "eta", "expires",
        "attempt", "max_retries", "priority", "idempotency_key", "origin", "last_error", "raw", "raw_base64",
    ]

    static func render(_ fields: [String: JSONValue], stored: [UInt8]) -> HTML {
        guard !fields.isEmpty || stored.isEmpty else {
            return "(not a JSON object) \(String(decoding: stored, as: UTF8.self))"
        }
        var text = ""
        write(.object(fields), indent: "", into: &text, top: true)
        // The JSON writer already escaped every control and bidirectional character inside
        // strings; the line breaks left are the indentation's own. So: escaped, not SafeText'd.
        return HTML(trusted: HTML.escape(text))
    }

    static func write(_ value: JSONValue, indent: String, into text: inout String, top: Bool = false) {
        switch value {
        case .object(let object):
            guard !object.isEmpty else { text += "{}"; return }
            let keys = top
                ? order.filter { object[$0] != nil } + object.keys.filter { !order.contains($0) }.sorted()
                : object.keys.sorted()
            text += "{\n"
            for (index, key) in keys.enumerated() {
                text += indent + "  " + scalar(.string(key)) + ": "
                write(object[key]!, indent: indent + "  ", into: &text)
                text += index == keys.count - 1 ? "\n" : ",\n"
            }
            text += indent + "}"
        case .array(let array):
            guard !array.isEmpty else { text += "[]"; return }
            text += "[\n"
            for (index, element) in array.enumerated() {
                text += indent + "  "
                write(element, indent: indent + "  ", into: &text)
                text += index == array.count - 1 ? "\n" : ",\n"
            }
            text += indent + "]"
        default:
            text += scalar(value)
        }
    }

    static func scalar(_ value: JSONValue) -> String {
        var out: [UInt8] = []
        JSONWriter.write(value, into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
