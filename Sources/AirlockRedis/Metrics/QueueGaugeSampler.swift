public import AirlockRedisClient
import AirlockWorker
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import Logging
import Synchronization
public import Metrics
public import ServiceLifecycle

/// Samples a namespace's queues from Redis and exports them as gauges (ready, delayed, in flight,
/// dead, oldest ready age, paused; workers alive and dead) — from one process of the fleet at a
/// time, so a fleet of fifty workers costs Redis one sample per interval, not fifty, and a
/// dashboard summing the gauges counts each job once.
///
/// Every sampler tries, each ``interval``, to take or renew the lease `<ns>:metrics:sampler`
/// (`SET … NX PX`, value: its ``holder`` id; see docs/PROTOCOL.md). The one holding it samples
/// (``RedisAdmin/statsSample(queues:)``: two round trips) and sets the gauges; the others export
/// none of them. A holder that stops cleanly deletes the lease so another takes over at its next
/// attempt; one that dies lets it expire after ``leaseTTL``. Every process exports
/// `airlock_queue_sampler_leader` (1 on the holder), so `sum(airlock_queue_sampler_leader)` is 1.
///
/// A `Service`: run it beside the ``Worker`` in the same `ServiceGroup` (`airlock-workerd run
/// --metrics-listen` does).
public final class QueueGaugeSampler: Service, Sendable {
    /// The id written into the lease (the worker's id in `airlock-workerd`).
    public let holder: String
    /// Time between two attempts to take or renew the lease, and between two samples.
    public let interval: Duration
    /// The key layout (the lease is ``RedisKeys/metricsSampler``).
    public let keys: RedisKeys
    /// Most queues given gauges of their own (the first by name); the rest are counted in
    /// `airlock_queue_sampler_omitted_queues`, so a producer that invents queue names cannot grow
    /// the exposition without bound.
    public let maxQueues: Int
    private let redis: RedisConfiguration
    private let metricsFactory: (any MetricsFactory)?
    private let logger: Logger

    /// How long the lease outlives its holder's last renewal: three intervals, so one slow
    /// renewal never hands the sampler over.
    public var leaseTTL: Duration { interval * 3 }

    /// A sampler of `namespace` on a connection of its own to `redis`.
    /// - Parameters:
    ///   - holder: this process's id in the lease (unique in the fleet).
    ///   - interval: the sampling period; at least 10 ms.
    ///   - maxQueues: most queues exported (at least 1); see ``maxQueues``.
    ///   - metricsFactory: where the gauges go; `nil` means swift-metrics' bootstrapped factory.
    public init(
        redis: RedisConfiguration, namespace: String = "airlock", holder: String, interval: Duration = .seconds(5), maxQueues: Int = 200,
        metricsFactory: (any MetricsFactory)? = nil, logger: Logger = Logger(label: "airlock.sampler")
    ) {
        self.redis = redis
        self.keys = RedisKeys(namespace: namespace, for: redis)
        self.holder = holder
        self.interval = max(interval, .milliseconds(10))
        self.maxQueues = max(1, maxQueues)
        self.metricsFactory = metricsFactory
        self.logger = logger
    }

    /// Samples until graceful shutdown or cancellation, then gives the lease up.
    public func run() async throws {
        let client = RedisClient(configuration: redis, name: "airlock-metrics", logger: logger)
        let gauges = ExportedGauges(factory: metricsFactory ?? MetricsSystem.factory, maxQueues: maxQueues)
        let state = await cancelWhenGracefulShutdown { [self] in
            var state = SamplerState()
            while !Task.isCancelled {
                await step(client, gauges, &state)
                do { try await Task.sleep(for: interval) } catch { break }
            }
            return state
        }
        if state.leading {
            _ = try? await client.evalScript(Self.releaseScript, keys: [Array(keys.metricsSampler.utf8)], args: [Array(holder.utf8)])
        }
        gauges.dropAll()
        gauges.leader.record(0)
        await client.close()
    }

    /// What the loop remembers between steps, so state changes are logged once.
    struct SamplerState: Sendable {
        var leading = false
        var failing = false
    }

    /// One attempt: take or renew the lease; while held, sample and set the gauges.
    func step(_ client: RedisClient, _ gauges: ExportedGauges, _ state: inout SamplerState) async {
        do {
            let held = try await client.evalScript(
                Self.leaseScript, keys: [Array(keys.metricsSampler.utf8)],
                args: [Array(holder.utf8), Array(String(leaseTTL.wholeMilliseconds).utf8)]
            ).integer() == 1
            if held != state.leading {
                logger.notice(held ? "this worker now samples the queue gauges for the fleet" : "another worker samples the queue gauges now",
                              metadata: ["lease": "\(keys.metricsSampler)"])
                state.leading = held
            }
            gauges.leader.record(held ? 1 : 0)
            guard held else { return gauges.dropAll() }
            let report = try await RedisAdmin(client: client, namespace: keys.namespace, logger: logger).statsSample()
            gauges.export(report)
            if state.failing { logger.notice("queue gauges sampled again") }
            state.failing = false
        } catch {
            // Stale depths mislead more than missing ones: drop them until a sample succeeds.
            gauges.dropAll()
            if !state.failing {
                logger.warning("cannot sample the queue gauges; retrying every interval", metadata: ["error": "\(error)"])
            }
            state.failing = true
        }
    }

