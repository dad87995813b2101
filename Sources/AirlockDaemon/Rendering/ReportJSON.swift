import Airlock
import AirlockRedis
import AirlockRedisClient
import AirlockWorker

// The JSON documents of `airlock-workerd … --json` (schemas in docs/OPERATIONS.md). They render the
// admin API's plain values; the library itself returns values, not text.

extension StatsReport {
    /// Version of the JSON document ``json`` renders; bumped only on incompatible changes.
    static let schema = "airlock.stats/1"

    /// The report as one line of JSON, in the schema `docs/OPERATIONS.md` documents
    /// (`"schema": "airlock.stats/1"`).
    var json: String {
        func counters(_ c: QueueCounters) -> [(String, AdminJSON)] {
            [("processed", .int(c.processed)), ("failed", .int(c.failed)), ("retried", .int(c.retried)),
             ("dead_lettered", .int(c.deadLettered)), ("expired", .int(c.expired)),
             ("cancelled", .int(c.cancelled))]
        }
        let queueObjects: [AdminJSON] = queues.map { q in
            .object([
                ("name", .string(q.name)), ("ready", .int(q.ready)), ("delayed", .int(q.delayed)), ("in_flight", .int(q.inFlight)),
                ("dead", .int(q.dead)), ("paused", .bool(q.paused)), ("oldest_ready_age_ms", .int(q.oldestReadyAgeMilliseconds)),
            ] + counters(q.counters) + [("processed_per_second", .number(q.processedPerSecond)), ("limit", limitJSON(q.limit, held: q.limitHeld)), ("partitions", .int(q.partitions))])
        }
        let t = totals
        let totalObject: AdminJSON = .object([
            ("queues", .int(t.queues)), ("paused_queues", .int(t.pausedQueues)), ("ready", .int(t.ready)), ("delayed", .int(t.delayed)),
            ("in_flight", .int(t.inFlight)), ("dead", .int(t.dead)), ("oldest_ready_age_ms", .int(t.oldestReadyAgeMilliseconds)),
        ] + counters(t.counters) + [("processed_per_second", .number(t.processedPerSecond))])
        return AdminJSON.object([
            ("schema", .string(Self.schema)),
            ("namespace", .string(namespace)),
            ("sampled_at", .isoDate(milliseconds: sampledAtMilliseconds)),
            ("sampled_at_ms", .int(sampledAtMilliseconds)),
            ("interval_seconds", .number(rateIntervalSeconds)),
            ("queues", .array(queueObjects)),
            ("totals", totalObject),
            ("workers", .object([("registered", .int(workers.registered)), ("alive", .int(workers.alive)), ("dead", .int(workers.dead))])),
            ("outbox", outboxJSON),
        ]).text
    }

    /// The outbox as its relays last reported it; every figure null when no relay reports.
    private var outboxJSON: AdminJSON {
        let latest = outbox.latest
        return .object([
            ("relays", .int(outbox.relays.count)), ("pending", .int(latest?.pending)),
            ("oldest_pending_age_ms", .int(latest?.oldestPendingAgeMilliseconds)), ("parked", .int(latest?.parked)),
            ("delivered", .int(latest == nil ? nil : outbox.relays.reduce(0) { $0 + $1.delivered })),
            ("reported_at_ms", .int(latest?.reportedAtMilliseconds)), ("last_error", .string(latest?.lastError)),
        ])
    }
}

/// A queue limit as JSON (`null` without one): the record's fields and the leases held.
func limitJSON(_ limit: QueueLimit?, held: Int) -> AdminJSON {
    guard let limit else { return .value(.null) }
    return .object([
        ("concurrency", .int(limit.concurrency)), ("held", .int(limit.concurrency == nil ? nil : held)),
        ("rate", .int(limit.rate?.count)), ("interval_ms", .int(limit.rate?.intervalMilliseconds)), ("burst", .int(limit.rate?.burst)),
    ])
}

extension WorkerReport {
    /// Version of the JSON document ``json`` renders.
    static let schema = "airlock.workers/1"

    /// The report as one line of JSON (schema in `docs/OPERATIONS.md`).
    var json: String {
        AdminJSON.object([
            ("schema", .string(Self.schema)),
            ("namespace", .string(namespace)),
            ("sampled_at_ms", .int(sampledAtMilliseconds)),
            ("workers", .array(workers.map { w in
                .object([
                    ("id", .string(w.id)), ("status", .string(w.alive ? "alive" : "dead")), ("alive", .bool(w.alive)),
                    ("host", .string(w.host)), ("pid", .int(w.pid)), ("queues", .value(.array(w.queues.map(JSONValue.string)))),
                    ("concurrency", .int(w.concurrency)), ("in_flight", .int(w.inFlight)),
                    ("heartbeat_at_ms", .int(w.heartbeatAtMilliseconds)), ("heartbeat_age_ms", .int(w.heartbeatAgeMilliseconds)),
                    ("started_at_ms", .int(w.startedAtMilliseconds)), ("started_at", .isoDate(milliseconds: w.startedAtMilliseconds)),
                    ("version", .string(w.version)),
                ])
            })),
        ]).text
    }
}

extension DeadLetter {
    /// The full entry as indented JSON, identifying fields first.
    var prettyJSON: String {
        guard !fields.isEmpty || stored.isEmpty else {
            return AdminJSON.pretty(.object(["queue": .string(queue), "unparsable_entry": .string(String(decoding: stored, as: UTF8.self))]))
        }
        return AdminJSON.pretty(.object(fields), order: Self.fieldOrder)
    }
    static let fieldOrder = [
        "v", "id", "task", "queue", "error", "attempts", "failed_at", "args", "kwargs", "enqueued_at", "eta", "expires",
        "attempt", "max_retries", "priority", "idempotency_key", "origin", "raw", "raw_base64",
    ]

    var summaryJSON: AdminJSON {
        .object([
            ("dead_queue", .string(queue)), ("id", .string(id)), ("task", .string(task)), ("malformed", .bool(isMalformed)),
            ("error", .string(error)), ("attempts", .int(attempts)), ("failed_at_ms", .int(failedAtMilliseconds)),
            ("failed_at", .isoDate(milliseconds: failedAtMilliseconds)),
            ("entry", fields.isEmpty ? .string(String(decoding: stored, as: UTF8.self)) : .value(.object(fields))),
        ])
    }
}

extension DeadLetterPage {
    /// Version of the JSON document ``json`` renders.
    static let schema = "airlock.dead/1"

    /// The page as one line of JSON (schema in `docs/OPERATIONS.md`).
    var json: String {
        AdminJSON.object([
            ("schema", .string(Self.schema)), ("namespace", .string(namespace)), ("total", .int(total)),
            ("entries", .array(entries.map(\.summaryJSON))),
        ]).text
    }
}
