import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// docs/OPERATIONS.md ("An ACL user with the least it needs") gives one ACL rule for the worker,
/// the producers and the CLI. This suite runs all three under exactly that rule — read from the
/// document, so the two cannot drift apart — through the sentinels (which adds `ROLE`) with
/// replicated acknowledgement on (`WAIT`), and then checks Redis's `ACL LOG`: not a single
/// command or key was refused, optional ones included.
@Suite("Production Redis: the documented ACL user", .serialized, .timeLimit(.minutes(5)))
struct ProductionACLTests {
    static let password = "acl-user-pw"

    /// The documented rule, for keys under `t-acl-` (the namespaces this suite makes).
    static func documentedRule() throws -> String {
        let document = try String(contentsOf: CLI.packageRoot.appendingPathComponent("docs/OPERATIONS.md"), encoding: .utf8)
        let line = try #require(document.split(separator: "\n").first { $0.hasPrefix("user airlock on ") }, "docs/OPERATIONS.md has no `user airlock on …` line")
        #expect(line.contains("~airlock:*") && line.contains(">change-me"), "the documented rule names the airlock namespace and a placeholder password: \(line)")
        return line.replacingOccurrences(of: "~airlock:*", with: "~t-acl-*").replacingOccurrences(of: ">change-me", with: ">\(password)")
    }

    @Test func workerProducersAndCLIRunUnderTheDocumentedRule() async throws {
        let rule = try Self.documentedRule()
        let cluster = try await SentinelCluster.start(dataOptions: .init(extraConfig: [rule]))
        let master = try await cluster.masterPort()
        let url = cluster.url(query: "wait_replicas=1&wait_timeout=2000")
            .replacingOccurrences(of: "redis+sentinel://", with: "redis+sentinel://airlock:\(Self.password)@")
        let harness = try await WorkerHarness.make("acl", server: cluster.node(port: master), url: url)
        #expect(harness.namespace.hasPrefix("t-acl-"))
        #expect(harness.executor.replication == RedisReplication(replicas: 1, timeout: .seconds(2)), "the URL's wait_replicas reached the producer")

        try await Self.everyFeature(harness, url: url)

        // Nothing was refused, not even the optional commands (INFO, CLIENT KILL).
        let admin = RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: try await cluster.masterPort()), logger: WorkerKit.quiet)
        let log = try await admin.send("ACL", "LOG").array ?? []
        #expect(log.isEmpty, "refused under the documented rule: \(log)")
        await admin.close()

        // And the rule is tight: another namespace is out of reach.
        let outsider = try await CLI.run(["stats", "--namespace", "airlock"], environment: ["AIRLOCK_REDIS_URL": url])
        #expect(outsider.status == 3, "\(outsider)")
        #expect(outsider.stderr.contains("NOPERM") || outsider.stderr.contains("no permissions"), "\(outsider)")
    }

    /// The same application code and CLI, whatever the URL (one server, Sentinel, Cluster): a
    /// worker with follow-ups, retries into a dead letter, a periodic job, a queue limit; producers
    /// with idempotency keys, priorities, countdowns and a batch; and every CLI command an operator
    /// uses, each of which must succeed.
    static func everyFeature(_ harness: WorkerHarness, url: String) async throws {
        var registry = TaskRegistry()
        registry.register("acl.ok") { _, _ in
            try Airlock.enqueue(name: "airlock.record", kwargs: ["token": "follow-up"])
        }
        registry.register("acl.fail", maxRetries: 1) { _, _ in throw WorkerTaskError(message: "fails twice, then dead") }
        // A periodic job onto a queue nobody consumes: its claim script and published record run under the rule too.
        try registry.schedule("acl-tick", .every(.seconds(1)), task: "acl.tick", queue: "ticks")
        try await harness.enqueue {
            try Airlock.enqueue(name: "acl.ok")
            try Airlock.enqueue(name: "acl.ok", options: DispatchOptions(idempotencyKey: "once"))
            try Airlock.enqueue(name: "acl.ok", options: DispatchOptions(idempotencyKey: "once"))
            try Airlock.enqueue(name: "acl.ok", options: DispatchOptions(priority: 5))
            try Airlock.enqueue(name: "acl.ok", options: DispatchOptions(countdown: .milliseconds(300)))
            try Airlock.enqueue(name: "acl.fail")
        }
        // A batch of two: its record, its counting and its callback run under the rule too.
        let batch = Batch(onComplete: Intent(taskName: "airlock.record", payload: .dynamic(TaskArguments(kwargs: ["token": "batch-done"]))))
        try await harness.executor.batch(batch, policy: AllowAll()) {
            try Airlock.enqueue(name: "acl.ok")
            try Airlock.enqueue(name: "acl.ok")
        }
        var setup = try harness.configuration()
        setup.orphanSweepInterval = .milliseconds(300)
        // A declared queue limit (high enough not to throttle): its scripts run under the rule too.
        setup.source.limits = ["default": try QueueLimit(parsing: "concurrency:100,rate:1000/1s")]
        try await harness.withWorker(setup, registry: registry) { worker in
            try await WorkerKit.eventually("six jobs done, their follow-ups and the batch's callback done, one dead after a retry", timeout: .seconds(30)) {
                let stats = try await harness.stats()
                return stats["processed"] == 13 && stats["dead"] == 1
            }
            try await harness.waitUntilRegistered(worker)
            try await WorkerKit.eventually("a periodic job enqueued") { try await harness.readyCount("ticks") >= 1 }
            let dead = try await harness.dead()
            let id = try #require(dead.first?["id"]?.stringValue)
            for command in [
                ["stats", "--no-rate"], ["stats", "--json", "--interval", "0.2"], ["workers"], ["queues"], ["schedules"], ["batches"], ["batches", batch.id], ["dead", "list"], ["dead", "show", id],
                ["dead", "retry", id], ["pause", "default"], ["resume", "default"], ["enqueue", "acl.ok", "--countdown", "0.2"],
                ["enqueue", "acl.ok", "--idempotency-key", "cli-once"],
                ["limit", "default"], ["limit", "ticks", "--rate", "1000/1s"], ["limit", "ticks", "--clear"],
            ] {
                let result = try await CLI.run(command + ["--namespace", harness.namespace], environment: ["AIRLOCK_REDIS_URL": url])
                #expect(result.status == 0, "\(command): \(result)")
            }
            // A job scheduled an hour ahead, cancelled by id: the cancel script runs under the rule too.
            let later = try await CLI.run(
                ["enqueue", "acl.ok", "--countdown", "3600", "--namespace", harness.namespace], environment: ["AIRLOCK_REDIS_URL": url])
            let laterID = later.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let cancelled = try await CLI.run(["cancel", laterID, "--namespace", harness.namespace], environment: ["AIRLOCK_REDIS_URL": url])
            #expect(later.status == 0 && cancelled.status == 0 && cancelled.stdout.contains("removed from the delayed jobs"), "\(later)\n\(cancelled)")
            try await WorkerKit.eventually("the retried dead letter and the CLI's jobs done", timeout: .seconds(30)) {
                let stats = try await harness.stats()
                return stats["processed"] == 17 && stats["dead"] == 2
            }
            let purged = try await CLI.run(["dead", "purge", "--all", "--namespace", harness.namespace], environment: ["AIRLOCK_REDIS_URL": url])
            #expect(purged.status == 0, "\(purged)")
        }
        let recorded = try await harness.recorded()
        #expect(recorded.count == 9 && recorded.filter { $0 == "batch-done" }.count == 1, "every acl.ok job's follow-up and the batch's callback ran: \(recorded)")
    }
}
