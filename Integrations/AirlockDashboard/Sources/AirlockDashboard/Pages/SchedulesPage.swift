import Airlock
import AirlockRedis

/// `/schedules`: the periodic jobs the workers publish — timing, task, queue, missed-tick policy,
/// last and next tick, when a worker last published each and which (docs/SCHEDULES.md).
extension Dashboard {
    func schedules(_ visit: Visit) async throws -> Reply {
        let page = visit.page
        let report = try await admin.schedules()
        let rows: [HTML] = report.schedules.enumerated().map { index, schedule in
            let seen = schedule.seenAtMilliseconds.map { Format.duration(max(0, report.sampledAtMilliseconds - $0)) + " ago" }
            return """
                <tr id="schedule-\(index)"><th scope="row"><code>\(schedule.name)</code></th><td>\(schedule.timing, or: "(unreadable)")</td>
                <td><code>\(schedule.task)</code></td><td>\(schedule.queue)</td><td>\(schedule.missed, or: "?")</td>
                <td title="\(attribute: Format.date(schedule.lastTickMilliseconds))">\(Format.date(schedule.lastTickMilliseconds))</td>
                <td title="\(attribute: Format.date(schedule.nextTickMilliseconds))">\(Format.relative(schedule.nextTickMilliseconds, now: page.now))</td>
                <td>\(seen, or: "-")</td><td><code>\(schedule.declaredBy, or: "?")</code></td></tr>
                """
        }
        let body: HTML = report.schedules.isEmpty ? "<p class=\"empty\">No periodic job is published in this namespace: workers publish the schedules they run every minute.</p>" : """
            <p class="hint">Each tick is enqueued once across the fleet, whichever workers declare the schedule. A schedule whose “seen” age keeps growing is no longer declared by any running worker.</p>
            <table id="schedules"><thead><tr><th>Name</th><th>Timing</th><th>Task</th><th>Queue</th><th>Missed ticks</th><th>Last tick</th><th>Next tick</th><th>Seen</th><th>Declared by</th></tr></thead>
            <tbody>\(rows)</tbody></table>
            """
        return .page(Layout.page(page, section: .schedules, body))
    }
}
