public import Logging
public import PostgresNIO

/// The outbox table and its versioned migrations (`docs/OUTBOX.md` documents every column).
///
/// `airlock-outbox migrate --postgres URL` applies them; a project with its own migration tool
/// copies ``migrations`` (printed by `airlock-outbox migrate --print`) and records nothing else:
/// ``migrate(on:logger:)`` only looks at `airlock_outbox_schema` to know what is applied.
public enum OutboxSchema {
    /// The outbox table. Fixed, because its statements are prepared once per connection; put it in
    /// another schema with the connection's `search_path`.
    public static let table = "airlock_outbox"
    /// The `NOTIFY` channel the table's trigger signals after every insert; relays `LISTEN` on it.
    public static let channel = "airlock_outbox"
    /// The newest schema version this code reads and writes.
    public static let currentVersion = 1

    /// One migration: the version it brings the schema to and its statements, in order.
    public struct Migration: Sendable {
        /// The schema version once applied.
        public let version: Int
        /// The SQL statements, one per element (PostgreSQL's extended protocol runs one at a time).
        public let statements: [String]

        /// The statements as one script, for `psql -f` or another migration tool.
        public var script: String {
            "-- Airlock outbox schema version \(version)\n" + statements.map { $0 + ";\n" }.joined(separator: "\n")
        }
    }

    /// Every migration, oldest first.
    public static let migrations: [Migration] = [
        Migration(version: 1, statements: [
            """
            CREATE TABLE airlock_outbox (
                id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                namespace       text        NOT NULL,
                queue           text        NOT NULL,
                job_id          text        NOT NULL,
                placement       smallint    NOT NULL,
                due_at_ms       bigint      NOT NULL,
                idempotency_key text,
                envelope        bytea       NOT NULL,
                created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
                attempts        integer     NOT NULL DEFAULT 0,
                last_error      text,
                parked_at       timestamptz
            )
            """,
            // What relays claim: one namespace's unparked rows, oldest first.
            "CREATE INDEX airlock_outbox_pending ON airlock_outbox (namespace, created_at) WHERE parked_at IS NULL",
            // What `parked list` reads.
            "CREATE INDEX airlock_outbox_parked ON airlock_outbox (namespace, id) WHERE parked_at IS NOT NULL",
            """
            CREATE FUNCTION airlock_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('airlock_outbox', '');
                RETURN NULL;
            END
            $$
            """,
            // Once per INSERT statement, delivered at COMMIT (never after a ROLLBACK).
            """
            CREATE TRIGGER airlock_outbox_notify AFTER INSERT ON airlock_outbox
                FOR EACH STATEMENT EXECUTE FUNCTION airlock_outbox_notify()
            """,
        ]),
    ]

    /// Applies the migrations `airlock_outbox_schema` does not list yet, in one transaction under
    /// an advisory lock (several processes may migrate at once).
    /// - Returns: the versions applied now (empty when the schema was current).
    @discardableResult
    public static func migrate(on client: PostgresClient, logger: Logger) async throws -> [Int] {
        try await client.withConnection { connection in try await migrate(on: connection, logger: logger) }
    }

    /// ``migrate(on:logger:)`` on a connection that is not in a transaction.
    @discardableResult
    public static func migrate(on connection: PostgresConnection, logger: Logger) async throws -> [Int] {
        try await connection.query("BEGIN", logger: logger)
        do {
            try await connection.query("SELECT pg_advisory_xact_lock(7265477001)", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS airlock_outbox_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                logger: logger)
            var applied = 0
            for try await version in try await connection.query("SELECT coalesce(max(version), 0) FROM airlock_outbox_schema", logger: logger)
                .decode(Int.self) { applied = version }
            var now: [Int] = []
            for migration in migrations where migration.version > applied {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO airlock_outbox_schema (version) VALUES (\(migration.version))", logger: logger)
                now.append(migration.version)
            }
            try await connection.query("COMMIT", logger: logger)
            return now
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }

    /// The applied schema version (0 when the outbox was never migrated).
    public static func version(on client: PostgresClient, logger: Logger) async throws -> Int {
        let rows = try await client.query(
            "SELECT CASE WHEN to_regclass('airlock_outbox_schema') IS NULL THEN 0 ELSE 1 END", logger: logger)
        var exists = 0
        for try await value in rows.decode(Int.self) { exists = value }
        guard exists == 1 else { return 0 }
        var version = 0
        for try await value in try await client.query("SELECT coalesce(max(version), 0) FROM airlock_outbox_schema", logger: logger)
            .decode(Int.self) { version = value }
        return version
    }
}
