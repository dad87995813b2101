import Airlock
import AirlockRedis
import AirlockTracingTestSupport
import ArgumentParser
import Foundation
import Logging
import Tracing

/// Puts real data in a namespace for the dashboard's browser tests (`demo`) and its bench (`bench`).
@main
struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "airlock-dashboard-seed",
        abstract: "Seeds a namespace for the dashboard's tests and bench.",
        subcommands: [Demo.self, Bench.self])
}

/// Options both modes share.
struct Target: ParsableArguments {
    @Option(help: "Redis URL.")
    var redis: String

    @Option(help: "Key namespace.")
    var namespace = "airlock"

    func admin() throws -> RedisAdmin {
        RedisAdmin(client: RedisClient(configuration: try RedisConfiguration(url: redis), name: "dashboard-seed", logger: Seed.quiet), namespace: namespace, logger: Seed.quiet)
    }
}

extension Seed {
    static let quiet = Logger(label: "airlock.seed", factory: { _ in SwiftLogNoOpLogHandler() })

    static func say(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    static func nowMS() -> Int64 { epochMilliseconds() }
}

/// Real traffic through the real code: jobs enqueued with `RedisExecutor` (one scope flush per
/// batch), run, retried and dead-lettered by a real `Worker` over `RedisJobSource` — including
/// hostile task names and errors — then a second worker that stays alive (heartbeats, a trickle
/// of jobs) until stdin closes or SIGTERM, at most `--hold` seconds.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Real jobs, failures, retries and a live worker; prints the seeded ids as JSON.")

    @OptionGroup var target: Target

    @Option(help: "Seconds the live worker keeps running at most (it stops earlier when stdin closes).")
    var hold = 600

    @Option(help: "Rounds of traffic, one a second, before the batch worker stops.")
    var rounds = 20

    /// The error a hostile task throws: markup, a script, quotes and terminal controls.
    static let hostileError = "card declined <script>window.__pwned = 1</script> <img src=x onerror=\"window.__pwned=2\"> \u{1b}[31mRED\u{1b}[0m"
    /// A task name no worker registered, with markup and a control character.
    static let hostileTask = "billing.<b>charge</b>\u{7}<script>window.__pwned=3</script>"

    func run() async throws {
        let admin = try target.admin()
        let redis = try RedisConfiguration(url: target.redis)
        let executor = RedisExecutor(client: admin.client, namespace: target.namespace, origin: "dashboard-seed", logger: Seed.quiet)
        func flush(_ body: () throws -> Void) async throws {
            try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) { try body() }
        }

        var registry = TaskRegistry()
        registry.register("mail.send") { _, _ in }
        registry.register("billing.charge", maxRetries: 0) { _, _ in throw PermanentFailure(Self.hostileError) }
        registry.register("billing.refund", maxRetries: 0) { _, _ in throw PermanentFailure("gateway timeout (refund service)") }
        registry.register("orders.confirm", maxRetries: 0) { _, _ in throw PermanentFailure("payment provider rejected order 1042") }
        registry.register("reports.build", maxRetries: 5, retry: .fixed(.seconds(3600))) { _, _ in throw SeedFailure("upstream 503 <i>temporarily</i> unavailable") }

        // Phase 1: a worker over every queue runs the traffic, then stops cleanly.
        var first = WorkerConfiguration(queues: ["mail", "billing", "reports"])
        first.concurrency = 8
        first.name = "seed-batch"
        first.heartbeatInterval = .milliseconds(250)
        first.sourceBackoff = redis.reconnectBackoff
        var sourceConfiguration = RedisJobSource.Configuration(redis: redis)
        sourceConfiguration.namespace = target.namespace
        let batch = Worker(source: RedisJobSource(configuration: sourceConfiguration, logger: Seed.quiet), configuration: first, registry: registry, logger: Seed.quiet)
        let batchRun = Task { try await batch.run() }

