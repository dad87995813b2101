import Airlock
import AirlockRedisClient
import AirlockWorker
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The counters a queue's stats hash (`<ns>:{Q}:stats`) accumulates, as totals since the queue
/// was first used.
public struct QueueCounters: Sendable, Hashable {
    /// Jobs that succeeded.
    public var processed: Int
    /// Failed attempts (each retry and each final failure counts once).
    public var failed: Int
    /// Failed attempts that were scheduled to run again.
    public var retried: Int
    /// Jobs moved to the dead letter (the stats hash field `dead`).
    public var deadLettered: Int
    /// Jobs dropped unrun because they expired before they started.
    public var expired: Int
    /// Jobs an operator cancelled (`airlock-workerd cancel`): removed from the queue, or their
    /// task cancelled by the worker running it.
    public var cancelled: Int

    /// Counters with the given values (all zero by default).
    public init(processed: Int = 0, failed: Int = 0, retried: Int = 0, deadLettered: Int = 0, expired: Int = 0, cancelled: Int = 0) {
        self.processed = processed
        self.failed = failed
        self.retried = retried
        self.deadLettered = deadLettered
        self.expired = expired
        self.cancelled = cancelled
    }

    /// The field-wise sum.
    public static func + (lhs: QueueCounters, rhs: QueueCounters) -> QueueCounters {
        QueueCounters(processed: lhs.processed + rhs.processed, failed: lhs.failed + rhs.failed, retried: lhs.retried + rhs.retried,
                      deadLettered: lhs.deadLettered + rhs.deadLettered, expired: lhs.expired + rhs.expired,
                      cancelled: lhs.cancelled + rhs.cancelled)
    }

    /// The counters of a stats hash (`HGETALL`); a field that is not a number is a protocol error.
    init(hash reply: RedisReply) throws(RedisError) {
        self.init()
        for (field, value) in try reply.fields() {
            guard let number = Int(value) else { throw .unexpectedReply(reply, expected: "integer counters") }
            switch field {
            case "processed": processed = number
            case "failed": failed = number
            case "retried": retried = number
            case "dead": deadLettered = number
            case "expired": expired = number
            case "cancelled": cancelled = number
            default: break
            }
        }
    }
}

/// One queue's health at one moment.
public struct QueueStats: Sendable, Hashable {
    /// The queue name.
    public var name: String
    /// Jobs waiting in the ready list.
    public var ready: Int
    /// Jobs waiting for their due time in the delayed set.
    public var delayed: Int
    /// Jobs taken by registered workers and not yet settled (alive or dead workers).
    public var inFlight: Int
    /// Entries in the dead-letter list.
    public var dead: Int
    /// Whether the pause flag is set, so workers take nothing from the queue.
    public var paused: Bool
    /// How long the job next in line has been waiting (its `enqueued_at`, or its `eta` when later),
    /// in milliseconds; `nil` when the ready list is empty or its next job has no timestamp.
    public var oldestReadyAgeMilliseconds: Int64?
    /// Totals from the stats hash.
    public var counters: QueueCounters
    /// Jobs processed per second between two samples; `nil` for a single sample.
    public var processedPerSecond: Double?
    /// The queue's fleet-wide limit; `nil` when it has none.
    public var limit: QueueLimit?
    /// Jobs workers hold against the concurrency limit (the sum of their leases); 0 without one.
    public var limitHeld: Int
    /// How many partitions the row sums (``QueuePartitions``); 1 for a queue that is not partitioned.
    public var partitions: Int = 1

    /// A queue row with the given values.
    public init(name: String, ready: Int = 0, delayed: Int = 0, inFlight: Int = 0, dead: Int = 0, paused: Bool = false,
                oldestReadyAgeMilliseconds: Int64? = nil, counters: QueueCounters = QueueCounters(), processedPerSecond: Double? = nil,
                limit: QueueLimit? = nil, limitHeld: Int = 0) {
        self.limit = limit
        self.limitHeld = limitHeld
        self.name = name
        self.ready = ready
        self.delayed = delayed
        self.inFlight = inFlight
        self.dead = dead
        self.paused = paused
        self.oldestReadyAgeMilliseconds = oldestReadyAgeMilliseconds
        self.counters = counters
        self.processedPerSecond = processedPerSecond
    }
}

/// The sum over the queues of a report.
public struct StatsTotals: Sendable, Hashable {
    /// Number of queues in the report.
    public var queues: Int
    /// How many of them are paused.
    public var pausedQueues: Int
    /// Sum of ready jobs.
    public var ready: Int
    /// Sum of delayed jobs.
    public var delayed: Int
    /// Sum of in-flight jobs.
    public var inFlight: Int
    /// Sum of dead letters.
    public var dead: Int
    /// The largest ``QueueStats/oldestReadyAgeMilliseconds``.
    public var oldestReadyAgeMilliseconds: Int64?
    /// Summed counters.
    public var counters: QueueCounters
    /// Summed rate; `nil` for a single sample.
    public var processedPerSecond: Double?

