import Airlock
import AirlockRedis

/// `/queues`: ready, delayed, in flight, dead, oldest age and pause state per queue; pause and resume.
extension Dashboard {
    func queues(_ visit: Visit) async throws -> Reply {
        let report = try await admin.statsSample()
        let page = visit.page
        let values = Self.queueValues(report)
        let rows: [HTML] = report.queues.map { queue in
            let key = "q-" + queue.name
            func cell(_ column: String) -> HTML {
                "<td class=\"num\" id=\"\(attribute: key + "-" + column)\">\(values[key + "-" + column] ?? "-")</td>"
            }
            var actions: HTML = .empty
            if page.canAct {
                let action = queue.paused ? "resume" : "pause"
                actions = """
                    <form method="post" action="\(attribute: page.link("/queues/\(action)"))">\(page.csrfField)<input type="hidden" name="queue" value="\(attribute: queue.name)"><button class="\(action)" name="do" value="\(action)">\(queue.paused ? "Resume" : "Pause")</button></form>
                    """
            }
            return """
                <tr data-queue="\(attribute: queue.name)"><th scope="row"><a href="\(attribute: page.link("/dead", [("queue", queue.name)]))">\(queue.name)</a></th>
                \(cell("ready"))\(cell("delayed"))\(cell("inflight"))\(cell("dead"))\(cell("oldest"))<td id="\(attribute: key + "-paused")">\(values[key + "-paused"] ?? "")</td>
                \(cell("processed"))\(cell("failed"))
                <td class="links"><a href="\(attribute: page.link("/delayed", [("queue", queue.name)]))">delayed</a> <a href="\(attribute: page.link("/dead", [("queue", queue.name)]))">dead</a></td>
                <td>\(actions)</td></tr>
                """
        }
        let table: HTML = report.queues.isEmpty ? "<p class=\"empty\">No queues are known in this namespace yet.</p>" : """
            <table id="queues"><thead><tr><th>Queue</th><th class="num">Ready</th><th class="num">Delayed</th><th class="num">In flight</th><th class="num">Dead</th><th class="num">Oldest</th><th>Paused</th><th class="num">Processed</th><th class="num">Failed</th><th></th><th></th></tr></thead>
            <tbody>\(rows)</tbody></table>
            <p class="hint">Oldest: how long the job next in line has been waiting (the queue's latency). Processed and failed are totals since the queue was first used.</p>
            """
        return .page(Layout.page(page, section: .queues, notice: Layout.notice(visit.query), live: "/live/queues", table))
    }

    func liveQueues(_ visit: Visit) async throws -> Reply {
        .json(LiveFeed.json(values: Self.queueValues(try await admin.statsSample())))
    }

    static func queueValues(_ report: StatsReport) -> [String: String] {
        var values: [String: String] = [:]
        for queue in report.queues {
            let key = "q-" + queue.name
            values[key + "-ready"] = Format.count(queue.ready)
            values[key + "-delayed"] = Format.count(queue.delayed)
            values[key + "-inflight"] = Format.count(queue.inFlight)
            values[key + "-dead"] = Format.count(queue.dead)
            values[key + "-oldest"] = Format.duration(queue.oldestReadyAgeMilliseconds)
            values[key + "-paused"] = queue.paused ? "paused" : "no"
            values[key + "-processed"] = Format.count(queue.counters.processed)
            values[key + "-failed"] = Format.count(queue.counters.failed)
        }
        return values
    }

    func pause(_ visit: Visit) async throws -> Reply {
        guard let queue = visit.form["queue"] else { throw AdminError(.invalidInput, "no queue given") }
        let was = try await admin.pause(queue)
        record("pause", by: visit.visitor, queue: queue, count: 0, detail: was ? "already paused" : nil)
        return .redirect(visit.page.link("/queues", [("done", "paused"), ("n", "1")]))
    }

    func resume(_ visit: Visit) async throws -> Reply {
        guard let queue = visit.form["queue"] else { throw AdminError(.invalidInput, "no queue given") }
        let was = try await admin.resume(queue)
        record("resume", by: visit.visitor, queue: queue, count: 0, detail: was ? nil : "was not paused")
        return .redirect(visit.page.link("/queues", [("done", "resumed"), ("n", "1")]))
    }
}
