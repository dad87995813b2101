import Airlock
import AirlockRedis
import AirlockWorker
import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import ServiceLifecycle
import UnixSignals
import AirlockRedisClient
import Metrics
import Prometheus

/// `airlock-workerd run`: a worker process.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a worker: fetch jobs from the queues and execute the registered tasks.",
        discussion: """
            Jobs are taken atomically into this worker's in-flight list and acknowledged only after their \
            task finished, so a crash never loses one: another worker recovers them once this one's \
            heartbeat expires. SIGTERM or SIGINT stops fetching, lets running tasks finish within \
            --shutdown-timeout and returns unstarted jobs to their queue; a second signal exits at once.

            Queue order is priority: when several queues have work, free slots and prefetched jobs go to \
            the earlier queue first. Built-in diagnostic tasks: airlock.ping, airlock.echo, airlock.sleep, \
            airlock.fail, airlock.record.
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(name: .long, help: ArgumentHelp("Comma-separated queues, highest priority first.", valueName: "a,b,…"))
    var queues: String = "default"

    @Option(name: .long, help: "Tasks that run at the same time.")
    var concurrency: Int = 10

    @Option(name: .long, help: "Jobs fetched ahead of free slots (held as this worker's in-flight jobs). Default: --concurrency.")
    var prefetch: Int?

    @Option(name: .long, help: ArgumentHelp("Seconds running tasks get to finish after SIGTERM.", valueName: "seconds"))
    var shutdownTimeout: Double = 30

    @Option(name: .long, help: ArgumentHelp("trace, debug, info, notice, warning, error or critical.", valueName: "level"))
    var logLevel: String = "info"

    @Option(name: .long, help: ArgumentHelp("human (one readable line per event) or json (one JSON object per line).", valueName: "human|json"))
    var logFormat: String = "human"

    @Option(name: .long, help: "Worker name shown by `airlock-workerd workers` (host name by default).")
    var name: String?

    @Option(name: .long, help: "Default retries after the first attempt, when neither job nor task says.")
    var maxRetries: Int = 3

    @Option(name: .long, help: ArgumentHelp("Seconds a task attempt may run before it is cancelled (default: no limit).", valueName: "seconds"))
    var taskTimeout: Double?

    @Option(name: .long, help: "Dead letters kept per queue.")
    var deadLetterCap: Int = 10_000

    @Option(name: .long, help: ArgumentHelp("Largest message read, in bytes; larger ones are dead-lettered unread.", valueName: "bytes"))
    var maxMessageBytes: Int = 512 * 1024

    @Option(name: .long, help: ArgumentHelp(
        "Message format: native (Airlock envelopes on <ns>:{Q}:ready) or celery (Celery protocol v2 on kombu's queue keys, results in Celery's Redis result backend).",
        valueName: "native|celery"))
    var `protocol`: String = "native"

    @Option(name: .long, help: ArgumentHelp(
        "Serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9464; [::1]:9464; :9464 for every interface). Off unless given.",
        valueName: "host:port"))
    var metricsListen: String?

    @Option(name: .long, help: ArgumentHelp(
        "Seconds between two samples of the queue gauges, taken by one worker of the fleet at a time (with --metrics-listen).",
        valueName: "seconds"))
    var metricsSampleInterval: Double = 5

    @Option(name: .long, help: ArgumentHelp(
        "Most queues given gauges of their own by the sampler (the first by name); the rest are counted in airlock_queue_sampler_omitted_queues.",
        valueName: "count"))
    var metricsMaxQueues: Int = 200

    @Option(name: .long, help: ArgumentHelp(
        "A periodic job, NAME=TIMING=TASK[@QUEUE]: 'cleanup=every 30s=reports.cleanup', 'nightly=cron 0 3 * * * Europe/Paris=reports.nightly@low'. Repeatable; each tick is enqueued once across the fleet (docs/SCHEDULES.md).",
        valueName: "name=timing=task"))
    var schedule: [String] = []

    @Option(name: .long, help: ArgumentHelp(
        "A fleet-wide limit this worker declares for a queue, QUEUE=concurrency:N,rate:N/INTERVAL[,burst:B]: 'orders=concurrency:5,rate:100/1s'. Repeatable; written to Redis at start, replacing the queue's record (docs/OPERATIONS.md, Queue limits).",
        valueName: "queue=limit"))
    var limit: [String] = []

    @Flag(name: .long, help: "Do not enqueue periodic jobs from this worker (those given with --schedule or registered in code).")
    var noSchedules = false

    func validate() throws {
        guard (1...10_000).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 10000") }
        if let prefetch, !(0...100_000).contains(prefetch) { throw ValidationError("--prefetch must be between 0 and 100000") }
        guard Duration(checkedSeconds: shutdownTimeout) != nil else {
            throw ValidationError("--shutdown-timeout must be a number of seconds from 0 to \(Int(Duration.longestAccepted.timeInterval))")
        }
        if let taskTimeout, taskTimeout == 0 || Duration(checkedSeconds: taskTimeout) == nil {
            throw ValidationError("--task-timeout must be a positive number of seconds, at most \(Int(Duration.longestAccepted.timeInterval))")
        }
        guard Envelope.Limits.attempts.contains(maxRetries) else {
            throw ValidationError("--max-retries must be between 0 and \(Envelope.Limits.attempts.upperBound)")
        }
        guard deadLetterCap >= 1 else { throw ValidationError("--dead-letter-cap must be at least 1") }
        guard maxMessageBytes >= 1 else { throw ValidationError("--max-message-bytes must be at least 1") }
        guard Logger.Level(rawValue: logLevel.lowercased()) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        guard !queueList.isEmpty else { throw ValidationError("--queues needs at least one queue name") }
        _ = try validatedQueueList([queues], option: "--queues")
        guard LogFormat(rawValue: logFormat) != nil else { throw ValidationError("--log-format must be human or json") }
        guard let wire = WireProtocol(rawValue: `protocol`) else { throw ValidationError("--protocol must be native or celery") }
        // kombu (Celery's Redis transport) has no Redis Cluster support: its queue keys carry no
        // hash tag, so no Celery producer could share a Cluster with this worker anyway.
        if wire == .celery, (try? connection.redisConfiguration())?.cluster != nil {
            throw ValidationError("--protocol celery needs a single Redis or Sentinel: Celery's Redis transport (kombu) cannot use a Redis Cluster; use the native protocol on a Cluster")
        }
        if let metricsListen, ListenAddress(metricsListen) == nil {
            throw ValidationError("--metrics-listen must be HOST:PORT (127.0.0.1:9464, [::1]:9464, :9464), got '\(SafeText.escape(metricsListen))'")
        }
        guard let interval = Duration(checkedSeconds: metricsSampleInterval), interval >= .milliseconds(10) else {
            throw ValidationError("--metrics-sample-interval must be a number of seconds from 0.01 to \(Int(Duration.longestAccepted.timeInterval))")
        }
        guard (1...100_000).contains(metricsMaxQueues) else { throw ValidationError("--metrics-max-queues must be between 1 and 100000") }
        _ = try schedules(into: TaskRegistry())
        _ = try limits()
    }

    /// The `--limit` declarations, by queue.
    func limits() throws(ValidationError) -> [String: QueueLimit] {
        var limits: [String: QueueLimit] = [:]
        for text in limit {
            let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else {
                throw ValidationError("--limit '\(SafeText.escape(text))' must be QUEUE=LIMIT, such as 'orders=concurrency:5,rate:100/1s'")
            }
            if let problem = QueueName.problem(with: parts[0]) { throw ValidationError("--limit: \(problem)") }
            guard limits[parts[0]] == nil else { throw ValidationError("--limit: queue '\(SafeText.escape(parts[0]))' is given twice") }
            do {
                limits[parts[0]] = try QueueLimit(parsing: parts[1])
            } catch {
                throw ValidationError("--limit '\(SafeText.escape(text))': \(error)")
            }
        }
        return limits
    }

    /// `registry` with the `--schedule` periodic jobs declared.
    func schedules(into registry: TaskRegistry) throws(ValidationError) -> TaskRegistry {
        var registry = registry
        for text in schedule {
            let parts = text.split(separator: "=", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3 else {
                throw ValidationError("--schedule '\(SafeText.escape(text))' must be NAME=TIMING=TASK[@QUEUE], such as 'cleanup=every 30s=reports.cleanup'")
            }
            let target = parts[2].split(separator: "@", maxSplits: 1).map(String.init)
            do {
                try registry.schedule(
                    parts[0], try ScheduleTiming(parsing: parts[1]), task: target.first ?? "", queue: target.count == 2 ? target[1] : queueList.first ?? "default")
            } catch {
                throw ValidationError("--schedule '\(SafeText.escape(text))': \(error)")
            }
        }
        return registry
    }

    var queueList: [String] { AirlockDaemon.queueList([queues]) }

    func run() async throws {
        if AirlockCommand.logging.withLock({ $0 }) == .bootstrap {
            bootstrapLogging(level: Logger.Level(rawValue: logLevel.lowercased()) ?? .info, format: LogFormat(rawValue: logFormat) ?? .human)
        }
        // Before anything makes an instrument: each binds to the factory in force when it is made.
        let metricsRegistry = try metricsListen.map { _ in try Self.metricsRegistry() }
        var source = RedisJobSource.Configuration(redis: try connection.redisConfiguration())
        source.namespace = connection.namespace
        source.wireProtocol = WireProtocol(rawValue: `protocol`) ?? .native
        source.deadLetterCap = deadLetterCap
        source.limits = try limits()
        var configuration = WorkerConfiguration(queues: queueList)
        configuration.concurrency = concurrency
        configuration.prefetch = prefetch ?? concurrency
        configuration.shutdownTimeout = Duration(checkedSeconds: shutdownTimeout) ?? .seconds(30)
        configuration.name = name
        configuration.defaultMaxRetries = maxRetries
        configuration.defaultTimeout = taskTimeout.flatMap(Duration.init(checkedSeconds:))
        configuration.maxMessageBytes = maxMessageBytes
        configuration.sourceBackoff = source.redis.reconnectBackoff
        configuration.runsSchedules = !noSchedules

        let logger = Logger(label: "airlock.worker")
        let worker = Worker(
            source: RedisJobSource(configuration: source, logger: logger), configuration: configuration,
            registry: try schedules(into: AirlockCommand.registeredTasks.withLock { $0 }), logger: logger)
        // Graceful shutdown runs from the last service to the first: the worker stops, then the
        // sampler gives its lease up, and the endpoint answers until the very end.
        var services: [any Service] = []
        if let metricsRegistry, let metricsListen, let address = ListenAddress(metricsListen) {
            do {
                services.append(try MetricsEndpoint(address: address, logger: logger) { metricsRegistry.emitToBuffer() })
            } catch {
                throw CommandFailure("\(error)")
            }
            services.append(QueueGaugeSampler(
                redis: source.redis, namespace: connection.namespace, holder: worker.id,
                interval: Duration(checkedSeconds: metricsSampleInterval) ?? .seconds(5), maxQueues: metricsMaxQueues, logger: logger))
        }
        services.append(worker)
        // SIGTERM and SIGINT shut the group down gracefully; a second one exits at once (what was
        // running is recovered by another worker's reaper).
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        do {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                tasks.addTask { await Self.exitOnSecondSignal() }
                try await tasks.next()
                tasks.cancelAll()
            }
        } catch {
            throw CommandFailure(error)
        }
    }

    /// The registry `/metrics` serves: the daemon's own (swift-metrics bootstrapped with it, once
    /// per process) or the one the application bootstrapped with.
    static func metricsRegistry() throws -> PrometheusCollectorRegistry {
        switch AirlockCommand.metrics.withLock({ $0 }).mode {
        case .bootstrap:
            return DaemonMetrics.registry
        case .external(let registry?):
            return registry
        case .external(nil):
            throw CommandFailure(
                "--metrics-listen: this program set up swift-metrics itself and gave airlock-workerd no registry to serve; "
                    + "serve the metrics from the application, or start it with AirlockCommand.main(tasks:metrics: .alreadyBootstrapped(serving: registry))",
                exitCode: ExitStatus.usage)
        }
    }

    /// The second SIGTERM or SIGINT ends the process with status 130, at once.
    static func exitOnSecondSignal() async {
        var seen = 0
        for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
            seen += 1
            if seen == 2 {
                Console.write("airlock-workerd: second signal, exiting now\n", to: STDERR_FILENO)
                Console.exitProcess(130)
            }
        }
    }
}

/// The stock daemon's metrics: swift-metrics bootstrapped once per process, however many times
/// `run` is called in it.
enum DaemonMetrics {
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(AirlockPrometheusFactory(registry: registry))
        return registry
    }()
}
