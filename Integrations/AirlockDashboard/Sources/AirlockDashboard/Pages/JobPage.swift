import Airlock
import AirlockRedis

/// `/job?id=`: where a job is now — ready (with the jobs ahead of it), delayed until when, in
/// flight on which worker, dead — or that it is in none of those places; and a button that
/// cancels it (`POST /job/cancel`, `RedisAdmin.cancel(jobID:)`) while it is not dead.
extension Dashboard {
    func job(_ visit: Visit) async throws -> Reply {
        let page = visit.page
        let id = visit.query["id"]?.trimmingWhitespace ?? ""
        let finder: HTML = """
            <form class="filters" method="get" action="\(attribute: page.link("/job"))"><label>Job id <input name="id" id="job-id" value="\(attribute: id)" size="40"></label><button>Find</button></form>
            """
        guard !id.isEmpty else {
            return .page(Layout.page(page, section: .job, finder + "<p class=\"hint\">Searches every queue's ready list, delayed set, in-flight lists and dead letters.</p>"))
        }
        let search = try await admin.locateJob(id: id)
        let workers = try await admin.workers().workers
        let alive = Dictionary(workers.map { ($0.id, $0.alive) }, uniquingKeysWith: { a, _ in a })
        var found: [HTML] = search.locations.map { location in
            let place: HTML
            switch location.place {
            case .ready(let ahead):
                place = "<strong>ready</strong> on queue <code>\(location.queue)</code>: \(Format.count(ahead)) job\(ahead == 1 ? "" : "s") ahead of it"
            case .delayed(let due):
                let kind = (location.fields["attempt"]?.intValue ?? 0) > 0 ? "waiting for a retry" : "scheduled"
                place = "<strong>delayed</strong> (\(kind)) on queue <code>\(location.queue)</code>, due \(Format.date(due)) (\(Format.relative(due, now: page.now)))"
            case .inFlight(let worker):
                let state = alive[worker] == true ? "alive" : "dead, awaiting recovery"
                place = "<strong>in flight</strong> on worker <code>\(worker)</code> (\(state)), queue <code>\(location.queue)</code>"
            case .dead:
                place = "<strong>dead</strong> on queue <code>\(location.queue)</code>: <a href=\"\(attribute: page.link("/dead/show", [("id", id)]))\">show the dead letter</a>"
            }
            return """
                <section class="location"><p class="place">\(place)</p>
                <p>Task <code>\(location.fields["task"]?.stringValue, or: "?")</code></p>
                \(trace(location.fields))
                <pre class="envelope">\(PrettyJSON.render(location.fields, stored: location.stored))</pre></section>
                """
        }
        if found.isEmpty {
            found = ["<p class=\"place\" id=\"not-found\"><strong>not found</strong> in any ready list, delayed set, in-flight list or dead-letter list of the \(search.queuesSearched) queue(s): the job finished (Airlock keeps no result of a native job), expired, was deleted, or never existed.</p>"]
        }
        if !search.complete {
            found.append("<p class=\"problem\">Some lists were longer than the search limit and were searched only in part.</p>")
        }
        let cancellable = search.locations.contains { if case .dead = $0.place { false } else { true } }
        if page.canAct && cancellable {
            found.append("""
                <form method="post" class="actions" id="job-cancel" action="\(attribute: page.link("/job/cancel"))" data-confirm="Cancel this job? It will not run (a running task is cancelled), and it is not retried.">\(page.csrfField)<input type="hidden" name="id" value="\(attribute: id)"><button class="delete">Cancel job</button></form>
                """)
        }
        let body: HTML = "\(finder)<div id=\"job-result\">\(found)</div>"
        return .page(Layout.page(page, section: .job, title: "Job \(HTML.truncated(id, 40))", notice: Layout.notice(visit.query), body))
    }

    /// `POST /job/cancel`: cancels the job wherever it is, logs who did, and shows its page again.
    func cancelJob(_ visit: Visit) async throws -> Reply {
        let id = visit.form["id"]?.trimmingWhitespace ?? ""
        let report = try await admin.cancel(jobID: id)
        let acted = report.steps.filter { $0.action != .deadLetter }
        record("job.cancel", by: visit.visitor, queue: acted.first?.queue, count: acted.count, detail: id)
        let done = acted.contains { $0.action == .requestedFromWorker } ? "requested" : acted.isEmpty ? "not-cancelled" : "cancelled"
        return .redirect(visit.page.link("/job", [("id", id), ("done", done), ("n", String(acted.count))]))
    }

    /// The trace line of a job that carries a trace context; nothing otherwise.
    func trace(_ fields: [String: JSONValue]) -> HTML {
        guard let trace = JobTrace(fields) else { return .empty }
        return "<p class=\"trace\">Trace \(trace.html(configuration.traceLink))</p>"
    }
}
