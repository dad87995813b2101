import AirlockRedis
import ArgumentParser
import Airlock
import AirlockRedisClient
import AirlockWorker

/// `airlock-workerd cancel <id>`: make sure a job does not run (or stops running).
struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a job by id: removed if ready or delayed; cancelled by its worker if running or prefetched.",
        discussion: """
            A ready or delayed job is removed and counted "cancelled" in its queue's stats. A job a live worker \
            holds is requested from that worker, which drops it if it has not started, or cancels its task \
            (cooperatively: Swift's Task cancellation) and records it as cancelled, never retried — after its next \
            heartbeat (default every second). A dead letter has already failed: nothing is cancelled. Exit 1 when \
            the job is not found. --json prints one object (schema "airlock.cancel/1", see docs/OPERATIONS.md).
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The job id.")
    var id: String

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() async throws {
        try await withAdmin(connection) { admin in
            let report = try await admin.cancel(jobID: id)
            if json {
                Console.out(report.json)
            } else {
                for step in report.steps { Console.out(Self.line(step, id: report.id)) }
            }
            guard report.cancelled else {
                let searched = report.complete ? "" : " (some lists were longer than the scan limit and searched only in part)"
                if report.steps.isEmpty {
                    throw CommandFailure("no job \(safe(id)) is ready, delayed or in flight: it finished, expired, was deleted or never existed\(searched)")
                }
                throw CommandFailure("job \(safe(id)) already failed for good (a dead letter): nothing to cancel; `dead purge` removes it")
            }
        }
    }

    static func line(_ step: CancelReport.Step, id: String) -> String {
        let queue = "queue '\(safe(step.queue))'"
        switch step.action {
        case .removedFromReady: return "cancelled \(safe(id)): removed from the ready jobs of \(queue)"
        case .removedFromDelayed: return "cancelled \(safe(id)): removed from the delayed jobs of \(queue)"
        case .removedFromDeadWorker: return "cancelled \(safe(id)): removed from dead worker \(safe(step.worker ?? "?"))'s jobs of \(queue)"
        case .requestedFromWorker:
            return "cancel of \(safe(id)) requested from worker \(safe(step.worker ?? "?")) (\(queue)): it is dropped, or its task cancelled, after the worker's next heartbeat"
        case .deadLetter: return "\(safe(id)) is a dead letter of \(queue)"
        }
    }
}

extension CancelReport {
    /// Version of the JSON document ``json`` renders.
    static let schema = "airlock.cancel/1"

    /// The report as one line of JSON.
    var json: String {
        AdminJSON.object([
            ("schema", .string(Self.schema)), ("id", .string(id)), ("cancelled", .bool(cancelled)), ("complete", .bool(complete)),
            ("steps", .array(steps.map { step in
                .object([("action", .string(step.action.rawValue)), ("queue", .string(step.queue)), ("worker", .string(step.worker))])
            })),
        ]).text
    }
}