    init(_ queues: [QueueStats], rated: Bool) {
        self.queues = queues.count
        pausedQueues = queues.filter(\.paused).count
        ready = queues.reduce(0) { $0 + $1.ready }
        delayed = queues.reduce(0) { $0 + $1.delayed }
        inFlight = queues.reduce(0) { $0 + $1.inFlight }
        dead = queues.reduce(0) { $0 + $1.dead }
        oldestReadyAgeMilliseconds = queues.compactMap(\.oldestReadyAgeMilliseconds).max()
        counters = queues.reduce(QueueCounters()) { $0 + $1.counters }
        processedPerSecond = rated ? queues.compactMap(\.processedPerSecond).reduce(0, +) : nil
    }
}

/// Registered workers, and how many of them still have a heartbeat.
public struct WorkerCounts: Sendable, Hashable {
    /// Members of `<ns>:workers`.
    public var registered: Int
    /// Registered workers whose heartbeat key exists.
    public var alive: Int
    /// Registered workers whose heartbeat expired: their jobs await recovery by a live worker.
    public var dead: Int { registered - alive }

    /// Counts with the given values.
    public init(registered: Int, alive: Int) {
        self.registered = registered
        self.alive = alive
    }
}

/// What `airlock-workerd stats` shows: every (or the selected) queue, totals and workers, from
/// one sample, with rates when it was compared with an earlier one.
public struct StatsReport: Sendable, Hashable {
    /// The namespace sampled.
    public var namespace: String
    /// When the sample was taken, in milliseconds since the epoch.
    public var sampledAtMilliseconds: Int64
    /// Seconds between the two samples the rates come from; `nil` when there are no rates.
    public var rateIntervalSeconds: Double?
    /// One entry per queue, sorted by name.
    public var queues: [QueueStats]
    /// The sum of ``queues``.
    public var totals: StatsTotals
    /// Worker liveness.
    public var workers: WorkerCounts
    /// The PostgreSQL outbox as its relays last reported it (no relay reporting: empty).
    public var outbox: OutboxSummary
    /// Monotonic time of the sample, for rates.
    let instant: ContinuousClock.Instant

    init(namespace: String, sampledAtMilliseconds: Int64, queues: [QueueStats], workers: WorkerCounts,
         outbox: OutboxSummary = OutboxSummary(relays: []), instant: ContinuousClock.Instant) {
        self.namespace = namespace
        self.sampledAtMilliseconds = sampledAtMilliseconds
        self.rateIntervalSeconds = nil
        self.queues = queues
        self.totals = StatsTotals(queues, rated: false)
        self.workers = workers
        self.outbox = outbox
        self.instant = instant
    }

    /// The queue named `name`, if the report has it.
    public subscript(queue name: String) -> QueueStats? { queues.first { $0.name == name } }

    /// This report with ``QueueStats/processedPerSecond`` filled in from the growth of `processed`
    /// since `earlier`. Queues absent from `earlier` get a rate of 0; a counter that went down
    /// (stats hash deleted) counts as 0.
    public func withRates(since earlier: StatsReport) -> StatsReport {
        let elapsed = (instant - earlier.instant).timeInterval
        guard elapsed > 0 else { return self }
        var report = self
        let before = Dictionary(earlier.queues.map { ($0.name, $0.counters.processed) }, uniquingKeysWith: { a, _ in a })
        for index in report.queues.indices {
            let queue = report.queues[index]
            let delta = max(0, queue.counters.processed - (before[queue.name] ?? queue.counters.processed))
            report.queues[index].processedPerSecond = Double(delta) / elapsed
        }
        report.rateIntervalSeconds = elapsed
        report.totals = StatsTotals(report.queues, rated: true)
        return report
    }
}

