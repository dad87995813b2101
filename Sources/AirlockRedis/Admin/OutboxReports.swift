import Airlock
public import AirlockRedisClient
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What one PostgreSQL outbox relay last said about the outbox it drains, as it published it in
/// Redis (`<ns>:outbox:relay:<id>`, see `docs/PROTOCOL.md`).
///
/// The relay lives in the AirlockPostgres package; it reports here so `airlock-workerd stats`
/// can show the outbox without the daemon ever connecting to PostgreSQL. Every relay of a
/// namespace reads the same table, so their figures describe the same rows: they are not summed.
public struct OutboxRelayReport: Sendable, Hashable {
    /// The relay's id (host, pid and a random suffix).
    public var relayID: String
    /// Rows waiting for delivery (not parked) for this namespace.
    public var pending: Int
    /// Age of the oldest waiting row in milliseconds, `nil` when none waits.
    public var oldestPendingAgeMilliseconds: Int64?
    /// Rows parked (refused by Redis for their content, or past the deduplication window).
    public var parked: Int
    /// Rows this relay delivered since it started.
    public var delivered: Int
    /// Why the relay's last delivery attempt failed, when it did (Redis down, say); `nil` otherwise.
    public var lastError: String?
    /// When the relay published this report, in milliseconds since the epoch.
    public var reportedAtMilliseconds: Int64

    /// A report with the given values.
    public init(relayID: String, pending: Int, oldestPendingAgeMilliseconds: Int64?, parked: Int, delivered: Int,
                lastError: String? = nil, reportedAtMilliseconds: Int64) {
        self.relayID = relayID
        self.pending = pending
        self.oldestPendingAgeMilliseconds = oldestPendingAgeMilliseconds
        self.parked = parked
        self.delivered = delivered
        self.lastError = lastError
        self.reportedAtMilliseconds = reportedAtMilliseconds
    }

    /// Publishes the report in one round trip: the relay's hash (with a TTL of `ttl`, so a relay
    /// that stops reporting disappears) and its entry in `<ns>:outbox:relays`, pruning entries
    /// older than a day.
    public func publish(on client: RedisClient, keys: RedisKeys, ttl: Duration) async throws(RedisError) {
        let hash = keys.outboxRelay(relayID)
        let fields: [any RedisArgument] = [
            hash, "pending", String(pending), "parked", String(parked), "delivered", String(delivered),
            "reported_at", String(reportedAtMilliseconds),
            "oldest_pending_age_ms", oldestPendingAgeMilliseconds.map { String($0) } ?? "",
            "last_error", lastError ?? "",
        ]
        let replies = try await client.pipeline([
            RedisCommand("HSET", fields),
            RedisCommand("PEXPIRE", hash, String(max(1, ttl.wholeMilliseconds))),
            RedisCommand("ZADD", keys.outboxRelays, String(reportedAtMilliseconds), relayID),
            RedisCommand("ZREMRANGEBYSCORE", keys.outboxRelays, "-inf", String(reportedAtMilliseconds - 86_400_000)),
        ])
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
    }

    /// The report in a relay's hash; `nil` for an empty (expired) one.
    init?(relayID: String, hash: [String: String]) {
        guard let reported = hash["reported_at"].flatMap({ Int64($0) }) else { return nil }
        self.init(
            relayID: relayID, pending: hash["pending"].flatMap { Int($0) } ?? 0,
            oldestPendingAgeMilliseconds: hash["oldest_pending_age_ms"].flatMap { Int64($0) },
            parked: hash["parked"].flatMap { Int($0) } ?? 0, delivered: hash["delivered"].flatMap { Int($0) } ?? 0,
            lastError: hash["last_error"].flatMap { $0.isEmpty ? nil : $0 }, reportedAtMilliseconds: reported)
    }
}

/// The outbox as the relays of a namespace last reported it.
public struct OutboxSummary: Sendable, Hashable {
    /// Every relay whose report has not expired, most recent first.
    public var relays: [OutboxRelayReport]

    /// A summary of `relays` (sorted most recent first).
    public init(relays: [OutboxRelayReport]) {
        self.relays = relays.sorted { ($0.reportedAtMilliseconds, $0.relayID) > ($1.reportedAtMilliseconds, $1.relayID) }
    }

    /// The most recent report: its figures describe the outbox (every relay reads the same rows).
    public var latest: OutboxRelayReport? { relays.first }
}

extension RedisAdmin {
    /// The outbox relays' reports. Two round trips (`ZRANGE` of `<ns>:outbox:relays`, then one
    /// `HGETALL` per relay); relays whose hash expired are left out.
    public func outboxSummary() async throws(RedisError) -> OutboxSummary {
        let ids = try await send(RedisCommand("ZRANGE", keys.outboxRelays, "0", "-1")).strings()
        return try await outboxSummary(relayIDs: ids)
    }

    /// The reports of `relayIDs`, in one pipeline.
    func outboxSummary(relayIDs ids: [String]) async throws(RedisError) -> OutboxSummary {
        let replies = try await pipeline(ids.map { RedisCommand("HGETALL", keys.outboxRelay($0)) })
        var reports: [OutboxRelayReport] = []
        for (id, reply) in zip(ids, replies) {
            if let report = OutboxRelayReport(relayID: id, hash: try reply.fields()) { reports.append(report) }
        }
        return OutboxSummary(relays: reports)
    }
}
