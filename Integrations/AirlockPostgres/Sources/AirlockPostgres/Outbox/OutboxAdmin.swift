import Foundation
public import Logging
public import PostgresNIO

/// Reads and repairs one namespace's outbox rows: the queries behind `airlock-outbox status` and
/// `parked list|retry|delete`, and the depth a relay reports.
public struct OutboxAdmin: Sendable {
    /// Where the table is.
    public let postgres: PostgresClient
    /// The rows' Redis namespace.
    public let namespace: String
    let logger: Logger

    /// An admin view of `namespace`'s rows.
    public init(postgres: PostgresClient, namespace: String = "airlock", logger: Logger = Logger(label: "airlock.outbox.admin")) {
        self.postgres = postgres
        self.namespace = namespace
        self.logger = logger
    }

    /// The outbox's depth.
    public struct Status: Sendable, Hashable {
        /// Rows waiting for delivery (not parked).
        public var pending: Int
        /// Age of the oldest waiting row, ms; `nil` when none waits.
        public var oldestPendingAgeMilliseconds: Int64?
        /// Parked rows.
        public var parked: Int
    }

    /// One statement; it counts the namespace's rows (a scan of its index entries).
    public func status() async throws(OutboxError) -> Status {
        let query: PostgresQuery = """
            SELECT count(*) FILTER (WHERE parked_at IS NULL),
                   (extract(epoch FROM clock_timestamp() - min(created_at) FILTER (WHERE parked_at IS NULL)) * 1000)::int8,
                   count(*) FILTER (WHERE parked_at IS NOT NULL)
            FROM airlock_outbox WHERE namespace = \(namespace)
            """
        do {
            for try await (pending, oldest, parked) in try await postgres.query(query, logger: logger).decode((Int, Int64?, Int).self) {
                return Status(pending: pending, oldestPendingAgeMilliseconds: oldest.map { max(0, $0) }, parked: parked)
            }
            return Status(pending: 0, oldestPendingAgeMilliseconds: nil, parked: 0)
        } catch {
            throw OutboxError.postgres(error, doing: "reading the outbox's depth")
        }
    }

    /// A parked row, as `parked list` shows it.
    public struct ParkedRow: Sendable, Hashable {
        /// The row id (what `parked retry` and `parked delete` take).
        public var id: Int64
        /// The queue it was for.
        public var queue: String
        /// Its job id.
        public var jobID: String
        /// Failed delivery attempts.
        public var attempts: Int
        /// Why it was parked.
        public var lastError: String
        /// When it was written and parked, ms since the epoch.
        public var createdAtMilliseconds: Int64
        /// When it was parked, ms since the epoch.
        public var parkedAtMilliseconds: Int64
        /// The envelope's size in bytes.
        public var envelopeBytes: Int
        /// The envelope as stored (UTF-8 JSON normally; anything for a poison row).
        public var envelope: [UInt8]
    }

    /// Parked rows, oldest first, at most `limit`.
    public func parked(limit: Int = 100) async throws(OutboxError) -> [ParkedRow] {
        let query: PostgresQuery = """
            SELECT id, queue, job_id, attempts, coalesce(last_error, ''),
                   (extract(epoch FROM created_at) * 1000)::int8, (extract(epoch FROM parked_at) * 1000)::int8,
                   length(envelope), substring(envelope FROM 1 FOR 4096)
            FROM airlock_outbox WHERE namespace = \(namespace) AND parked_at IS NOT NULL ORDER BY id LIMIT \(Int64(max(0, limit)))
            """
        do {
            var rows: [ParkedRow] = []
            for try await (id, queue, jobID, attempts, error, created, parkedAt, size, envelope) in try await postgres.query(query, logger: logger)
                .decode((Int64, String, String, Int, String, Int64, Int64, Int, ByteBuffer).self)
            {
                rows.append(ParkedRow(id: id, queue: queue, jobID: jobID, attempts: attempts, lastError: error, createdAtMilliseconds: created,
                                      parkedAtMilliseconds: parkedAt, envelopeBytes: size, envelope: Array(envelope.readableBytesView)))
            }
            return rows
        } catch {
            throw OutboxError.postgres(error, doing: "listing parked outbox rows")
        }
    }

    /// Puts parked rows back in line (all of them when `ids` is `nil`): unparked, their age reset
    /// so the deduplication-window check passes again. The operator takes the risk that a row parked
    /// for its age had been delivered already.
    /// - Returns: the number of rows unparked.
    /// - Throws: ``OutboxError`` (`.notFound`) when an id names no parked row of the namespace.
    @discardableResult
    public func retry(_ ids: [Int64]?) async throws(OutboxError) -> Int {
        try await change(ids, verb: "retrying", sql: "UPDATE airlock_outbox SET parked_at = NULL, created_at = clock_timestamp()")
    }

    /// Deletes parked rows (all of them when `ids` is `nil`): their side effects are given up.
    /// - Returns: the number of rows deleted.
    @discardableResult
    public func delete(_ ids: [Int64]?) async throws(OutboxError) -> Int {
        try await change(ids, verb: "deleting", sql: "DELETE FROM airlock_outbox")
    }

    private func change(_ ids: [Int64]?, verb: String, sql: String) async throws(OutboxError) -> Int {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(namespace)
        var text = sql + " WHERE namespace = $1 AND parked_at IS NOT NULL"
        if let ids {
            bindings.append(ids)
            text += " AND id = ANY($2::int8[])"
        }
        text += " RETURNING id"
        do {
            var changed: [Int64] = []
            for try await id in try await postgres.query(PostgresQuery(unsafeSQL: text, binds: bindings), logger: logger).decode(Int64.self) {
                changed.append(id)
            }
            if let ids {
                let missing = Set(ids).subtracting(changed).sorted()
                if !missing.isEmpty {
                    throw OutboxError(.notFound, "no parked row with id \(missing.map(String.init).joined(separator: ", ")) in namespace '\(namespace)' "
                        + "(\(changed.count) other row(s) done); `airlock-outbox parked list` shows the parked rows")
                }
            }
            return changed.count
        } catch let error as OutboxError {
            throw error
        } catch {
            throw OutboxError.postgres(error, doing: "\(verb) parked outbox rows")
        }
    }
}
