import Airlock
import AirlockTestSupport
import Foundation
import Testing

@testable import AirlockRedis

/// Regression tests for the operator CLI against hostile content in Redis: nothing a job (or
/// anyone who can write to Redis) put there reaches the terminal raw, no number traps, ids with
/// escaped characters are found, secrets stay out of error messages.
@Suite("Hardening: the CLI against hostile content")
struct HardeningCLITests {
    typealias Kit = AdminTestKit

    static let hostile = "evil\u{1B}]0;pwned\u{07}\u{1B}[2J\u{9B}31m\u{202E}txt\nFORGED"

    @Test func noCommandPrintsTerminalControlsFromRedis() async throws {
        let f = try await AdminFixture.make("cli-escape")
        // A queue name nobody validated (anyone can SADD), a task name, an error and a worker host.
        let queue = "q\u{1B}[31m\u{9B}"
        try await f.pushDead(queue, [Kit.deadEntry(id: "bad-1", task: Self.hostile, queue: queue, error: Self.hostile)])
        try await f.pushReady(queue, [Kit.envelope(task: Self.hostile, queue: queue)])
        try await f.registerWorker("w\u{1B}[1m", alive: true, queues: [queue])
        try await f.command("HSET", f.keys.workerInfo("w\u{1B}[1m"), "host", Self.hostile, "version", "\u{9B}0m")
        let commands: [[String]] = [
            ["dead", "list"], ["dead", "list", "--json"], ["dead", "show", "bad-1"], ["queues"], ["queues", "--json"],
            ["stats", "--no-rate"], ["stats", "--no-rate", "--json"], ["workers"], ["workers", "--json"],
        ]
        for command in commands {
            let result = try await CLI.run(command, on: f)
            #expect(result.status == 0, "\(command): \(result)")
            #expect(!CLI.hasTerminalControls(result.stdout), "\(command) printed controls: \(result.stdout.debugDescription)")
            #expect(!CLI.hasTerminalControls(result.stderr), "\(command) printed controls on stderr: \(result.stderr.debugDescription)")
            #expect(!result.stdout.contains("\nFORGED"), "\(command): a value forged a line")
        }
        let list = try await CLI.run(["dead", "list"], on: f)
        #expect(list.stdout.contains(#"evil\x1b]0;pwned\x07"#), "escaped, still readable: \(list.stdout)")
        let retried = try await CLI.run(["dead", "retry", "bad-1"], on: f)
        #expect(retried.status == 0 && !CLI.hasTerminalControls(retried.stdout + retried.stderr), "\(retried)")
    }

    @Test func absurdTimestampsInRedisNeverTrapStatsOrListings() async throws {
        let f = try await AdminFixture.make("cli-numbers")
        var fields: [String: JSONValue] = ["v": 1, "id": "x", "task": "t", "queue": "q", "enqueued_at": .int(Int.min), "eta": .int(Int.min)]
        var message: [UInt8] = []
        JSONWriter.write(.object(fields), into: &message)
        try await f.pushReady("q", [message])
        fields["failed_at"] = .int(Int.min)
        fields["error"] = "e"
        var dead: [UInt8] = []
        JSONWriter.write(.object(fields), into: &dead)
        try await f.pushDead("q", [dead])
        try await f.registerWorker("w1", alive: true, queues: ["q"], heartbeatAt: .min, startedAt: .max)
        for command in [["stats", "--no-rate"], ["stats", "--no-rate", "--json"], ["dead", "list"], ["dead", "list", "--json"], ["workers"], ["workers", "--json"]] {
            let result = try await CLI.run(command, on: f)
            #expect(result.status == 0, "\(command): \(result)")
        }
        let report = try await f.admin.statsSample()
        #expect(report[queue: "q"]?.oldestReadyAgeMilliseconds == nil, "−2⁶³ is no timestamp")
        #expect(report[queue: "q"]?.ready == 1)
    }

    @Test func deadLettersWhoseIdsNeedEscapingAreFoundShownRetriedAndPurged() async throws {
        let f = try await AdminFixture.make("cli-escaped-ids")
        let ids = ["quote\"d", "back\\slash", "tab\there", "ctl\u{01}x", "csi\u{9B}y"]
        try await f.pushDead("q", ids.map { Kit.deadEntry(id: $0, queue: "q") })
        for id in ids {
            let letter = try await f.admin.deadLetter(id: id)
            #expect(letter.id == id)
        }
        let shown = try await CLI.run(["dead", "show", "quote\"d"], on: f)
        #expect(shown.status == 0 && shown.stdout.contains(#""id": "quote\"d""#), "\(shown)")
        let retried = try await f.admin.retryDeadLetters(ids: [ids[0], ids[1]])
        #expect(retried.map(\.outcome) == [.requeued, .requeued])
        let purged = try await CLI.run(["dead", "purge", ids[2], ids[3], ids[4]], on: f)
        #expect(purged.status == 0 && purged.stdout.hasPrefix("removed 3 dead letters"), "\(purged)")
        #expect(try await f.list(f.keys.dead("q")).isEmpty)
        #expect(try await f.list(f.keys.ready("q")).count == 2)
    }

