import Airlock
import AirlockPostgres
import ArgumentParser
import Foundation

/// `airlock-outbox parked list|retry|delete`: the rows a relay would not send.
struct ParkedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parked",
        abstract: "List, retry or delete parked outbox rows (refused by Redis for their content, or past the deduplication window).",
        subcommands: [ParkedList.self, ParkedRetry.self, ParkedDelete.self]
    )
}

struct ParkedList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Show parked rows, oldest first. Text from the table is escaped: no control character reaches the terminal."
    )

    @OptionGroup var postgres: PostgresOptions

    @Option(help: ArgumentHelp("At most this many rows.", valueName: "n"))
    var limit: Int = 100

    @Flag(help: "Print one JSON object (schema \"airlock.outbox.parked/1\").")
    var json = false

    func validate() throws {
        guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be from 1 to 10000") }
    }

    func run() async throws {
        let namespace = postgres.resolvedNamespace
        let limit = self.limit
        let rows = try await postgres.withClient { client, logger in
            try await OutboxAdmin(postgres: client, namespace: namespace, logger: logger).parked(limit: limit)
        }
        if json {
            let object: JSONValue = .object([
                "schema": "airlock.outbox.parked/1", "namespace": .string(namespace),
                "rows": .array(rows.map { row in
                    .object([
                        "id": .int(Int(row.id)), "queue": .string(row.queue), "job_id": .string(row.jobID), "attempts": .int(row.attempts),
                        "error": .string(row.lastError), "created_at_ms": .int(Int(row.createdAtMilliseconds)),
                        "parked_at_ms": .int(Int(row.parkedAtMilliseconds)), "envelope_bytes": .int(row.envelopeBytes),
                        "envelope": .string(String(decoding: row.envelope, as: UTF8.self)),
                    ])
                }),
            ])
            // JSON escapes every control character, so the output is terminal-safe as it is.
            var bytes: [UInt8] = []
            JSONWriter.write(object, into: &bytes, sortKeys: true)
            FileHandle.standardOutput.write(Data(bytes + [UInt8(ascii: "\n")]))
            return
        }
        guard !rows.isEmpty else {
            FileHandle.standardOutput.write(Data("no parked rows in namespace '\(SafeText.escape(namespace))'\n".utf8))
            return
        }
        var table = [["ID", "QUEUE", "JOB", "ATTEMPTS", "PARKED", "BYTES", "ERROR"]]
        for row in rows {
            table.append([
                String(row.id), SafeText.escape(row.queue), SafeText.escape(row.jobID), String(row.attempts), Render.date(row.parkedAtMilliseconds),
                String(row.envelopeBytes), SafeText.escape(row.lastError),
            ])
        }
        var lines = Render.columns(table)
        lines.append("")
        lines.append("\(rows.count) parked row(s); `airlock-outbox parked retry ID…` sends them again, `parked delete ID…` gives them up")
        FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }
}

/// The ids (or `--all`) a retry or delete takes.
struct ParkedSelection: ParsableArguments {
    @Argument(help: "Row ids (from `parked list`).")
    var ids: [Int64] = []

    @Flag(help: "Every parked row of the namespace.")
    var all = false

    func validate() throws {
        guard all != !ids.isEmpty else { throw ValidationError("name row ids, or pass --all (not both)") }
    }

    var selection: [Int64]? { all ? nil : ids }
}

struct ParkedRetry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Put parked rows back in line for the relay (their age is reset: a row parked for its age may then be queued twice)."
    )

    @OptionGroup var postgres: PostgresOptions
    @OptionGroup var rows: ParkedSelection

    func run() async throws {
        let namespace = postgres.resolvedNamespace
        let selection = rows.selection
        let count = try await postgres.withClient { client, logger in
            try await OutboxAdmin(postgres: client, namespace: namespace, logger: logger).retry(selection)
        }
        FileHandle.standardOutput.write(Data("\(count) row(s) back in line\n".utf8))
    }
}

struct ParkedDelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete parked rows: their side effects are given up."
    )

    @OptionGroup var postgres: PostgresOptions
    @OptionGroup var rows: ParkedSelection

    func run() async throws {
        let namespace = postgres.resolvedNamespace
        let selection = rows.selection
        let count = try await postgres.withClient { client, logger in
            try await OutboxAdmin(postgres: client, namespace: namespace, logger: logger).delete(selection)
        }
        FileHandle.standardOutput.write(Data("\(count) row(s) deleted\n".utf8))
    }
}
