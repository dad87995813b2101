import Airlock
import AirlockDaemon
import AirlockRedis
import AirlockRedisClient
import AirlockTestSupport
import AirlockWorker
import Foundation
import Prometheus
import Testing

// What an operator's Prometheus reads: the worker's and the sampler's metrics through the
// daemon's AirlockPrometheusFactory, each test over a registry of its own (nothing bootstrapped).

@Suite("Metrics exposition: escaping, bounded labels, the fleet sampler")
struct MetricsExpositionTests {
    static let hostileRegistered = "evil\"} 1\nairlock_forged_total 1\n\\"

    @Test func hostileTaskNamesAreEscapedAndUnknownOnesShareOneSeries() async throws {
        let registry = PrometheusCollectorRegistry()
        let queues = InMemoryQueues()
        var tasks = TaskRegistry()
        tasks.register(Self.hostileRegistered) { _, _ in }
        try await Airlock.scope(policy: AllowAll(), executor: queues.executor(), behavior: DefaultScopeBehavior()) {
            try Airlock.enqueue(name: Self.hostileRegistered)
        }
        // 200 jobs, each naming a different task nobody registered: one series, not 200.
        for index in 0..<200 {
            let task = "nope-\(index)\"} 9\n# TYPE airlock_forged_total counter\nairlock_forged_total"
            queues.push(Envelope(id: "u\(index)", task: task, queue: "default", enqueuedAt: epochMilliseconds()).encoded(), to: "default")
        }
        var configuration = WorkerConfiguration(queues: ["default"])
        configuration.blockTimeout = .milliseconds(100)
        let worker = Worker(source: queues.makeSource(), configuration: configuration, registry: tasks, logger: WorkerKit.quiet,
                            metricsFactory: AirlockPrometheusFactory(registry: registry))
        let running = Task { try await worker.run() }
        try await WorkerKit.eventually("every job settled") {
            queues.counters("default")["processed"] == 1 && queues.dead("default").count == 200
        }
        worker.shutdown()
        try await running.value

        let text = String(decoding: registry.emitToBuffer(), as: UTF8.self)
        #expect(text.contains(#"task="evil\"} 1\nairlock_forged_total 1\n\\""#), "the registered name, escaped: \(text)")
        #expect(!text.split(separator: "\n").contains { $0.hasPrefix("airlock_forged_total") }, "a task name forged a line:\n\(text)")
        let unknown = text.split(separator: "\n").filter { $0.hasPrefix("airlock_jobs_total{") && $0.contains(#"task="unknown""#) }
        #expect(unknown.count == WorkerMetricsOutcomes.count, "one series per outcome for every unknown name: \(unknown)")
        #expect(unknown.contains { $0.contains(#"outcome="dead"} 200"#) }, "\(unknown)")
        #expect(!text.contains("nope-"), "an unregistered name became a label")
        try PromtoolCheck.metrics(text)
    }

    @Test func oneSamplerOfTwoExportsTheQueueGaugesSkippingInvalidNamesAndCappingTheRest() async throws {
        let server = try await RedisServer.shared()
        let namespace = RedisServer.uniqueNamespace("sampler")
        let keys = RedisKeys(namespace: namespace)
        let configuration = try RedisConfiguration(url: server.url)
        let client = RedisClient(configuration: configuration, name: "test", logger: WorkerKit.quiet)
        let executor = RedisExecutor(client: client, namespace: namespace, defaultQueue: "a")
        _ = try await executor.enqueue((0..<3).map { Intent(taskName: "t\($0)", payload: .dynamic(TaskArguments()), options: DispatchOptions(queue: "a")) })
        _ = try await executor.enqueue([Intent(taskName: "t", payload: .dynamic(TaskArguments()), options: DispatchOptions(queue: "b"))])
        _ = try await executor.enqueue([Intent(taskName: "t", payload: .dynamic(TaskArguments()), options: DispatchOptions(queue: "c"))])
        _ = try await client.send("SADD", keys.queues, "bad\"name\n{x}")
        // An outbox relay's report: the leader exports the outbox gauges from it.
        try await OutboxRelayReport(relayID: "relay-1", pending: 7, oldestPendingAgeMilliseconds: 4_500, parked: 1, delivered: 10,
                                    reportedAtMilliseconds: epochMilliseconds()).publish(on: client, keys: keys, ttl: .seconds(300))

        // A 2 s interval (so a 6 s lease): a loaded machine that delays the leader's renewal by a few
        // hundred milliseconds must not hand the lease over between the checks below.
        let registries = [PrometheusCollectorRegistry(), PrometheusCollectorRegistry()]
        let samplers = registries.enumerated().map { index, registry in
            QueueGaugeSampler(redis: configuration, namespace: namespace, holder: "holder-\(index)", interval: .seconds(2), maxQueues: 2,
                              metricsFactory: AirlockPrometheusFactory(registry: registry), logger: WorkerKit.quiet)
        }
        let tasks = samplers.map { sampler in Task { try await sampler.run() } }
        func texts() -> [String] { registries.map { String(decoding: $0.emitToBuffer(), as: UTF8.self) } }
        // The leader sets its gauges one by one while the registry may be read: wait for the whole
        // of one sample (the last queue's gauge and the outbox's), not just its first gauge.
        try await WorkerKit.eventually("one sampler exports the gauges, the other has run a step and does not") {
            let now = texts()
            return now.filter {
                $0.contains(#"airlock_queue_ready_jobs{queue="a"} 3"#) && $0.contains(#"airlock_queue_ready_jobs{queue="b"} 1"#)
                    && $0.contains("airlock_outbox_pending_rows 7")
            }.count == 1
                && now.allSatisfy { $0.contains("airlock_queue_sampler_leader ") }
        }
        let leader = try #require(texts().first { $0.contains("airlock_queue_ready_jobs") })
        let other = try #require(texts().first { !$0.contains("airlock_queue_ready_jobs") })
        #expect(leader.contains("airlock_queue_sampler_leader 1") && other.contains("airlock_queue_sampler_leader 0"))
        #expect(leader.contains(#"airlock_queue_ready_jobs{queue="b"} 1"#))
        #expect(!leader.contains(#"queue="c""#), "beyond --metrics-max-queues 2")
        #expect(!leader.contains("bad"), "a name outside the queue-name rule is never a label")
        #expect(leader.contains("airlock_queue_sampler_omitted_queues 2"), "\(leader)")
        #expect(leader.contains("airlock_outbox_pending_rows 7") && leader.contains("airlock_outbox_parked_rows 1"), "\(leader)")
        #expect(leader.contains("airlock_outbox_oldest_pending_age_seconds 4.5"), "\(leader)")
        #expect(!other.contains("airlock_outbox_"), "only the sampling worker exports the outbox gauges")
        try PromtoolCheck.metrics(leader)

        // No relay reports any more: the gauges go (no outbox is not an empty outbox).
        _ = try await client.send("DEL", keys.outboxRelay("relay-1"))
        try await WorkerKit.eventually("the outbox gauges are gone once no relay reports") {
            texts().allSatisfy { !$0.contains("airlock_outbox_pending_rows") } && texts().contains { $0.contains("airlock_queue_ready_jobs") }
        }

        for task in tasks { task.cancel() }
        for task in tasks { try? await task.value }
        #expect(try await client.send("EXISTS", keys.metricsSampler).int == 0, "a sampler that stops gives its lease up")
        await client.close()
    }
}

/// How many outcomes each task has a counter for (succeeded, retried, dead, expired, postponed, cancelled, revoked).
let WorkerMetricsOutcomes = ["succeeded", "retried", "dead", "expired", "postponed", "cancelled", "revoked"]

/// `promtool check metrics` over an exposition. Required under `CI=true`; elsewhere a missing
/// promtool skips only this check.
enum PromtoolCheck {
    static func metrics(_ exposition: String) throws {
        let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let promtool else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                Issue.record("promtool is required under CI=true (scripts/install-prometheus.sh)")
            }
            return
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: promtool)
        process.arguments = ["check", "metrics"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data(exposition.utf8))
        try input.fileHandleForWriting.close()
        let report = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "promtool check metrics: \(report)\n\(exposition)")
    }
}
