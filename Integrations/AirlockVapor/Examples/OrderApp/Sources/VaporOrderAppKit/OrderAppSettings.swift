public import Foundation

/// The example's settings, from the environment: libpq's `PGHOST`, `PGPORT`, `PGUSER`,
/// `PGPASSWORD`, `PGDATABASE`; `AIRLOCK_REDIS_URL`. (HTTP host and port are Vapor's own
/// `serve --hostname … --port …`.)
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
    /// The Redis key prefix shared by the API and the worker (default `airlock`).
    public var namespace: String = "airlock"
    /// Whether this application's Redis executor also becomes the process-wide default (tests
    /// that run several applications at once turn it off).
    public var configuresGlobally: Bool = true
    /// Whether the application embeds the worker that runs the confirmations.
    public var runsWorker: Bool = true

    /// Reads the settings from `environment`.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        postgresHost = environment["PGHOST"] ?? "127.0.0.1"
        postgresPort = environment["PGPORT"].flatMap(Int.init) ?? 5432
        postgresUser = environment["PGUSER"] ?? "postgres"
        postgresPassword = environment["PGPASSWORD"]
        postgresDatabase = environment["PGDATABASE"]
        redisURL = environment["AIRLOCK_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"
    }
}
