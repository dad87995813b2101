import Airlock
import AirlockRedis
import AirlockWorker
import ArgumentParser

/// `airlock-workerd limit <queue> [--concurrency N] [--rate N/INTERVAL] [--burst B] [--clear] [--json]`.
struct LimitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "limit",
        abstract: "Show, set or clear a queue's fleet-wide concurrency and rate limit.",
        discussion: """
            With no option, prints the limit and the jobs each worker holds against it. --concurrency N: at most N \
            jobs held at once by all workers together (running and prefetched). --rate N/INTERVAL (100/1s, 5/500ms, \
            30/1m): at most N jobs taken per interval, bursts of --burst (default: 20 ms worth, at least 1). Setting \
            replaces the whole record; --clear removes it. Jobs over the limit stay in the ready list, in their place; \
            a killed worker's share returns after its heartbeat TTL. Stored in <ns>:{queue}:limit (docs/OPERATIONS.md, \
            "Queue limits").
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The queue.")
    var queue: String

    @Option(help: ArgumentHelp("Most jobs held at once by all workers together.", valueName: "n"))
    var concurrency: Int?

    @Option(help: ArgumentHelp("Most jobs taken per interval by all workers together, such as 100/1s.", valueName: "n/interval"))
    var rate: String?

    @Option(help: ArgumentHelp("Jobs a rate lets through at once after a quiet period (with --rate).", valueName: "n"))
    var burst: Int?

    @Flag(help: "Remove the queue's limit.")
    var clear = false

    @Flag(help: "Print one JSON object (schema \"airlock.limit/1\").")
    var json = false

    func validate() throws {
        if let problem = QueueName.problem(with: queue) { throw ValidationError(problem) }
        if clear, concurrency != nil || rate != nil || burst != nil {
            throw ValidationError("--clear cannot be combined with --concurrency, --rate or --burst")
        }
        _ = try requestedLimit()
    }

    /// The limit the options give; `nil` when they give none (show, or clear).
    func requestedLimit() throws(ValidationError) -> QueueLimit? {
        guard concurrency != nil || rate != nil || burst != nil else { return nil }
        var parts: [String] = []
        if let concurrency { parts.append("concurrency:\(concurrency)") }
        if let rate { parts.append("rate:\(rate)") }
        if let burst { parts.append("burst:\(burst)") }
        do {
            return try QueueLimit(parsing: parts.joined(separator: ","))
        } catch {
            throw ValidationError(error.description.replacing("burst:N needs a rate:N/INTERVAL", with: "--burst needs --rate"))
        }
    }

    func run() async throws {
        let requested = try requestedLimit()
        try await withAdmin(connection) { admin in
            if clear {
                let existed = try await admin.clearLimit(queue)
                if !json {
                    Console.out(existed ? "cleared the limit of queue '\(queue)'" : "queue '\(queue)' had no limit")
                    return
                }
            } else if let requested {
                let previous = try await admin.setLimit(requested, on: queue)
                if !json {
                    let replaced = previous.map { " (replacing \($0))" } ?? ""
                    Console.out("queue '\(queue)': limit set to \(requested)\(replaced); workers enforce it from their next fetch")
                    return
                }
            }
            let status = try await admin.limit(of: queue)
            Console.out(json ? Self.json(status) : Self.render(status))
        }
    }

    /// The limit, then one line per worker holding jobs against it (ids escaped: anyone can write them).
    static func render(_ status: QueueLimitStatus) -> String {
        var lines = [StatsCommand.limitText(status.queue, status.limit, held: status.held)]
        if status.limit?.concurrency != nil {
            for worker in status.leases.keys.sorted() { lines.append("  \(safe(worker)): \(status.leases[worker] ?? 0) held") }
        }
        return lines.joined(separator: "\n")
    }

    /// `{"schema":"airlock.limit/1","queue":…,"limit":{…}|null,"leases":{worker: n}}`.
    static func json(_ status: QueueLimitStatus) -> String {
        AdminJSON.object([
            ("schema", .string("airlock.limit/1")),
            ("queue", .string(status.queue)),
            ("limit", limitJSON(status.limit, held: status.held)),
            ("leases", .object(status.leases.keys.sorted().map { ($0, .int(status.leases[$0])) })),
        ]).text
    }
}
