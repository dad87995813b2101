// bench/outbox.sh runs this against one private PostgreSQL and one private Redis. Reported, not
// asserted. Prints a human summary on stderr and `key=value` lines on stdout:
//   latency: a one-intent Airlock.transaction with the outbox vs without (p50/p99, µs), same
//            connection pool, alternating blocks so load drifts hit both alike;
//   commit→queued: from COMMIT's acknowledgement to the fast path's Redis write returning;
//   drain: relays draining a backlog of rows (rows/s), and the process CPU per row.
// Environment: AIRLOCK_TEST_PG_*, AIRLOCK_TEST_REDIS_URL (scripts/with-postgres.sh, with-redis.sh);
// OUTBOX_BENCH_TX (default 3000 per variant), OUTBOX_BENCH_BACKLOG (default 100000),
// OUTBOX_BENCH_RELAYS (default "1,3"), OUTBOX_BENCH_ANALYZE=off (no relay ANALYZE), OUTBOX_BENCH_BATCH
// (the relays' batch size, default 1000).
import Airlock
import AirlockPostgres
import AirlockRedis
import AirlockRedisClient
import Foundation
import Logging
import PostgresNIO
#if canImport(Glibc)
import Glibc
#endif

struct BenchTask: AirlockTask {
    static let name = "bench.outbox"
    let n: Int
}

/// User + system CPU seconds of this process so far.
func cpuSeconds() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

func microseconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) * 1e6 + Double(attoseconds) / 1e12
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
}

func emit(_ key: String, _ value: Double) {
    print("\(key)=\(String(format: "%.1f", value))")
}

func note(_ text: String) {
    FileHandle.standardError.write(Data(("outbox bench: " + text + "\n").utf8))
}

