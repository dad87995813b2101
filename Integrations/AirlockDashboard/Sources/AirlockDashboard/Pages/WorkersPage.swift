import Airlock
import AirlockRedis

/// `/workers`: id, status, host, queues, concurrency, in flight, heartbeat age, version.
extension Dashboard {
    func workers(_ visit: Visit) async throws -> Reply {
        let report = try await admin.workers()
        let values = Self.workerValues(report)
        let rows: [HTML] = report.workers.map { worker in
            let key = "w-" + worker.id
            func cell(_ column: String, _ classes: String = "num") -> HTML {
                "<td class=\"\(attribute: classes)\" id=\"\(attribute: key + "-" + column)\">\(values[key + "-" + column] ?? "-")</td>"
            }
            return """
                <tr class="\(worker.alive ? "alive" : "dead")"><th scope="row"><code>\(worker.id)</code></th>
                \(cell("status", "status"))<td>\(worker.host, or: "?")</td><td class="num">\(worker.pid.map(String.init), or: "?")</td>
                <td>\(worker.queues.joined(separator: ", "))</td><td class="num">\(worker.concurrency.map(String.init), or: "?")</td>
                \(cell("inflight"))\(cell("heartbeat"))<td>\(Format.date(worker.startedAtMilliseconds))</td><td>\(worker.version, or: "?")</td></tr>
                """
        }
        let alive = report.workers.filter(\.alive).count
        let body: HTML = report.workers.isEmpty ? "<p class=\"empty\">No worker is registered in this namespace.</p>" : """
            <p id="worker-count">\(alive) alive\(HTML(trusted: report.workers.count > alive ? ", \(report.workers.count - alive) dead (awaiting recovery by a live worker's reaper)" : ""))</p>
            <table id="workers"><thead><tr><th>Id</th><th>Status</th><th>Host</th><th class="num">Pid</th><th>Queues</th><th class="num">Concurrency</th><th class="num">In flight</th><th class="num">Heartbeat</th><th>Started</th><th>Version</th></tr></thead>
            <tbody>\(rows)</tbody></table>
            """
        return .page(Layout.page(visit.page, section: .workers, live: "/live/workers", body))
    }

    func liveWorkers(_ visit: Visit) async throws -> Reply {
        .json(LiveFeed.json(values: Self.workerValues(try await admin.workers())))
    }

    static func workerValues(_ report: WorkerReport) -> [String: String] {
        var values: [String: String] = [:]
        for worker in report.workers {
            let key = "w-" + worker.id
            values[key + "-status"] = worker.alive ? "alive" : "dead (awaiting recovery)"
            values[key + "-inflight"] = Format.count(worker.inFlight)
            values[key + "-heartbeat"] = worker.heartbeatAgeMilliseconds.map { Format.duration($0) + " ago" } ?? "?"
        }
        return values
    }
}
