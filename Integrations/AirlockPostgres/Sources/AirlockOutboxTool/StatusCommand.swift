import Airlock
import AirlockPostgres
import ArgumentParser
import Foundation

/// `airlock-outbox status`: the outbox's depth for one namespace.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the outbox's pending rows, the oldest one's age and the parked rows of a namespace."
    )

    @OptionGroup var postgres: PostgresOptions

    @Flag(help: "Print one JSON object (schema \"airlock.outbox.status/1\").")
    var json = false

    func run() async throws {
        let namespace = postgres.resolvedNamespace
        let (version, status) = try await postgres.withClient { client, logger in
            let version = try await OutboxSchema.version(on: client, logger: logger)
            guard version > 0 else { return (version, OutboxAdmin.Status?.none) }
            return (version, try await OutboxAdmin(postgres: client, namespace: namespace, logger: logger).status())
        }
        guard let status else {
            throw ToolFailure("the outbox table does not exist: run `airlock-outbox migrate --postgres URL`")
        }
        if json {
            let object: JSONValue = .object([
                "schema": "airlock.outbox.status/1", "namespace": .string(namespace), "schema_version": .int(version),
                "pending": .int(status.pending), "oldest_pending_age_ms": status.oldestPendingAgeMilliseconds.map { .int(Int($0)) } ?? .null,
                "parked": .int(status.parked),
            ])
            var bytes: [UInt8] = []
            JSONWriter.write(object, into: &bytes, sortKeys: true)
            FileHandle.standardOutput.write(Data(bytes + [UInt8(ascii: "\n")]))
            return
        }
        let oldest = status.oldestPendingAgeMilliseconds.map { " (oldest \(Render.age($0)))" } ?? ""
        let line = "outbox (namespace \(SafeText.escape(namespace)), schema v\(version)): \(status.pending) pending\(oldest), \(status.parked) parked"
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}

enum Render {
    /// `850ms`, `4.2s`, `3m05s`, `2h03m`, `4d02h`.
    static func age(_ ms: Int64) -> String {
        if ms < 1000 { return "\(ms)ms" }
        let seconds = ms / 1000
        if seconds < 60 { return String(format: "%.1fs", Double(ms) / 1000) }
        if seconds < 3600 { return String(format: "%dm%02ds", seconds / 60, seconds % 60) }
        if seconds < 86400 { return String(format: "%dh%02dm", seconds / 3600, (seconds % 3600) / 60) }
        return String(format: "%dd%02dh", seconds / 86400, (seconds % 86400) / 3600)
    }

    /// Rows as columns padded with spaces (the last column unpadded).
    static func columns(_ rows: [[String]]) -> [String] {
        var widths: [Int] = []
        for row in rows {
            for (index, cell) in row.enumerated() {
                if index >= widths.count { widths.append(0) }
                widths[index] = max(widths[index], cell.count)
            }
        }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
    }

    /// `2026-12-01T22:45:00Z`.
    static func date(_ ms: Int64) -> String {
        Date(timeIntervalSince1970: Double(ms) / 1000).formatted(Date.ISO8601FormatStyle())
    }
}
