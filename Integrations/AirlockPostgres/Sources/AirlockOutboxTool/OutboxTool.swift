import Airlock
import AirlockPostgres
import AirlockRedisClient
import ArgumentParser
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// `airlock-outbox`: the PostgreSQL outbox's operator tool (also reached as `airlock-workerd outbox …`
/// and `airlock-workerd relay …`). Argument parsing and printing only; the logic is in AirlockPostgres.
@main
struct OutboxTool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "airlock-outbox",
        abstract: "Migrate, relay and inspect Airlock's PostgreSQL outbox.",
        discussion: """
            The outbox keeps a transaction's intents in the airlock_outbox table, committed with the data; relays \
            deliver the rows whose fast path did not (docs/OUTBOX.md). --postgres falls back to AIRLOCK_POSTGRES_URL, \
            then DATABASE_URL; --redis to AIRLOCK_REDIS_URL, then REDIS_URL (prefer the environment for URLs with a \
            password: arguments show in `ps`).

            Exit status: 0 success; 1 failure (unknown parked row, the table not migrated, a query refused); \
            2 command-line usage error; 3 PostgreSQL or Redis unreachable.
            """,
        subcommands: [MigrateCommand.self, RelayCommand.self, StatusCommand.self, ParkedCommand.self]
    )

    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let failure as ToolFailure {
            FileHandle.standardError.write(Data("airlock-outbox: error: \(failure.description)\n".utf8))
            Foundation.exit(failure.status)
        } catch let error as OutboxError {
            let status: Int32 = error.kind == .postgres && Self.isUnreachable(error.underlying) ? 3 : 1
            FileHandle.standardError.write(Data("airlock-outbox: error: \(SafeText.escape(error.description))\n".utf8))
            Foundation.exit(status)
        } catch let error as RedisError {
            FileHandle.standardError.write(Data("airlock-outbox: error: \(SafeText.escape(error.description))\n".utf8))
            Foundation.exit(error.isConnectionProblem || error.isConfigurationProblem ? 3 : 1)
        } catch {
            exit(withError: error)
        }
    }

    /// Whether a PostgreSQL error means the server could not be reached.
    static func isUnreachable(_ error: (any Error)?) -> Bool {
        guard let psql = error as? PSQLError else { return error != nil && !(error is PSQLError) }
        return psql.serverInfo == nil
    }
}

/// A failure printed as one line, with an exit status.
struct ToolFailure: Error, CustomStringConvertible {
    let description: String
    let status: Int32
    init(_ description: String, status: Int32 = 1) {
        self.description = description
        self.status = status
    }
}

/// `--postgres`, `--namespace`, `--log-level`: what every subcommand that reads the table takes.
struct PostgresOptions: ParsableArguments {
    @Option(help: ArgumentHelp("PostgreSQL URL, postgres://user:password@host:port/database[?sslmode=disable|prefer|require] "
        + "(default: AIRLOCK_POSTGRES_URL, then DATABASE_URL).", valueName: "url"))
    var postgres: String?

    @Option(help: ArgumentHelp("The Redis namespace whose rows to read (default: AIRLOCK_NAMESPACE, then airlock).", valueName: "name"))
    var namespace: String?

    @Option(help: ArgumentHelp("trace, debug, info, notice, warning, error or critical.", valueName: "level"))
    var logLevel: String = "warning"

    var resolvedNamespace: String { namespace ?? ProcessInfo.processInfo.environment["AIRLOCK_NAMESPACE"] ?? "airlock" }

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical") }
    }

    /// The client configuration from the URL (or the environment).
    func configuration() throws -> PostgresURL.Parsed {
        let environment = ProcessInfo.processInfo.environment
        guard let url = postgres ?? environment["AIRLOCK_POSTGRES_URL"] ?? environment["DATABASE_URL"] else {
            throw ToolFailure("no PostgreSQL URL: pass --postgres postgres://user@host:5432/database or set AIRLOCK_POSTGRES_URL", status: 2)
        }
        return try PostgresURL.configuration(url)
    }

    /// Bootstraps logging to stderr (this is an executable: the process's logging is its own).
    func logger(label: String) -> Logger {
        let level = Logger.Level(rawValue: logLevel) ?? .warning
        LoggingSetup.once(level: level)
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }

    /// Runs `body` with a running pool; the pool is shut down afterwards.
    func withClient<R: Sendable>(_ body: @escaping @Sendable (PostgresClient, Logger) async throws -> R) async throws -> R {
        let logger = logger(label: "airlock.outbox")
        let parsed = try configuration()
        let configuration = parsed.configuration
        // A pool waits for an absent server forever; one direct connection fails at once and says why.
        if parsed.plain {
          do {
            let connection = try await PostgresConnection.connect(configuration: PostgresURL.connectionConfiguration(configuration), id: 0, logger: logger)
            try await connection.close()
        } catch {
            throw ToolFailure("PostgreSQL at \(configuration.host ?? "?"):\(configuration.port ?? 0) cannot be reached: \(SafeText.escape(String(describing: error)))", status: 3)
          }
        }
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client, logger)
        }
    }
}

/// swift-log allows one bootstrap per process.
enum LoggingSetup {
    private static let done = Mutex(false)
    static func once(level: Logger.Level) {
        guard done.withLock({ done in defer { done = true }; return !done }) else { return }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

/// `postgres://user:password@host:port/database?sslmode=…` → a client configuration.
enum PostgresURL {
    /// A configuration, and whether it connects without TLS (then the tool probes it first).
    struct Parsed {
        let configuration: PostgresClient.Configuration
        let plain: Bool
    }

    static func configuration(_ text: String) throws -> Parsed {
        guard let url = URLComponents(string: text), let scheme = url.scheme, ["postgres", "postgresql"].contains(scheme) else {
            throw ToolFailure("the PostgreSQL URL must look like postgres://user:password@host:5432/database", status: 2)
        }
        let host = url.host.flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1"
        let user = url.user?.removingPercentEncoding ?? "postgres"
        let password = url.password?.removingPercentEncoding
        var database = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        database = database.removingPercentEncoding ?? database
        let mode = url.queryItems?.first { $0.name == "sslmode" }?.value ?? "disable"
        let tls: PostgresClient.Configuration.TLS
        switch mode {
        case "disable": tls = .disable
        case "prefer", "allow": tls = .prefer(.makeClientConfiguration())
        case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
        default: throw ToolFailure("sslmode must be disable, prefer or require (got \(SafeText.escape(mode)))", status: 2)
        }
        return Parsed(
            configuration: PostgresClient.Configuration(host: host, port: url.port ?? 5432, username: user, password: password,
                                                        database: database.isEmpty ? nil : database, tls: tls),
            plain: mode == "disable")
    }

    static func connectionConfiguration(_ configuration: PostgresClient.Configuration) -> PostgresConnection.Configuration {
        PostgresConnection.Configuration(
            host: configuration.host ?? "127.0.0.1", port: configuration.port ?? 5432, username: configuration.username,
            password: configuration.password, database: configuration.database, tls: .disable)
    }
}