    /// KEYS: [lease]. ARGV: [holder, ttl ms]. 1 when `holder` holds the lease afterwards.
    static let leaseScript = RedisScript("""
        #!lua
        local current = redis.call('GET', KEYS[1])
        if current == ARGV[1] then
          redis.call('PEXPIRE', KEYS[1], ARGV[2])
          return 1
        end
        if not current then
          redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
          return 1
        end
        return 0
        """)

    /// KEYS: [lease]. ARGV: [holder]. Deletes the lease only if `holder` still holds it.
    static let releaseScript = RedisScript("""
        #!lua
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """)
}

/// The gauges a sampler exports now; those of queues that disappeared are destroyed, so the
/// exporter stops showing them.
///
/// Queue names come from Redis (`<ns>:queues`, which any producer adds to), so they are bounded
/// before they become label values: a name outside ``QueueName``'s rule is never exported, and
/// beyond the first `maxQueues` valid names (by name) queues are only counted as omitted. The
/// exporter escapes what remains (swift-prometheus escapes `\`, `"` and line feeds).
final class ExportedGauges: Sendable {
    let leader: Gauge
    let omitted: Gauge
    let maxQueues: Int
    private let factory: any MetricsFactory
    // Only the sampler's one loop touches the map; the lock makes that checkable.
    private let byQueue = Mutex<[String: [Gauge]]>([:])
    private let workers = Mutex<[Gauge]>([])
    private let outbox = Mutex<[Gauge]>([])

    init(factory: any MetricsFactory, maxQueues: Int = 200) {
        self.factory = factory
        self.maxQueues = maxQueues
        leader = Gauge(label: AirlockMetrics.samplerLeader.name, factory: factory)
        leader.record(0)
        omitted = Gauge(label: AirlockMetrics.samplerOmittedQueues.name, factory: factory)
        omitted.record(0)
    }

    private static let perQueue = [
        AirlockMetrics.queueReady, AirlockMetrics.queueDelayed, AirlockMetrics.queueInFlight, AirlockMetrics.queueDead,
        AirlockMetrics.queueOldestAge, AirlockMetrics.queuePaused,
    ]

    func export(_ report: StatsReport) {
        let factory = self.factory
        let valid = report.queues.filter { QueueName.isValid($0.name) }
        let exported = valid.prefix(maxQueues)
        omitted.record(report.queues.count - exported.count)
        let gone = byQueue.withLock { byQueue -> [Gauge] in
            for queue in exported {
                let gauges = byQueue[queue.name] ?? Self.perQueue.map {
                    Gauge(label: $0.name, dimensions: [("queue", queue.name)], factory: factory)
                }
                byQueue[queue.name] = gauges
                gauges[0].record(queue.ready)
                gauges[1].record(queue.delayed)
                gauges[2].record(queue.inFlight)
                gauges[3].record(queue.dead)
                gauges[4].record(Double(max(0, queue.oldestReadyAgeMilliseconds ?? 0)) / 1000)
                gauges[5].record(queue.paused ? 1 : 0)
            }
            let present = Set(exported.map(\.name))
            let removed = byQueue.keys.filter { !present.contains($0) }
            return removed.flatMap { byQueue.removeValue(forKey: $0) ?? [] }
        }
        for gauge in gone { gauge.destroy() }
        let fleet = workers.withLock { workers -> [Gauge] in
            if workers.isEmpty {
                workers = [Gauge(label: AirlockMetrics.workersAlive.name, factory: factory), Gauge(label: AirlockMetrics.workersDead.name, factory: factory)]
            }
            return workers
        }
        fleet[0].record(report.workers.alive)
        fleet[1].record(report.workers.dead)
        exportOutbox(report.outbox.latest)
    }

    /// The outbox gauges from the most recent relay report (every relay reads the same table);
    /// none while no relay reports, so "no outbox" is not mistaken for "an empty outbox".
    private func exportOutbox(_ latest: OutboxRelayReport?) {
        let factory = self.factory
        let gauges = outbox.withLock { gauges -> [Gauge] in
            guard latest != nil else {
                defer { gauges.removeAll() }
                return gauges
            }
            if gauges.isEmpty {
                gauges = [AirlockMetrics.outboxPending, AirlockMetrics.outboxOldestAge, AirlockMetrics.outboxParked].map {
                    Gauge(label: $0.name, factory: factory)
                }
            }
            return gauges
        }
        guard let latest else { return gauges.forEach { $0.destroy() } }
        gauges[0].record(latest.pending)
        gauges[1].record(Double(max(0, latest.oldestPendingAgeMilliseconds ?? 0)) / 1000)
        gauges[2].record(latest.parked)
    }

    func dropAll() {
        let all = byQueue.withLock { byQueue in
            defer { byQueue.removeAll() }
            return byQueue.values.flatMap { $0 }
        } + workers.withLock { workers in
            defer { workers.removeAll() }
            return workers
        } + outbox.withLock { outbox in
            defer { outbox.removeAll() }
            return outbox
        }
        for gauge in all { gauge.destroy() }
        omitted.record(0)
    }
}
