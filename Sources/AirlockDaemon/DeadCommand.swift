import AirlockRedis
import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Airlock
import AirlockRedisClient
import AirlockWorker

/// `airlock-workerd dead …`: inspect and repair dead letters.
struct DeadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead",
        abstract: "List, show, retry and purge dead letters (jobs that failed for good or could not be read).",
        subcommands: [DeadListCommand.self, DeadShowCommand.self, DeadRetryCommand.self, DeadPurgeCommand.self]
    )
}

/// `airlock-workerd dead list`.
struct DeadListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Newest dead letters first: failed at, queue, id, task, attempts, error.",
        discussion: "--json prints one object (schema \"airlock.dead/1\", see docs/OPERATIONS.md) with every entry in full."
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(name: .customLong("queue"), help: ArgumentHelp("Only these queues (repeatable, or a comma-separated list).", valueName: "name"))
    var queues: [String] = []

    @Option(help: "Most entries to show; 0 shows all.")
    var limit: Int = 20

    @Option(help: ArgumentHelp("Only tasks whose name contains this text (ASCII case-insensitive).", valueName: "text"))
    var task: String?

    @Option(help: ArgumentHelp("Only entries whose error contains this text (ASCII case-insensitive).", valueName: "text"))
    var grep: String?

    @Option(help: ArgumentHelp("Only entries that failed within this long (30s, 15m, 2h, 7d) or since this UTC time (2026-12-01T09:00:00Z).", valueName: "when"))
    var since: String?

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard limit >= 0 else { throw ValidationError("--limit must not be negative") }
        _ = try validatedQueueList(queues, option: "--queue")
        if let since, Self.milliseconds(since: since, now: epochMilliseconds()) == nil {
            throw ValidationError("--since needs a duration (30s, 15m, 2h, 7d) or a UTC time (2026-12-01T09:00:00Z), not '\(safe(since))'")
        }
    }

    func run() async throws {
        try await withAdmin(connection) { admin in
            let page: DeadLetterPage
            if task != nil || grep != nil || since != nil {
                // A search: the server-side scan of each list (bounded by the dead-letter cap).
                let query = DeadLetterQuery(
                    queues: queueList(queues), task: task, error: grep,
                    failedFromMilliseconds: since.flatMap { Self.milliseconds(since: $0, now: epochMilliseconds()) })
                let found = try await admin.searchDeadLetters(query, limit: limit == 0 ? Int(Int32.max) : limit)
                page = DeadLetterPage(namespace: found.namespace, entries: found.entries, total: found.total)
            } else {
                page = try await admin.deadLetters(queues: queueList(queues), limit: limit)
            }
            Console.out(json ? page.json : render(page))
        }
    }

    /// The moment `--since` names, ms since the epoch: `now` minus a duration (`<n>s|m|h|d`), or
    /// an ISO 8601 UTC time; nil when it is neither.
    static func milliseconds(since text: String, now: Int64) -> Int64? {
        let units: [Character: Int64] = ["s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000]
        if let unit = text.last.flatMap({ units[$0] }), let count = Int64(text.dropLast()), count >= 0, count <= 36_500 * 86_400 {
            return now - count * unit
        }
        guard let date = try? Date(text, strategy: Date.ISO8601FormatStyle()) else { return nil }
        return Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    func render(_ page: DeadLetterPage) -> String {
        guard !page.entries.isEmpty else { return "no dead letters" }
        var table = TextTable(headers: ["FAILED AT", "QUEUE", "ID", "TASK", "ATTEMPTS", "ERROR"], rightAligned: [4])
        for letter in page.entries {
            table.rows.append([
                Format.date(milliseconds: letter.failedAtMilliseconds), letter.queue, letter.id.isEmpty ? "?" : letter.id,
                letter.task ?? "(malformed)", letter.attempts.map(String.init) ?? "?", Format.truncate(letter.error ?? "", 100),
            ])
        }
        let shown = page.entries.count == page.total
            ? "\(Format.count(page.total, "dead letter"))"
            : "showing \(page.entries.count) of \(Format.count(page.total, "dead letter")) (--limit 0 shows all)"
        return table.rendered + "\n\n" + shown + "; `dead show <id>` prints one in full"
    }
}

/// `airlock-workerd dead show <id>`.
struct DeadShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print one dead letter in full, as indented JSON."
    )

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The job id (from `dead list`).")
    var id: String

    func run() async throws {
        try await withAdmin(connection) { admin in
            Console.out(try await admin.deadLetter(id: id).prettyJSON)
        }
    }
}