        // About 20 s of traffic of varying volume, so the charts have a shape.
        var chargeIDs: [String] = []
        var mailJobs = 0
        for round in 0..<rounds {
            let count = 20 + (round * 7) % 30
            mailJobs += count
            try await flush {
                for n in 0..<count { try Airlock.enqueue(name: "mail.send", kwargs: ["to": .string("user\(round)-\(n)@example.com")], options: DispatchOptions(queue: "mail")) }
                if round % 4 == 1, chargeIDs.count < 3 {
                    chargeIDs.append(try Airlock.enqueue(name: "billing.charge", args: [.int(round), "<script>window.__pwned=4</script>"], options: DispatchOptions(queue: "billing")).id.uuidString.lowercased())
                }
                if round == rounds / 2 { try Airlock.enqueue(name: "billing.refund", args: [42], options: DispatchOptions(queue: "billing")) }
            }
            try await Task.sleep(for: .seconds(1))
        }
        while chargeIDs.count < 3 {
            try await flush { chargeIDs.append(try Airlock.enqueue(name: "billing.charge", args: [0], options: DispatchOptions(queue: "billing")).id.uuidString.lowercased()) }
        }
        if rounds / 2 >= rounds { try await flush { try Airlock.enqueue(name: "billing.refund", args: [42], options: DispatchOptions(queue: "billing")) } }
        var hostile: String = ""
        var retrying: String = ""
        try await flush {
            hostile = try Airlock.enqueue(name: Self.hostileTask, kwargs: ["note": "<svg onload=alert(1)>"], options: DispatchOptions(queue: "billing")).id.uuidString.lowercased()
            retrying = try Airlock.enqueue(name: "reports.build", kwargs: ["day": "2026-12-01"], options: DispatchOptions(queue: "reports")).id.uuidString.lowercased()
        }
        // One job enqueued inside a span of the in-memory W3C tracer (standing in for an
        // application's request span): its dead letter carries a real `traceparent`, which the
        // dashboard shows as a trace id and links through --trace-url.
        let tracer = W3CTestTracer()
        var tracedID = ""
        try await withTracer(tracer) {
            try await tracer.withSpan("POST /orders/1042/confirm", ofKind: .server) { _ in
                try await flush {
                    tracedID = try Airlock.enqueue(name: "orders.confirm", kwargs: ["order": 1042], options: DispatchOptions(queue: "billing")).id.uuidString.lowercased()
                }
            }
        }
        let traceID = tracer.finishedSpans.first { $0.name == "airlock.flush" }?.traceID ?? ""
        try await waitFor("the batch to settle", admin) { stats in
            stats["billing"].map { $0.dead >= 6 } == true && stats["mail"].map { $0.counters.processed >= mailJobs } == true
                && stats["reports"].map { $0.delayed >= 1 } == true
        }
        batch.shutdown()
        try await batchRun.value

        // Scheduled (not retrying) work, and a paused queue with a backlog.
        var scheduled: String = ""
        try await flush {
            scheduled = try Airlock.enqueue(name: "reports.build", kwargs: ["day": "2026-12-02"], options: DispatchOptions(queue: "reports", countdown: .seconds(7200))).id.uuidString.lowercased()
            for n in 0..<5 { try Airlock.enqueue(name: "mail.send", args: [.int(n)], options: DispatchOptions(queue: "default")) }
        }
        try await admin.pause("default")

        // Phase 2: a worker that stays alive on mail and reports, with a trickle of mail.
        var second = WorkerConfiguration(queues: ["mail", "reports"])
        second.concurrency = 4
        second.name = "seed-live"
        second.sourceBackoff = redis.reconnectBackoff
        let live = Worker(source: RedisJobSource(configuration: sourceConfiguration, logger: Seed.quiet), configuration: second, registry: registry, logger: Seed.quiet)
        let liveRun = Task { try await live.run() }
        try await waitFor("the live worker to register", admin) { _ in
            (try? await admin.workers().workers.contains { $0.id == live.id && $0.alive }) == true
        }

        var seeded: [String: JSONValue] = [
            "namespace": .string(target.namespace),
            "charge_ids": .array(chargeIDs.map { .string($0) }),
            "hostile_id": .string(hostile), "retrying_id": .string(retrying), "scheduled_id": .string(scheduled),
            "traced_id": .string(tracedID), "trace_id": .string(traceID),
            "live_worker": .string(live.id), "mail_processed": .int(mailJobs), "hostile_error": .string(Self.hostileError), "hostile_task": .string(Self.hostileTask),
        ]
        seeded["ready"] = "ok"
        var line: [UInt8] = []
        JSONWriter.write(.object(seeded), into: &line)
        Seed.say(String(decoding: line, as: UTF8.self))

        // Until stdin closes (the test script holds it open) or --hold passes. A thread of its own
        // waits on stdin, so no task of the cooperative pool blocks.
        let stdinClosed = Task { await Self.waitForEndOfInput() }
        let deadline = ContinuousClock.now + .seconds(hold)
        var round = 0
        while ContinuousClock.now < deadline {
            try await flush {
                for n in 0..<(3 + round % 5) { try Airlock.enqueue(name: "mail.send", args: [.int(n)], options: DispatchOptions(queue: "mail")) }
            }
            round += 1
            let finished = await withTaskGroup(of: Bool.self) { group in
                group.addTask { await stdinClosed.value; return true }
                group.addTask { try? await Task.sleep(for: .milliseconds(500)); return false }
                let first = await group.next() ?? false
                group.cancelAll()
                return first
            }
            if finished { break }
        }
        live.shutdown()
        try await liveRun.value
        await admin.client.close()
    }

    static func waitForEndOfInput() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread {
                while readLine(strippingNewline: false) != nil {}
                continuation.resume()
            }.start()
        }
    }

    /// Polls the stats until `condition` holds (bounded: 60 s).
    func waitFor(_ what: String, _ admin: RedisAdmin, _ condition: ([String: QueueStats]) async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let report = try await admin.statsSample()
            if try await condition(Dictionary(report.queues.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })) { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw SeedFailure("timed out waiting for \(what)")
    }
}

