import Airlock
import AirlockRedis
import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import AirlockRedisClient
import AirlockWorker

/// `airlock-workerd enqueue`: one job, through the same executor code producers use.
struct EnqueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue",
        abstract: "Enqueue one job and print its id.",
        discussion: """
            Goes through RedisExecutor, the code producers use: the job is written atomically to the queue's \
            ready list (or its delayed set with --countdown/--eta). With an --idempotency-key already used on the \
            queue, nothing is written and "duplicate of <id>" is printed (exit status 0). \
            Example: airlock-workerd enqueue airlock.sleep --kwargs '{"seconds": 2}' --queue default
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The task name workers look up (e.g. airlock.ping).")
    var task: String

    @Option(help: ArgumentHelp("The queue (default: default; with --protocol celery: celery).", valueName: "name"))
    var queue: String?

    @Option(help: ArgumentHelp(
        "native (an Airlock envelope) or celery (a Celery protocol v2 message on kombu's queue key, for a Celery fleet; priority 0 is consumed first there).",
        valueName: "native|celery"))
    var `protocol`: String = "native"

    @Option(help: ArgumentHelp("Positional arguments: a JSON array.", valueName: "json"))
    var args: String?

    @Option(help: ArgumentHelp("Keyword arguments: a JSON object.", valueName: "json"))
    var kwargs: String?

    @Option(help: ArgumentHelp("Run no sooner than this many seconds from now.", valueName: "seconds"))
    var countdown: Double?

    @Option(help: ArgumentHelp("Run no sooner than this moment (ISO 8601, e.g. 2025-05-01T12:00:00Z).", valueName: "time"))
    var eta: String?

    @Option(help: ArgumentHelp("Drop the job unrun if it has not started within this many seconds.", valueName: "seconds"))
    var expires: Double?

    @Option(help: "Retries after the first attempt (default: the task's, else the worker's).")
    var maxRetries: Int?

    @Option(help: "Priority; above 0 puts the job at the front of the ready list.")
    var priority: Int?

    @Option(help: ArgumentHelp("A second enqueue with the same key on the same queue (within 24 h) is not written.", valueName: "key"))
    var idempotencyKey: String?

    func validate() throws {
        guard !task.isEmpty else { throw ValidationError("the task name must not be empty") }
        if let queue, let problem = QueueName.problem(with: queue) { throw ValidationError("--queue: \(problem)") }
        guard ["native", "celery"].contains(`protocol`) else { throw ValidationError("--protocol must be native or celery") }
        if countdown != nil && eta != nil { throw ValidationError("give --countdown or --eta, not both") }
        let longest = Int(Duration.longestAccepted.timeInterval)
        if let countdown, Duration(checkedSeconds: countdown) == nil {
            throw ValidationError("--countdown must be a number of seconds from 0 to \(longest)")
        }
        if let expires, expires <= 0 || Duration(checkedSeconds: expires) == nil {
            throw ValidationError("--expires must be a positive number of seconds, at most \(longest)")
        }
        if let maxRetries, !Envelope.Limits.attempts.contains(maxRetries) {
            throw ValidationError("--max-retries must be between 0 and \(Envelope.Limits.attempts.upperBound)")
        }
        if let priority, !Envelope.Limits.priorities.contains(priority) {
            throw ValidationError("--priority must be between \(Envelope.Limits.priorities.lowerBound) and \(Envelope.Limits.priorities.upperBound)")
        }
    }

    func run() async throws {
        // Everything the operator typed is checked before Redis is contacted.
        let arguments: TaskArguments
        let options: DispatchOptions
        do {
            arguments = TaskArguments(args: try Self.parseArgs(args), kwargs: try Self.parseKwargs(kwargs))
            options = DispatchOptions(
                queue: queue ?? (`protocol` == "celery" ? "celery" : "default"),
                countdown: countdown.flatMap(Duration.init(checkedSeconds:)),
                eta: try eta.map(Self.parseDate),
                expires: expires.flatMap(Duration.init(checkedSeconds:)).map { .after($0) },
                maxRetries: maxRetries, priority: priority, idempotencyKey: idempotencyKey)
        } catch {
            throw fail(error)
        }
        try await withAdmin(connection) { admin in
            let result = `protocol` == "celery"
                ? try await admin.enqueueCelery(task: task, arguments: arguments, options: options, origin: "airlock-workerd enqueue")
                : try await admin.enqueue(task: task, arguments: arguments, options: options, origin: "airlock-workerd enqueue")
            if let existing = result.duplicateOf {
                Console.out("duplicate of \(safe(existing))")
                Console.note("idempotency key '\(idempotencyKey ?? "")' was already used on queue '\(result.queue)' by job \(existing); nothing was enqueued")
                return
            }
            Console.out(result.id)
            if let due = result.dueAtMilliseconds, due > epochMilliseconds() {
                Console.note(`protocol` == "celery"
                    ? "eta \(Format.date(milliseconds: due)) (a Celery worker holds it until then)"
                    : "delayed until \(Format.date(milliseconds: due)) (in the delayed set of '\(result.queue)')")
            }
        }
    }

    static func parseArgs(_ text: String?) throws -> [JSONValue] {
        guard let text else { return [] }
        guard case .array(let values) = try parseJSON(text, option: "--args") else {
            throw CommandFailure("--args must be a JSON array, like '[1, \"two\"]'")
        }
        return values
    }

    static func parseKwargs(_ text: String?) throws -> [String: JSONValue] {
        guard let text else { return [:] }
        guard case .object(let fields) = try parseJSON(text, option: "--kwargs") else {
            throw CommandFailure("--kwargs must be a JSON object, like '{\"seconds\": 2}'")
        }
        return fields
    }

    static func parseJSON(_ text: String, option: String) throws -> JSONValue {
        do {
            return try JSONParser.parse(Array(text.utf8))
        } catch {
            throw CommandFailure("\(option) is not valid JSON: \(error.description) (got: \(Format.truncate(text, 60)))")
        }
    }

    static func parseDate(_ text: String) throws -> Date {
        for style in [Date.ISO8601FormatStyle(), Date.ISO8601FormatStyle(includingFractionalSeconds: true)] {
            if let date = try? Date(text, strategy: style) { return date }
        }
        throw CommandFailure("--eta '\(text)' is not an ISO 8601 time with a time zone, like 2025-05-01T12:00:00Z or 2025-05-01T14:00:00+02:00")
    }
}
