import AirlockRedis
import ArgumentParser
import Airlock
import AirlockRedisClient
import AirlockWorker

/// `airlock-workerd workers`: who is working.
struct WorkersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workers",
        abstract: "List registered workers: host, pid, queues, jobs in flight, heartbeat, version.",
        discussion: """
            A registered worker whose heartbeat expired is shown as "dead (awaiting recovery)": a live worker's \
            reaper moves its in-flight jobs back to their queues within a few seconds and deregisters it. \
            --json prints one object (schema "airlock.workers/1", see docs/OPERATIONS.md).
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() async throws {
        try await withAdmin(connection) { admin in
            let report = try await admin.workers()
            Console.out(json ? report.json : render(report))
        }
    }

    func render(_ report: WorkerReport) -> String {
        guard !report.workers.isEmpty else { return "no workers registered in namespace '\(safe(report.namespace))'" }
        var table = TextTable(
            headers: ["ID", "STATUS", "HOST", "PID", "QUEUES", "CONCURRENCY", "IN FLIGHT", "HEARTBEAT", "STARTED", "VERSION"],
            rightAligned: [3, 5, 6])
        for w in report.workers {
            table.rows.append([
                w.id, w.alive ? "alive" : "dead (awaiting recovery)", w.host ?? "?", w.pid.map(String.init) ?? "?",
                w.queues.isEmpty ? "?" : w.queues.joined(separator: ","), w.concurrency.map(String.init) ?? "?", "\(w.inFlight)",
                w.heartbeatAgeMilliseconds.map { Format.age(milliseconds: $0) + " ago" } ?? "-",
                Format.date(milliseconds: w.startedAtMilliseconds), w.version ?? "?",
            ])
        }
        let alive = report.workers.filter(\.alive).count
        let dead = report.workers.count - alive
        return table.rendered + "\n\n" + "\(alive) alive" + (dead > 0 ? ", \(dead) dead (awaiting recovery)" : "")
    }
}