extension RedisAdmin {
    /// One sample of `queues` (every known queue when `nil` or empty), without rates.
    ///
    /// Two round trips whatever the number of jobs: `SMEMBERS` of the queue and worker sets (and
    /// `ZRANGE` of the outbox relays, `HGETALL` of the partitioned queues), then one pipeline of `LLEN`/`ZCARD`/`EXISTS`/`LINDEX`/`HGETALL`
    /// per queue (and `HGETALL` of its limit and leases), `LLEN` of each registered worker's in-flight list per queue, `EXISTS` of each
    /// worker's heartbeat and `HGETALL` of each outbox relay's report. Only the job next in line is
    /// parsed (for its age).
    /// - Throws: ``AdminError`` for a queue that is not known; ``RedisError``.
    public func statsSample(queues requested: [String]? = nil) async throws -> StatsReport {
        countRoundTrip()
        let sets = try await client.pipeline([
            RedisCommand("SMEMBERS", keys.queues), RedisCommand("SMEMBERS", keys.workers), RedisCommand("ZRANGE", keys.outboxRelays, "0", "-1"),
            RedisCommand("HGETALL", keys.partitions),
        ])
        if let message = sets.prefix(3).lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
        let known = try sets[0].strings().sorted()
        let workers = try sets[1].strings().sorted()
        let relays = try sets[2].strings()
        // A partitions key of the wrong type (anyone can write one) leaves every queue a row of its own.
        let partitions = QueuePartitions.counts((try? sets[3].fields()) ?? [:])
        // A partitioned queue is sampled as its partitions and reported as one row.
        var seen = Set<String>()
        let queues = try resolveQueues(requested, known: known)
            .flatMap { QueuePartitions.names($0, count: partitions[$0] ?? 1) }
            .filter { seen.insert($0).inserted }

        let perQueue = 8 + workers.count
        var commands: [RedisCommand] = []
        commands.reserveCapacity(queues.count * perQueue + workers.count)
        for queue in queues {
            commands.append(RedisCommand("LLEN", keys.ready(queue)))
            commands.append(RedisCommand("ZCARD", keys.delayed(queue)))
            commands.append(RedisCommand("LLEN", keys.dead(queue)))
            commands.append(RedisCommand("EXISTS", keys.paused(queue)))
            commands.append(RedisCommand("LINDEX", keys.ready(queue), -1))
            commands.append(RedisCommand("HGETALL", keys.stats(queue)))
            commands.append(RedisCommand("HGETALL", keys.limit(queue)))
            commands.append(RedisCommand("HGETALL", keys.limitHeld(queue)))
            for worker in workers {
                commands.append(RedisCommand("LLEN", keys.inflight(queue, worker: worker)))
            }
        }
        for worker in workers {
            commands.append(RedisCommand("EXISTS", keys.heartbeat(worker)))
        }
        for relay in relays {
            commands.append(RedisCommand("HGETALL", keys.outboxRelay(relay)))
        }
        let replies = try await pipeline(commands)
        let instant = ContinuousClock.now
        let now = epochMilliseconds()

        var rows: [QueueStats] = []
        rows.reserveCapacity(queues.count)
        for (index, queue) in queues.enumerated() {
            let base = index * perQueue
            var inFlight = 0
            for worker in 0..<workers.count { inFlight += try replies[base + 8 + worker].integer() }
            let limit = QueueLimit(record: try replies[base + 6].fields())
            rows.append(QueueStats(
                name: queue,
                ready: try replies[base].integer(),
                delayed: try replies[base + 1].integer(),
                inFlight: inFlight,
                dead: try replies[base + 2].integer(),
                paused: try replies[base + 3].integer() > 0,
                oldestReadyAgeMilliseconds: try replies[base + 4].optionalBulk().flatMap { Self.waitingSince($0) }.map { max(0, now.subtractingSaturated($0)) },
                counters: try QueueCounters(hash: replies[base + 5]),
                limit: limit,
                limitHeld: limit?.concurrency == nil ? 0 : try Self.leases(replies[base + 7]).values.reduce(0, +)))
        }
        var alive = 0
        for worker in 0..<workers.count where try replies[queues.count * perQueue + worker].integer() > 0 { alive += 1 }
        var reports: [OutboxRelayReport] = []
        for (index, relay) in relays.enumerated() {
            let reply = replies[queues.count * perQueue + workers.count + index]
            if let report = OutboxRelayReport(relayID: relay, hash: try reply.fields()) { reports.append(report) }
        }
        return StatsReport(namespace: namespace, sampledAtMilliseconds: now, queues: QueueStats.merging(rows, partitions: partitions),
                           workers: WorkerCounts(registered: workers.count, alive: alive),
                           outbox: OutboxSummary(relays: reports), instant: instant)
    }

    /// A report with rates: samples, waits `interval`, samples again and compares (four round
    /// trips); with `interval` `nil` or zero, one sample without rates (two round trips).
    public func stats(queues requested: [String]? = nil, interval: Duration? = .seconds(1)) async throws -> StatsReport {
        let first = try await statsSample(queues: requested)
        guard let interval, interval > .zero else { return first }
        try await Task.sleep(for: interval)
        return try await statsSample(queues: requested).withRates(since: first)
    }

    /// Since when a ready job has been due: its `eta` when later than `enqueued_at` (a promoted
    /// delayed job), else `enqueued_at`. `nil` when the message is not an object with a timestamp.
    static func waitingSince(_ message: [UInt8]) -> Int64? {
        guard let value = try? JSONParser.parse(message), case .object(let fields) = value else { return nil }
        // Anyone can LPUSH anything: a timestamp outside the wire range (−2⁶³, say) is no timestamp.
        let enqueued = fields["enqueued_at"]?.intValue.map(Int64.init).flatMap { acceptedEpochMilliseconds.contains($0) ? $0 : nil }
        let eta = fields["eta"]?.intValue.map(Int64.init).flatMap { acceptedEpochMilliseconds.contains($0) ? $0 : nil }
        switch (enqueued, eta) {
        case (let e?, let d?): return max(e, d)
        case (let e?, nil): return e
        case (nil, let d?): return d
        case (nil, nil): return nil
        }
    }
}
