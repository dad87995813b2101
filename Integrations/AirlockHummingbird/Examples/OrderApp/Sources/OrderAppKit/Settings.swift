public import Foundation
public import PostgresNIO

/// The example's settings, from the environment: libpq's `PGHOST`, `PGPORT`, `PGUSER`,
/// `PGPASSWORD`, `PGDATABASE`; `AIRLOCK_REDIS_URL`, `AIRLOCK_NAMESPACE`; `PORT` for HTTP;
/// `ORDERAPP_DELIVERY_DELAY_MS` to make each confirmation take that long (a slow mail provider).
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
    /// Redis key prefix (`AIRLOCK_NAMESPACE`, default airlock).
    public var namespace: String
    /// HTTP port (`PORT`, default 8080).
    public var httpPort: Int
    /// How long each confirmation delivery takes (`ORDERAPP_DELIVERY_DELAY_MS`, default none).
    public var deliveryDelay: Duration?

    /// Reads the settings from `environment`.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        postgresHost = environment["PGHOST"] ?? "127.0.0.1"
        postgresPort = environment["PGPORT"].flatMap(Int.init) ?? 5432
        postgresUser = environment["PGUSER"] ?? "postgres"
        postgresPassword = environment["PGPASSWORD"]
        postgresDatabase = environment["PGDATABASE"]
        redisURL = environment["AIRLOCK_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"
        namespace = environment["AIRLOCK_NAMESPACE"] ?? "airlock"
        httpPort = environment["PORT"].flatMap(Int.init) ?? 8080
        deliveryDelay = environment["ORDERAPP_DELIVERY_DELAY_MS"].flatMap(Int.init).map { .milliseconds(max(0, $0)) }
    }

    /// The PostgreSQL client configuration (no TLS: a local server).
    public var postgres: PostgresClient.Configuration {
        PostgresClient.Configuration(
            host: postgresHost, port: postgresPort, username: postgresUser, password: postgresPassword,
            database: postgresDatabase, tls: .disable)
    }
}
