import Airlock
import AirlockPostgres
import AirlockRedis
import AirlockRedisClient
import ArgumentParser
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import UnixSignals

/// `airlock-outbox relay`: runs relays until SIGTERM or SIGINT (each finishes the batch in hand).
struct RelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Deliver committed outbox rows whose fast path did not finish to Redis, and delete them.",
        discussion: """
            Several relays, in one process or many, share the rows safely (FOR UPDATE SKIP LOCKED), and a row is queued \
            once even when the fast path already sent it (deduplicated by job id for --dedup-window). Rows older than \
            the window minus --dedup-margin, and rows Redis refuses for their content, are parked: see `parked list`. \
            Each relay reports the outbox's depth to Redis every --report-interval, for `airlock-workerd stats`.
            """
    )

    @OptionGroup var postgres: PostgresOptions

    @Option(help: ArgumentHelp("Redis URL (default: AIRLOCK_REDIS_URL, then REDIS_URL, then redis://127.0.0.1:6379/0).", valueName: "url"))
    var redis: String?

    @Option(help: ArgumentHelp("Relays in this process, each with its own Redis connection.", valueName: "n"))
    var relaysPerProcess: Int = 1

    @Option(help: ArgumentHelp("Rows claimed per pass.", valueName: "n"))
    var batchSize: Int = 1_000

    @Option(help: ArgumentHelp("Seconds a row is left to its fast path before a relay takes it.", valueName: "seconds"))
    var grace: Double = 2

    @Option(help: ArgumentHelp("Seconds between looks when no NOTIFY arrives.", valueName: "seconds"))
    var poll: Double = 1

    @Option(help: ArgumentHelp("Seconds between depth reports to Redis.", valueName: "seconds"))
    var reportInterval: Double = 5

    @Option(help: ArgumentHelp("Seconds Redis remembers a delivered job id (the producers' idempotency TTL).", valueName: "seconds"))
    var dedupWindow: Double = 86_400

    @Option(help: ArgumentHelp("Rows older than the window minus this many seconds are parked, not sent.", valueName: "seconds"))
    var dedupMargin: Double = 3_600

    @Option(help: ArgumentHelp("Largest envelope sent, in bytes; larger rows are parked.", valueName: "bytes"))
    var maxPayloadBytes: Int = 512 * 1024

    @Flag(help: "Do not LISTEN for the insert trigger's NOTIFY (poll only).")
    var noListen = false

    func validate() throws {
        guard (1...64).contains(relaysPerProcess) else { throw ValidationError("--relays-per-process must be from 1 to 64") }
        guard (1...10_000).contains(batchSize) else { throw ValidationError("--batch-size must be from 1 to 10000") }
        for (name, value) in [("--grace", grace), ("--dedup-margin", dedupMargin)] where !(value >= 0 && value <= 86_400 * 365) {
            throw ValidationError("\(name) must be a number of seconds from 0")
        }
        for (name, value) in [("--poll", poll), ("--report-interval", reportInterval), ("--dedup-window", dedupWindow)]
        where !(value > 0 && value <= 86_400 * 365) {
            throw ValidationError("\(name) must be a positive number of seconds")
        }
        guard dedupMargin < dedupWindow else { throw ValidationError("--dedup-margin must be shorter than --dedup-window") }
        guard maxPayloadBytes >= 1 else { throw ValidationError("--max-payload-bytes must be positive") }
    }

    func run() async throws {
        let logger = postgres.logger(label: "airlock.outbox.relay")
        let parsed = try postgres.configuration()
        let environment = ProcessInfo.processInfo.environment
        let url = redis ?? environment["AIRLOCK_REDIS_URL"] ?? environment["REDIS_URL"] ?? "redis://127.0.0.1:6379/0"
        let redisConfiguration: RedisConfiguration
        do {
            redisConfiguration = try RedisConfiguration(url: url)
        } catch {
            throw ToolFailure(error.description, status: 2)
        }
        var settings = OutboxRelay.Configuration()
        settings.batchSize = batchSize
        settings.gracePeriod = .milliseconds(Int64(grace * 1000))
        settings.pollInterval = .milliseconds(Int64(poll * 1000))
        settings.reportInterval = .milliseconds(Int64(reportInterval * 1000))
        settings.deduplicationMargin = .milliseconds(Int64(dedupMargin * 1000))
        settings.listens = !noListen

        let client = PostgresClient(configuration: parsed.configuration, backgroundLogger: logger)
        var relays: [OutboxRelay] = []
        for index in 0..<relaysPerProcess {
            let redisClient = RedisClient(configuration: redisConfiguration, name: "airlock-outbox-relay-\(index)", logger: logger)
            let executor = RedisExecutor(
                client: redisClient, namespace: postgres.resolvedNamespace, maxPayloadBytes: maxPayloadBytes,
                idempotencyTTL: .milliseconds(Int64(dedupWindow * 1000)), logger: logger)
            relays.append(try OutboxRelay(executor: executor, postgres: client, configuration: settings, logger: logger))
        }
        logger.notice("outbox relays starting", metadata: [
            "relays": "\(relays.count)", "namespace": "\(SafeText.escape(postgres.resolvedNamespace))", "redis": "\(redisConfiguration.redactedURL)",
        ])
        // The pool is listed first: a group stops its services in reverse order, so the relays
        // finish their batches while the pool still serves them.
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: client)] + relays.map { .init(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }
}
