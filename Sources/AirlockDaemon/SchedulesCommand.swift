import AirlockRedis
import ArgumentParser
import Airlock
import AirlockRedisClient
import AirlockWorker

/// `airlock-workerd schedules`: the fleet's periodic jobs, their last and next ticks.
struct SchedulesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedules",
        abstract: "List periodic jobs: timing, task, queue, last and next tick, which worker declared them.",
        discussion: """
            Workers publish the schedules they run every minute; one whose SEEN age keeps growing is no longer \
            declared by any running worker. --json prints one object (schema "airlock.schedules/1", see \
            docs/SCHEDULES.md).
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() async throws {
        try await withAdmin(connection) { admin in
            let report = try await admin.schedules()
            Console.out(json ? report.json : render(report))
        }
    }

    func render(_ report: ScheduleReport) -> String {
        guard !report.schedules.isEmpty else { return "no schedules published in namespace '\(safe(report.namespace))'" }
        var table = TextTable(headers: ["NAME", "TIMING", "TASK", "QUEUE", "MISSED", "LAST TICK", "NEXT TICK", "SEEN", "DECLARED BY"])
        for s in report.schedules {
            table.rows.append([
                s.name, s.timing ?? "(unreadable)", s.task, s.queue, s.missed ?? "?", Format.date(milliseconds: s.lastTickMilliseconds),
                Format.date(milliseconds: s.nextTickMilliseconds),
                s.seenAtMilliseconds.map { Format.age(milliseconds: max(0, report.sampledAtMilliseconds - $0)) + " ago" } ?? "-",
                s.declaredBy ?? "?",
            ])
        }
        return table.rendered
    }
}

extension ScheduleReport {
    /// Version of the JSON document ``json`` renders.
    static let schema = "airlock.schedules/1"

    /// The report as one line of JSON (schema in `docs/SCHEDULES.md`).
    var json: String {
        AdminJSON.object([
            ("schema", .string(Self.schema)),
            ("namespace", .string(namespace)),
            ("sampled_at_ms", .int(sampledAtMilliseconds)),
            ("schedules", .array(schedules.map { s in
                .object([
                    ("name", .string(s.name)), ("timing", .string(s.timing)), ("task", .string(s.task)), ("queue", .string(s.queue)),
                    ("missed", .string(s.missed)), ("last_tick_ms", .int(s.lastTickMilliseconds)),
                    ("last_tick", .isoDate(milliseconds: s.lastTickMilliseconds)), ("next_tick_ms", .int(s.nextTickMilliseconds)),
                    ("next_tick", .isoDate(milliseconds: s.nextTickMilliseconds)), ("declared_by", .string(s.declaredBy)),
                    ("seen_at_ms", .int(s.seenAtMilliseconds)),
                ])
            })),
        ]).text
    }
}
