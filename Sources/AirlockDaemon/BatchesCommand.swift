import AirlockRedis
import ArgumentParser
import Airlock
import AirlockRedisClient
import AirlockWorker

/// `airlock-workerd batches`: batches and their progress.
struct BatchesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batches",
        abstract: "List batches (newest first) with pending, succeeded, dead and cancelled counts, or show one.",
        discussion: """
            A batch is complete when no job is pending; its callbacks were queued then (onSuccess only if every \
            job succeeded) and its record expires after its retention (24 h by default). --json prints one object \
            (schema "airlock.batches/1", see docs/OPERATIONS.md).
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "Show this batch only.")
    var id: String?

    @Option(help: "Most batches to list.")
    var limit = 50

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard limit >= 1 else { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        try await withAdmin(connection) { admin in
            let report: BatchReport
            if let id {
                guard let batch = try await admin.batch(id: id) else {
                    throw CommandFailure("no batch \(safe(id)): it was never written, or it completed and its record expired")
                }
                report = BatchReport(namespace: admin.namespace, batches: [batch])
            } else {
                report = try await admin.batches(limit: limit)
            }
            Console.out(json ? report.json : render(report))
        }
    }

    func render(_ report: BatchReport) -> String {
        guard !report.batches.isEmpty else { return "no batches in namespace '\(safe(report.namespace))'" }
        var table = TextTable(headers: ["ID", "QUEUE", "STATE", "TOTAL", "PENDING", "SUCCEEDED", "DEAD", "CANCELLED", "CREATED", "DESCRIPTION"])
        for b in report.batches {
            var state = b.isComplete ? (b.succeeded == b.total ? "succeeded" : "complete") : "running"
            if b.callbackError != nil { state += " (callback not queued)" }
            table.rows.append([
                b.id, b.queue, state, "\(b.total)", "\(b.pending)", "\(b.succeeded)", "\(b.dead)", "\(b.cancelled)",
                Format.date(milliseconds: b.createdAtMilliseconds), b.description,
            ])
        }
        return table.rendered
    }
}

extension BatchesCommand {
    /// Newest batches `stats` looks at for running ones.
    static let statsLimit = 20

    /// `stats`' section: running batches with their progress.
    static func runningSection(_ running: [BatchProgress]) -> String {
        var table = TextTable(headers: ["RUNNING BATCH", "QUEUE", "DONE", "PENDING", "DEAD", "CANCELLED", "DESCRIPTION"], rightAligned: [2, 3, 4, 5])
        for b in running {
            table.rows.append([b.id, b.queue, "\(b.total - b.pending)/\(b.total)", "\(b.pending)", "\(b.dead)", "\(b.cancelled)", b.description])
        }
        return table.rendered
    }
}

extension BatchReport {
    /// Version of the JSON document ``json`` renders.
    static let schema = "airlock.batches/1"

    /// The report as one line of JSON (schema in `docs/OPERATIONS.md`).
    var json: String {
        AdminJSON.object([
            ("schema", .string(Self.schema)),
            ("namespace", .string(namespace)),
            ("batches", .array(batches.map { b in
                .object([
                    ("id", .string(b.id)), ("queue", .string(b.queue)), ("description", .string(b.description)),
                    ("total", .int(b.total)), ("pending", .int(b.pending)), ("succeeded", .int(b.succeeded)), ("dead", .int(b.dead)),
                    ("cancelled", .int(b.cancelled)), ("complete", .bool(b.isComplete)), ("on_success", .bool(b.hasOnSuccess)),
                    ("on_complete", .bool(b.hasOnComplete)), ("created_at_ms", .int(b.createdAtMilliseconds)),
                    ("completed_at_ms", .int(b.completedAtMilliseconds)), ("callback_error", .string(b.callbackError)),
                ])
            })),
        ]).text
    }
}