@main
struct OutboxBench {
    static func main() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let port = environment["AIRLOCK_TEST_PG_PORT"].flatMap(Int.init), let redisURL = environment["AIRLOCK_TEST_REDIS_URL"] else {
            note("AIRLOCK_TEST_PG_PORT and AIRLOCK_TEST_REDIS_URL must be set (bench/outbox.sh sets them)")
            exit(2)
        }
        let transactions = environment["OUTBOX_BENCH_TX"].flatMap(Int.init) ?? 3_000
        let backlog = environment["OUTBOX_BENCH_BACKLOG"].flatMap(Int.init) ?? 100_000
        let relayCounts = (environment["OUTBOX_BENCH_RELAYS"] ?? "1,3").split(separator: ",").compactMap { Int($0) }
        let logger = {
            var logger = Logger(label: "outbox-bench")
            logger.logLevel = .error
            return logger
        }()
        let configuration = PostgresClient.Configuration(
            host: environment["AIRLOCK_TEST_PG_HOST"] ?? "127.0.0.1", port: port, username: environment["AIRLOCK_TEST_PG_USER"] ?? "postgres",
            password: nil, database: environment["AIRLOCK_TEST_PG_DATABASE"] ?? "postgres", tls: .disable)
        let postgres = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let namespace = "bench-outbox-\(UUID().uuidString.prefix(6).lowercased())"
        func executor() throws -> RedisExecutor {
            RedisExecutor(client: RedisClient(configuration: try RedisConfiguration(url: redisURL), logger: logger), namespace: namespace, logger: logger)
        }

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await postgres.run() }
            defer { group.cancelAll() }
            try await OutboxSchema.migrate(on: postgres, logger: logger)
            let direct = try executor()
            let outbox = Outbox(executor: try executor(), postgres: postgres, logger: logger)
            group.addTask { try await outbox.run() }

            // 1. Latency of a one-intent transaction, without and with the outbox, alternating blocks of 100.
            var without: [Double] = [], with: [Double] = [], commitToQueued: [Double] = []
            var cpuWithout = 0.0, cpuWith = 0.0
            for warmup in [true, false] {
                let rounds = warmup ? 2 : max(1, transactions / 100)
                for _ in 0..<rounds {
                    var cpu = cpuSeconds()
                    for n in 0..<100 {
                        let start = ContinuousClock.now
                        try await Airlock.transaction(on: postgres, outbox: .off, executor: direct, logger: logger) { _ in
                            try Airlock.enqueue(BenchTask(n: n))
                        }
                        if !warmup { without.append(microseconds(ContinuousClock.now - start)) }
                    }
                    if !warmup { cpuWithout += cpuSeconds() - cpu }
                    cpu = cpuSeconds()
                    for n in 0..<100 {
                        let start = ContinuousClock.now
                        try await Airlock.transaction(on: postgres, outbox: .using(outbox), logger: logger) { _ in
                            try Airlock.enqueue(BenchTask(n: n))
                        }
                        if !warmup { with.append(microseconds(ContinuousClock.now - start)) }
                    }
                    if !warmup { cpuWith += cpuSeconds() - cpu }
                    // commit→queued, on the lower-level API so the moment COMMIT is acknowledged is known.
                    for n in 0..<20 {
                        try await postgres.withConnection { connection in
                            let transaction = try await TransactionScope.enter(outbox: outbox)
                            try await connection.query("BEGIN", logger: logger)
                            try await transaction.run { try Airlock.enqueue(BenchTask(n: n)) }
                            try await transaction.willCommit(on: connection, logger: logger)
                            try await connection.query("COMMIT", logger: logger)
                            let committed = ContinuousClock.now
                            try await transaction.didCommit()
                            if !warmup { commitToQueued.append(microseconds(ContinuousClock.now - committed)) }
                        }
                    }
                }
            }
            await outbox.deletePending()
            let p50Off = percentile(without, 0.5), p99Off = percentile(without, 0.99)
            let p50On = percentile(with, 0.5), p99On = percentile(with, 0.99)
            note(String(format: "one-intent transaction, %d each: without outbox p50 %.0f µs p99 %.0f µs; with outbox p50 %.0f µs p99 %.0f µs (+%.0f µs p50, +%.0f µs p99)",
                        without.count, p50Off, p99Off, p50On, p99On, p50On - p50Off, p99On - p99Off))
            note(String(format: "CPU of this process per transaction: %.0f µs without, %.0f µs with the outbox",
                        cpuWithout / Double(max(1, without.count)) * 1e6, cpuWith / Double(max(1, with.count)) * 1e6))
            note(String(format: "commit→queued (fast path, Redis healthy), %d: p50 %.0f µs p99 %.0f µs",
                        commitToQueued.count, percentile(commitToQueued, 0.5), percentile(commitToQueued, 0.99)))
            emit("outbox_tx_without_p50_us", p50Off)
            emit("outbox_tx_without_p99_us", p99Off)
            emit("outbox_tx_with_p50_us", p50On)
            emit("outbox_tx_with_p99_us", p99On)
            emit("outbox_added_p50_us", p50On - p50Off)
            emit("outbox_added_p99_us", p99On - p99Off)
            emit("outbox_cpu_per_tx_without_us", cpuWithout / Double(max(1, without.count)) * 1e6)
            emit("outbox_cpu_per_tx_with_us", cpuWith / Double(max(1, with.count)) * 1e6)
            emit("outbox_commit_to_queued_p50_us", percentile(commitToQueued, 0.5))
            emit("outbox_commit_to_queued_p99_us", percentile(commitToQueued, 0.99))

            // 2. Relay drain: a backlog written with the fast path pointed at a closed port, then relays.
            let down = Outbox(executor: RedisExecutor(client: RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: 1), logger: logger),
                                                      namespace: namespace, logger: logger),
                              postgres: postgres, fastPathCooldown: .seconds(3600), logger: logger)
            let admin = OutboxAdmin(postgres: postgres, namespace: namespace, logger: logger)
            for relays in relayCounts {
                var written = 0
                while written < backlog {
                    let size = min(1_000, backlog - written)
                    try await Airlock.transaction(on: postgres, outbox: .using(down), logger: logger) { _ in
                        for n in 0..<size { try Airlock.enqueue(BenchTask(n: written + n)) }
                    }
                    written += size
                }
                _ = try await direct.client.send("DEL", direct.keys.ready("default"))
                var settings = OutboxRelay.Configuration()
                settings.gracePeriod = .zero
                settings.pollInterval = .milliseconds(20)
                // OUTBOX_BENCH_ANALYZE=off: the relay leaves the statistics to autovacuum (the before figure).
                if environment["OUTBOX_BENCH_ANALYZE"] == "off" { settings.analyzeInterval = nil }
                if let size = environment["OUTBOX_BENCH_BATCH"].flatMap(Int.init) { settings.batchSize = size }
                let workers = try (0..<relays).map { _ in try OutboxRelay(executor: try executor(), postgres: postgres, configuration: settings, logger: logger) }
                let cpu = cpuSeconds()
                let start = ContinuousClock.now
                try await withThrowingTaskGroup(of: Void.self) { drain in
                    for relay in workers { drain.addTask { try await relay.run() } }
                    // The relays' own counters, not the table: a count(*) of the backlog every 10 ms
                    // (a parallel scan of the table) took the CPU the relay and PostgreSQL drain with.
                    while workers.reduce(0, { $0 + $1.delivered }) < backlog { try await Task.sleep(for: .milliseconds(10)) }
                    drain.cancelAll()
                }
                let elapsed = microseconds(ContinuousClock.now - start) / 1e6
                let used = cpuSeconds() - cpu
                let queued = try await direct.client.send("LLEN", direct.keys.ready("default")).integer()
                let left = try await admin.status().pending
                if left != 0 { note("\(left) rows still pending after the drain") }
                note(String(format: "drain of %d rows by %d relay(s): %.2f s, %.0f rows/s, %.1f µs CPU of this process per row (%d queued)",
                            backlog, relays, elapsed, Double(backlog) / elapsed, used / Double(backlog) * 1e6, queued))
                emit("outbox_drain_\(relays)_relays_per_s", Double(backlog) / elapsed)
                emit("outbox_drain_\(relays)_relays_cpu_per_row_us", used / Double(backlog) * 1e6)
            }
        }
    }
}
