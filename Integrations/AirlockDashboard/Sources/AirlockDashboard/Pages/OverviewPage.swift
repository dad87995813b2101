import Airlock
import AirlockRedis

/// `/`: throughput over the last hour, totals, queue latency, workers, and the outbox hook.
extension Dashboard {
    struct Overview: Sendable {
        let report: StatsReport
        let series: ThroughputSeries
        /// `nil` while no outbox is configured.
        let outbox: Int?
    }

    /// Three round trips: the stats sample (two), then the series minutes not cached yet.
    func loadOverview() async throws -> Overview {
        let report = try await admin.statsSample()
        let series = try await self.series.series(admin: admin, queues: report.queues.map(\.name), endSecond: epochMilliseconds() / 1000)
        let outbox = try await configuration.outboxDepth?()
        return Overview(report: report, series: series, outbox: outbox)
    }

    func overview(_ visit: Visit) async throws -> Reply {
        let data = try await loadOverview()
        let values = Self.overviewValues(data)
        func card(_ id: String, _ label: String, _ hint: String) -> HTML {
            "<div class=\"card\"><div class=\"label\">\(label)</div><div class=\"figure\" id=\"\(attribute: id)\">\(values[id] ?? "-")</div><div class=\"hint\">\(hint)</div></div>"
        }
        let outboxCard: HTML = data.outbox == nil
            ? "<div class=\"card placeholder\" id=\"outbox-card\"><div class=\"label\">Outbox depth</div><div class=\"figure\" id=\"ov-outbox\">\(values["ov-outbox"] ?? "-")</div><div class=\"hint\">not configured: the transactional outbox is a separate feature; set <code>DashboardConfiguration.outboxDepth</code> to show it here</div></div>"
            : card("ov-outbox", "Outbox depth", "messages not yet handed to Redis")
        let body: HTML = """
            <section class="cards">
            \(card("ov-rate", "Processed/s", "average of the last 10 s"))
            \(card("ov-hour-processed", "Processed, last hour", "jobs that succeeded"))
            \(card("ov-hour-failed", "Failed, last hour", "failed attempts (retried or dead)"))
            \(card("ov-latency", "Queue latency", "oldest job next in line, any queue"))
            \(card("ov-workers", "Workers alive", "registered workers with a heartbeat"))
            \(outboxCard)
            </section>
            <h2>Processed and failed per second</h2>
            <div class="charts">\(Chart.throughput(data.series, seconds: data.series.count, name: "chart", caption: "last hour"))
            \(Chart.throughput(data.series, seconds: 300, name: "recent", caption: "last 5 minutes"))</div>
            <h2>Totals</h2>
            <section class="cards">
            \(card("ov-ready", "Ready", "waiting in ready lists"))
            \(card("ov-delayed", "Delayed", "scheduled or waiting for a retry"))
            \(card("ov-inflight", "In flight", "taken by workers, not yet settled"))
            \(card("ov-dead", "Dead letters", "kept in dead-letter lists"))
            \(card("ov-processed", "Processed, all time", "since the queues were first used"))
            \(card("ov-failed", "Failed, all time", "failed attempts"))
            \(card("ov-queues", "Queues", "known queues; paused ones"))
            </section>
            """
        return .page(Layout.page(visit.page, section: .overview, live: "/live/overview", body))
    }

    func liveOverview(_ visit: Visit) async throws -> Reply {
        let data = try await loadOverview()
        var values = Self.overviewValues(data)
        for (name, seconds) in [("chart", data.series.count), ("recent", 300)] {
            let peak = max(1, data.series.processed.suffix(seconds).max() ?? 0, data.series.failed.suffix(seconds).max() ?? 0)
            values[name + "-peak"] = Format.count(peak)
        }
        return .json(LiveFeed.json(values: values, chart: data.series))
    }

    /// Element id → text, for the page and for the live feed.
    static func overviewValues(_ data: Overview) -> [String: String] {
        let totals = data.report.totals
        let recent = data.series.processed.suffix(10)
        let rate = recent.isEmpty ? 0 : Double(recent.reduce(0, +)) / Double(recent.count)
        let workers = data.report.workers
        return [
            "ov-rate": rate >= 100 ? Format.count(Int(rate)) : String(format: "%.1f", rate),
            "ov-hour-processed": Format.count(data.series.processedTotal),
            "ov-hour-failed": Format.count(data.series.failedTotal),
            "ov-latency": Format.duration(totals.oldestReadyAgeMilliseconds),
            "ov-workers": workers.dead > 0 ? "\(workers.alive) (\(workers.dead) dead)" : "\(workers.alive)",
            "ov-outbox": data.outbox.map(Format.count) ?? "—",
            "ov-ready": Format.count(totals.ready),
            "ov-delayed": Format.count(totals.delayed),
            "ov-inflight": Format.count(totals.inFlight),
            "ov-dead": Format.count(totals.dead),
            "ov-processed": Format.count(totals.counters.processed),
            "ov-failed": Format.count(totals.counters.failed),
            "ov-queues": totals.pausedQueues > 0 ? "\(totals.queues) · \(totals.pausedQueues) paused" : "\(totals.queues)",
        ]
    }
}

/// The JSON the page script polls: element id → text, and the chart's numbers.
enum LiveFeed {
    static func json(values: [String: String], chart: ThroughputSeries? = nil) -> String {
        var object: [String: JSONValue] = ["values": .object(values.mapValues { .string($0) })]
        if let chart {
            object["chart"] = .object([
                "processed": .array(chart.processed.map { .int($0) }),
                "failed": .array(chart.failed.map { .int($0) }),
            ])
        }
        var out: [UInt8] = []
        JSONWriter.write(.object(object), into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