/// `airlock-workerd dead retry`.
struct DeadRetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Move dead letters back to their queue's ready list with attempt 0.",
        discussion: """
            The job goes back without its dead-letter fields (error, failed_at, attempts) and with attempt 0; \
            every other field is kept. Each move is atomic (a Lua script removes the entry and pushes the job), \
            so a job is never in both lists or in neither. A malformed message (task null) is pushed back as \
            its original bytes, unchanged.
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "Job ids to retry (from `dead list`).")
    var ids: [String] = []

    @Flag(help: "Retry every dead letter (of the --queue queues, else of every queue).")
    var all = false

    @Option(name: .customLong("queue"), help: ArgumentHelp("With --all: only these queues (repeatable, or a comma-separated list).", valueName: "name"))
    var queues: [String] = []

    func validate() throws {
        if all && !ids.isEmpty { throw ValidationError("give job ids or --all, not both") }
        if !all && ids.isEmpty { throw ValidationError("give the job ids to retry, or --all") }
        if !all && !queues.isEmpty { throw ValidationError("--queue applies to --all; ids already identify their queue") }
        _ = try validatedQueueList(queues, option: "--queue")
    }

    func run() async throws {
        try await withAdmin(connection) { admin in
            let results = all ? try await admin.retryAllDeadLetters(queues: queueList(queues)) : try await admin.retryDeadLetters(ids: ids)
            var moved = 0
            var notMoved = 0
            for result in results {
                let id = result.id.isEmpty ? "(no id)" : result.id
                switch result.outcome {
                case .requeued:
                    moved += 1
                    Console.out("requeued \(safe(id)) (\(safe(result.task ?? "?"))) on '\(safe(result.queue))' with attempt 0")
                case .requeuedRaw:
                    moved += 1
                    Console.out("requeued \(safe(id)) on '\(safe(result.queue))': a malformed message, pushed back as its original raw bytes, unchanged")
                case .gone:
                    notMoved += 1
                    Console.note("\(id) left the dead letter of '\(result.queue)' before it could be moved (purged, trimmed or retried by someone else); nothing was pushed")
                case .skipped(let reason):
                    notMoved += 1
                    Console.note("skipped \(id): \(reason)")
                }
                if let expired = result.expiredAtMilliseconds, result.outcome == .requeued {
                    Console.note("\(id) expired at \(Format.date(milliseconds: expired)); a worker will drop it unrun (enqueue it again instead)")
                }
            }
            Console.out("\(Format.count(moved, "dead letter")) moved back to the ready list" + (notMoved > 0 ? ", \(notMoved) not moved" : ""))
            if !all && notMoved > 0 { throw ExitCode(ExitStatus.failure) }
        }
    }
}

/// `airlock-workerd dead purge`.
struct DeadPurgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge",
        abstract: "Delete dead letters: those with the given ids, or with --all every one (of the --queue queues).",
        discussion: "Prints how many were removed. Malformed entries (task null) are purged like any other. Deleting everything needs --all, as `dead retry` does."
    )

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "Job ids to delete (from `dead list`).")
    var ids: [String] = []

    @Flag(help: "Delete every dead letter (of the --queue queues, else of every queue).")
    var all = false

    @Option(name: .customLong("queue"), help: ArgumentHelp("With --all: only these queues (repeatable, or a comma-separated list).", valueName: "name"))
    var queues: [String] = []

    func validate() throws {
        if all && !ids.isEmpty { throw ValidationError("give job ids or --all, not both") }
        if !all && ids.isEmpty { throw ValidationError("give the job ids to delete, or --all to delete every dead letter") }
        if !all && !queues.isEmpty { throw ValidationError("--queue applies to --all; ids already identify their queue") }
        _ = try validatedQueueList(queues, option: "--queue")
    }

    func run() async throws {
        try await withAdmin(connection) { admin in
            if !ids.isEmpty {
                let removed = try await admin.deleteDeadLetters(ids: ids)
                Console.out("removed \(Format.count(removed, "dead letter"))")
                return
            }
            let removed = try await admin.purgeDeadLetters(queues: queueList(queues))
            let total = removed.values.reduce(0, +)
            var line = "removed \(Format.count(total, "dead letter"))"
            if removed.count > 1 {
                line += " (" + removed.keys.sorted().map { "\(safe($0)): \(removed[$0]!)" }.joined(separator: ", ") + ")"
            } else if let queue = removed.keys.first {
                line += " from '\(safe(queue))'"
            }
            Console.out(line)
        }
    }
}
