public import Foundation
public import PostgresNIO

/// The example's settings, from the environment: libpq's `PGHOST`, `PGPORT`, `PGUSER`,
/// `PGPASSWORD`, `PGDATABASE`; `AIRLOCK_REDIS_URL`; `PORT` for HTTP.
public struct OrderAppSettings: Sendable {
    /// PostgreSQL host (`PGHOST`, default 127.0.0.1).
    public var postgresHost: String
    /// PostgreSQL port (`PGPORT`, default 5432).
    public var postgresPort: Int
    /// PostgreSQL user (`PGUSER`, default postgres).
    public var postgresUser: String
    /// PostgreSQL password (`PGPASSWORD`, default none).
    public var postgresPassword: String?
    /// PostgreSQL database (`PGDATABASE`, default the user's name).
    public var postgresDatabase: String?
    /// Redis URL (`AIRLOCK_REDIS_URL`, default redis://127.0.0.1:6379/0).
    public var redisURL: String
    /// HTTP port (`PORT`, default 8080).
    public var httpPort: Int

    /// Reads the settings from `environment`.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        postgresHost = environment["PGHOST"] ?? "127.0.0.1"
        postgresPort = environment["PGPORT"].flatMap(Int.init) ?? 5432
        postgresUser = environment["PGUSER"] ?? "postgres"
        postgresPassword = environment["PGPASSWORD"]
        postgresDatabase = environment["PGDATABASE"]
        redisURL = environment["AIRLOCK_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"
        httpPort = environment["PORT"].flatMap(Int.init) ?? 8080
    }

    /// The PostgreSQL client configuration (no TLS: a local server).
    public var postgres: PostgresClient.Configuration {
        PostgresClient.Configuration(
            host: postgresHost, port: postgresPort, username: postgresUser, password: postgresPassword,
            database: postgresDatabase, tls: .disable)
    }
}