    @Test(arguments: ["a,b", " a", "a ", "{tag}", "", "new\nline", "tab\tq", "-leading", String(repeating: "q", count: 129)])
    func aQueueNameNoWorkerCouldConsumeIsRefusedEverywhere(_ name: String) async throws {
        #expect(QueueName.problem(with: name) != nil)
        let f = try await AdminFixture.make("cli-queue-rule")
        let enqueued = try await CLI.run(["enqueue", "airlock.ping", "--queue", name], on: f)
        #expect(enqueued.status == 2, "enqueue --queue \(name.debugDescription): \(enqueued)")
        #expect(try await f.admin.queueNames().isEmpty, "nothing was written")
        if !name.contains(",") {
            let paused = try await CLI.run(["pause", name, "--create"], on: f)
            #expect(paused.status == 2, "\(paused)")
        }
        // The producer refuses it too, before anything is sent.
        let executor = RedisExecutor(client: f.raw, namespace: f.namespace, logger: Kit.quiet)
        let error = await #expect(throws: DispatchError.self) {
            try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                try Airlock.enqueue(name: "airlock.ping", options: DispatchOptions(queue: name))
            }
        }
        #expect((error?.underlying as? RedisExecutorError)?.kind == .invalidIntent, "\(String(describing: error))")
        // And a worker will not start on it.
        var configuration = WorkerSetup(redis: try RedisConfiguration(url: f.url))
        configuration.queues = [name]
        #expect(throws: WorkerConfigurationError.self) { try configuration.validate() }
    }

    @Test(arguments: ["default", "priority.low", "orders-eu:2", "ü-queue", "_private", "a@b/c"])
    func validQueueNamesPass(_ name: String) {
        #expect(QueueName.problem(with: name) == nil)
    }

    @Test func aDueTimePastYear9999IsRefusedByTheProducer() async throws {
        let f = try await AdminFixture.make("producer-range")
        let executor = RedisExecutor(client: f.raw, namespace: f.namespace, logger: Kit.quiet)
        let error = await #expect(throws: DispatchError.self) {
            try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                try Airlock.enqueue(name: "airlock.ping", options: DispatchOptions(countdown: .seconds(Int64.max / 4)))
            }
        }
        #expect((error?.underlying as? RedisExecutorError)?.kind == .invalidIntent, "\(String(describing: error))")
        let countdown = try await CLI.run(["enqueue", "airlock.ping", "--countdown", "1e300"], on: f)
        #expect(countdown.status == 2, "\(countdown)")
        #expect(try await f.admin.queueNames().isEmpty)
    }

    @Test func anInvalidURLNeverPrintsItsPassword() async throws {
        for url in ["redis://alice:s3cret@127.0.0.1:99999/0", "redis://:s3cret@[::1", "unix:///x.sock?password=s3cret&bogus=1"] {
            let result = try await CLI.run(["stats", "--redis", url])
            #expect(result.status == 2, "\(result)")
            #expect(!result.stderr.contains("s3cret") && !result.stdout.contains("s3cret"), "\(result)")
            #expect(result.stderr.contains("***"), "the redacted URL is shown: \(result)")
        }
        let fromEnvironment = try await CLI.run(["stats"], environment: ["AIRLOCK_REDIS_URL": "redis://u:s3cret@host:0"])
        #expect(fromEnvironment.status == 2 && !fromEnvironment.stderr.contains("s3cret"), "\(fromEnvironment)")
    }

    @Test func redisURLIsTheFallbackForAirlockRedisURL() async throws {
        let f = try await AdminFixture.make("cli-redis-url")
        try await f.addQueues("from-env")
        let viaRedisURL = try await CLI.run(["queues", "--namespace", f.namespace], environment: ["REDIS_URL": f.url])
        #expect(viaRedisURL.status == 0 && viaRedisURL.stdout == "from-env\n", "\(viaRedisURL)")
        // AIRLOCK_REDIS_URL wins over REDIS_URL.
        let port = try RedisServer.closedPort()
        let both = try await CLI.run(["queues", "--namespace", f.namespace], environment: ["REDIS_URL": "redis://127.0.0.1:\(port)/0", "AIRLOCK_REDIS_URL": f.url])
        #expect(both.status == 0 && both.stdout == "from-env\n", "\(both)")
    }
}
