import AirlockWorker
import Foundation
import PostgresNIO

// The outbox's statements, prepared once per connection (PostgresNIO caches them by name). Each
// takes arrays, so one prepared statement serves a batch of any size (`unnest`), rather than one
// statement text per row count.

/// One INSERT per flush: every job of the transaction's batch, returning the row ids.
struct InsertOutboxRows: PostgresPreparedStatement {
    static let name = "airlock_outbox_insert_v1"
    static let sql = """
        INSERT INTO airlock_outbox (namespace, queue, job_id, placement, due_at_ms, idempotency_key, envelope)
        SELECT $1, r.queue, r.job_id, r.placement, r.due_at_ms, CASE WHEN r.has_key THEN r.idempotency_key END, r.envelope
        FROM unnest($2::text[], $3::text[], $4::int2[], $5::int8[], $6::bool[], $7::text[], $8::bytea[])
            AS r(queue, job_id, placement, due_at_ms, has_key, idempotency_key, envelope)
        RETURNING id
        """
    static let bindingDataTypes: [PostgresDataType] = [.text, .textArray, .textArray, .int2Array, .int8Array, .boolArray, .textArray, .byteaArray]
    typealias Row = Int64

    let namespace: String
    let jobs: [OutgoingJob]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 8)
        bindings.append(namespace)
        bindings.append(jobs.map(\.queue))
        bindings.append(jobs.map(\.id))
        bindings.append(jobs.map { OutboxPlacement.code($0.placement) })
        bindings.append(jobs.map(\.dueAt))
        bindings.append(jobs.map { $0.idempotencyKey != nil })
        bindings.append(jobs.map { $0.idempotencyKey ?? "" })
        bindings.append(jobs.map { ByteBuffer(bytes: $0.bytes) })
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
}

/// The fast path's and the relay's delete of delivered rows.
struct DeleteOutboxRows: PostgresPreparedStatement {
    static let name = "airlock_outbox_delete_v1"
    static let sql = "DELETE FROM airlock_outbox WHERE id = ANY($1::int8[])"
    static let bindingDataTypes: [PostgresDataType] = [.int8Array]
    typealias Row = Void

    let ids: [Int64]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(ids)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws {}
}

/// A relay's claim: the oldest unparked rows of a namespace older than the grace period, locked
/// for this transaction; rows another relay holds are skipped, not waited for.
struct ClaimOutboxRows: PostgresPreparedStatement {
    static let name = "airlock_outbox_claim_v1"
    static let sql = """
        SELECT id, queue, job_id, placement, due_at_ms, idempotency_key, envelope,
               (extract(epoch FROM clock_timestamp() - created_at) * 1000)::int8 AS age_ms
        FROM airlock_outbox
        WHERE namespace = $1 AND parked_at IS NULL AND created_at < clock_timestamp() - $2::int8 * interval '1 millisecond'
        ORDER BY created_at
        LIMIT $3
        FOR UPDATE SKIP LOCKED
        """
    static let bindingDataTypes: [PostgresDataType] = [.text, .int8, .int8]
    typealias Row = ClaimedRow

    let namespace: String
    let graceMilliseconds: Int64
    let limit: Int64

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(namespace)
        bindings.append(graceMilliseconds)
        bindings.append(limit)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> ClaimedRow {
        let (id, queue, jobID, placement, dueAt, key, envelope, age) =
            try row.decode((Int64, String, String, Int16, Int64, String?, ByteBuffer, Int64).self)
        return ClaimedRow(id: id, queue: queue, jobID: jobID, placement: placement, dueAt: dueAt, idempotencyKey: key,
                          envelope: Array(envelope.readableBytesView), ageMilliseconds: age)
    }
}

/// Parks rows, each with its own error.
struct ParkOutboxRows: PostgresPreparedStatement {
    static let name = "airlock_outbox_park_v1"
    static let sql = """
        UPDATE airlock_outbox o SET parked_at = clock_timestamp(), last_error = r.error, attempts = o.attempts + 1
        FROM unnest($1::int8[], $2::text[]) AS r(id, error) WHERE o.id = r.id
        """
    static let bindingDataTypes: [PostgresDataType] = [.int8Array, .textArray]
    typealias Row = Void

    let ids: [Int64]
    let errors: [String]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(ids)
        bindings.append(errors)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws {}
}

/// Records a failed delivery attempt (Redis down) on rows that stay pending.
struct RecordOutboxFailure: PostgresPreparedStatement {
    static let name = "airlock_outbox_failure_v1"
    static let sql = "UPDATE airlock_outbox SET attempts = attempts + 1, last_error = $2 WHERE id = ANY($1::int8[])"
    static let bindingDataTypes: [PostgresDataType] = [.int8Array, .text]
    typealias Row = Void

    let ids: [Int64]
    let error: String

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(ids)
        bindings.append(error)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws {}
}

/// A row a relay claimed.
struct ClaimedRow: Sendable {
    let id: Int64
    let queue: String
    let jobID: String
    let placement: Int16
    let dueAt: Int64
    let idempotencyKey: String?
    let envelope: [UInt8]
    let ageMilliseconds: Int64
}

/// The `placement` column: where the job goes in Redis.
enum OutboxPlacement {
    static func code(_ placement: OutgoingJob.Placement) -> Int16 {
        switch placement {
        case .back: 0
        case .front: 1
        case .delayed: 2
        }
    }

    static func placement(_ code: Int16) -> OutgoingJob.Placement? {
        switch code {
        case 0: .back
        case 1: .front
        case 2: .delayed
        default: nil
        }
    }
}