/// A namespace the size of a big deployment, written straight into Redis (the bench measures
/// reading it, not producing it): 100 queues with ready and delayed jobs, 50 registered live
/// workers with in-flight jobs, 100,000 dead letters (1000 per queue) and a full hour of
/// per-second series for every queue.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "100 queues, 50 workers, 100k dead letters, an hour of series.")

    @OptionGroup var target: Target

    @Option var queues = 100
    @Option var workers = 50
    @Option var deadLetters = 100_000

    func run() async throws {
        let admin = try target.admin()
        let client = admin.client
        let keys = RedisKeys(namespace: target.namespace)
        let now = Seed.nowMS()
        let names = (0..<queues).map { String(format: "queue-%03d", $0) }
        var commands: [RedisCommand] = [RedisCommand("SADD", ([keys.queues] + names).map { $0 as any RedisArgument })]
        let workerIDs = (0..<workers).map { "bench-\($0)-4242-\(String(format: "%08x", $0 * 2654435761 % 0xFFFF_FFFF))" }
        for (index, id) in workerIDs.enumerated() {
            let served = (0..<5).map { names[(index * 5 + $0) % names.count] }
            commands.append(RedisCommand("SADD", keys.workers, id))
            commands.append(RedisCommand("HSET", keys.workerInfo(id), "id", id, "host", "host-\(index % 10)", "pid", "\(4000 + index)",
                                         "queues", served.joined(separator: ","), "concurrency", "16", "started_at", "\(now - 3_600_000)",
                                         "version", "0.1.0", "in_flight", "2", "heartbeat_at", "\(now)"))
            commands.append(RedisCommand("SET", keys.heartbeat(id), "1", "EX", "86400"))
            for queue in served.prefix(2) {
                commands.append(RedisCommand("LPUSH", keys.inflight(queue, worker: id), Self.envelope(queue: queue, at: now)))
            }
        }
        try await send(client, &commands)
        let perQueue = max(1, deadLetters / max(1, queues))
        let errors = ["SMTP timeout", "550 mailbox unavailable", "card declined", "upstream 503", "deadline exceeded <b>x</b>"]
        for (q, queue) in names.enumerated() {
            for n in 0..<20 { commands.append(RedisCommand("LPUSH", keys.ready(queue), Self.envelope(queue: queue, at: now - Int64(n * 1000)))) }
            for n in 0..<20 { commands.append(RedisCommand("ZADD", keys.delayed(queue), "\(now + Int64(n) * 60_000)", Self.envelope(queue: queue, at: now))) }
            commands.append(RedisCommand("HSET", keys.stats(queue), "processed", "\(1_000_000 + q)", "failed", "\(5000 + q)", "retried", "\(4000 + q)", "dead", "\(perQueue)"))
            var batch: [[UInt8]] = []
            for n in 0..<perQueue {
                var fields: [String: JSONValue] = [
                    "error": .string(errors[(n + q) % errors.count]), "failed_at": .int(Int(now - Int64(perQueue - n) * 1000)), "attempts": 4,
                ]
                fields["trace"] = .string("t-\(q)-\(n)")
                let envelope = Envelope(id: UUID().uuidString.lowercased(), task: "bench.task\(n % 7)", args: [.int(n), "payload"], kwargs: ["k": .int(q)],
                                        queue: queue, enqueuedAt: now - 7_200_000, attempt: 3, maxRetries: 3, extra: fields)
                batch.append(envelope.encoded())
                if batch.count == 500 {
                    commands.append(RedisCommand("LPUSH", [keys.dead(queue) as any RedisArgument] + batch.map { $0 as any RedisArgument }))
                    batch.removeAll()
                }
            }
            if !batch.isEmpty { commands.append(RedisCommand("LPUSH", [keys.dead(queue) as any RedisArgument] + batch.map { $0 as any RedisArgument })) }
            // A full hour (61 minutes) of series, every second non-zero.
            let minuteNow = now / 60_000
            for minute in (minuteNow - 60)...minuteNow {
                var fields: [any RedisArgument] = [keys.series(queue, minute: minute)]
                for second in 0..<60 {
                    fields.append("p\(second)")
                    fields.append("\(10 + (second + q) % 20)")
                    if second % 7 == 0 {
                        fields.append("f\(second)")
                        fields.append("\(1 + q % 3)")
                    }
                }
                commands.append(RedisCommand("HSET", fields))
                commands.append(RedisCommand("EXPIRE", keys.series(queue, minute: minute), "3900"))
            }
            if commands.count > 400 { try await send(client, &commands) }
        }
        try await send(client, &commands)
        let report = try await admin.statsSample()
        Seed.say("seeded: \(report.totals.queues) queues, \(report.workers.alive) workers alive, \(report.totals.dead) dead letters, \(report.totals.ready) ready, \(report.totals.delayed) delayed")
        await client.close()
    }

    func send(_ client: RedisClient, _ commands: inout [RedisCommand]) async throws {
        guard !commands.isEmpty else { return }
        let replies = try await client.pipeline(commands)
        if let error = replies.lazy.compactMap(\.errorMessage).first { throw SeedFailure(error) }
        commands.removeAll()
    }

    static func envelope(queue: String, at now: Int64) -> [UInt8] {
        Envelope(id: UUID().uuidString.lowercased(), task: "bench.task", args: [1], queue: queue, enqueuedAt: now).encoded()
    }
}

struct SeedFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
