import AirlockPostgres
import ArgumentParser
import Foundation

/// `airlock-outbox migrate`: creates or upgrades the outbox table (or prints the SQL).
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create or upgrade the airlock_outbox table (versioned; safe to run again and from several hosts).",
        discussion: "--print writes the SQL of every migration instead, for a project's own migration tool."
    )

    @OptionGroup var postgres: PostgresOptions

    @Flag(help: "Print the migrations' SQL and connect to nothing.")
    var print = false

    func run() async throws {
        if print {
            FileHandle.standardOutput.write(Data(OutboxSchema.migrations.map(\.script).joined(separator: "\n").utf8))
            return
        }
        let applied = try await postgres.withClient { client, logger in try await OutboxSchema.migrate(on: client, logger: logger) }
        let line = applied.isEmpty
            ? "outbox schema already at version \(OutboxSchema.currentVersion); nothing to do"
            : "outbox schema migrated to version \(applied.last ?? OutboxSchema.currentVersion) (applied: \(applied.map(String.init).joined(separator: ", ")))"
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
