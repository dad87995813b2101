import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Periodic jobs on a real Redis: the claim script, several schedulers (in process and as
/// `airlock-workerd` processes, one killed with SIGKILL) enqueueing each tick once, and what
/// operators see.
@Suite("Worker: periodic jobs", .timeLimit(.minutes(5)))
struct WorkerScheduleTests {
    /// A source opened in `harness`'s namespace, for calling the claim directly.
    static func openedSource(_ harness: WorkerHarness, protocol wire: WireProtocol = .native) async throws -> RedisJobSource {
        var configuration = try harness.configuration()
        configuration.wireProtocol = wire
        let source = RedisJobSource(configuration: configuration.source, logger: WorkerKit.quiet)
        try await source.open(WorkerRegistration(id: "claimer-\(UUID().uuidString.prefix(8))", queues: ["default"], heartbeatTTL: .seconds(5), description: [:]))
        return source
    }

    /// The `scheduled_at` of every job waiting in `queue`, oldest tick first.
    static func waitingTicks(_ harness: WorkerHarness, _ queue: String) async throws -> [Int64] {
        try await harness.list(harness.keys.ready(queue)).map { try WorkerKit.object($0) }.compactMap { $0["scheduled_at"]?.intValue.map(Int64.init) }.sorted()
    }

    static func expectOncePerTick(_ ticks: [Int64], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(Set(ticks).count == ticks.count, "a tick was enqueued twice: \(ticks)", sourceLocation: sourceLocation)
        #expect(zip(ticks, ticks.dropFirst()).allSatisfy { $1 - $0 == 1000 }, "a tick was skipped: \(ticks)", sourceLocation: sourceLocation)
    }

    @Test func theClaimEnqueuesOnlyTicksLaterThanTheRecordAndNeverMovesItBack() async throws {
        let harness = try await WorkerHarness.make("sched-claim")
        let source = try await Self.openedSource(harness)
        defer { Task { await source.close(clean: true) } }
        let message: (Int64) -> [UInt8] = { Array("{\"tick\":\($0)}".utf8) }

        // Nothing recorded, nothing asked: nothing happens.
        #expect(try await source.claimTicks(TickClaim(schedule: "s", queue: "default", jobs: [(1000, message(1000))], advanceTo: 1000))
            == TickClaimResult(last: nil, enqueued: 0))
        #expect(try await harness.readyCount() == 0)
        // The first pass records its start; a second start does not move it.
        #expect(try await source.claimTicks(TickClaim(schedule: "s", queue: "default", initialize: 5000)).last == 5000)
        #expect(try await source.claimTicks(TickClaim(schedule: "s", queue: "default", initialize: 9000)).last == 5000)

        let ticks: [Int64] = [4000, 5000, 6000, 7000]
        let claim = TickClaim(schedule: "s", queue: "default", jobs: ticks.map { ($0, message($0)) }, advanceTo: 7000)
        #expect(try await source.claimTicks(claim) == TickClaimResult(last: 7000, enqueued: 2))
        #expect(try await harness.list(harness.keys.ready("default")).reversed() == [message(6000), message(7000)])
        // The same claim again, and an older advance: nothing more, the record stays.
        #expect(try await source.claimTicks(claim) == TickClaimResult(last: 7000, enqueued: 0))
        #expect(try await source.claimTicks(TickClaim(schedule: "s", queue: "default", advanceTo: 6000)).last == 7000)
        #expect(try await harness.command("GET", harness.keys.scheduleTick("default", schedule: "s")).string == "7000")
        #expect(try await harness.readyCount() == 2)
    }

    @Test func concurrentClaimsOfTheSameTicksEnqueueEachOnce() async throws {
        let harness = try await WorkerHarness.make("sched-race")
        let sources = try await (0..<3).asyncMap { _ in try await Self.openedSource(harness) }
        defer { for source in sources { Task { await source.close(clean: true) } } }
        _ = try await sources[0].claimTicks(TickClaim(schedule: "race", queue: "default", initialize: 0))
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for source in sources {
                group.addTask {
                    var enqueued = 0
                    for tick in stride(from: Int64(1000), through: 50_000, by: 1000) {
                        let claim = TickClaim(schedule: "race", queue: "default", jobs: [(tick, Array("\(tick)".utf8))], advanceTo: tick)
                        enqueued += try await source.claimTicks(claim).enqueued
                    }
                    return enqueued
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(total == 50)
        let queued = try await harness.list(harness.keys.ready("default")).map { String(decoding: $0, as: UTF8.self) }
        #expect(queued.count == 50)
        #expect(Set(queued).count == 50)
    }

    @Test func threeWorkersEnqueueEachTickOnceWhileOneStops() async throws {
        let harness = try await WorkerHarness.make("sched-fleet")
        var tasks = TaskRegistry()
        // The jobs go to a queue no worker consumes, so every one stays there to be counted.
        try tasks.schedule("every-second", .every(.seconds(1)), task: "report.tick", queue: "ticks")
        let configuration = try harness.configuration()
        let runs = (0..<3).map { _ in WorkerRun(Worker(configuration: configuration, registry: tasks, logger: WorkerKit.quiet)) }
        try await WorkerKit.eventually("three ticks") { try await Self.waitingTicks(harness, "ticks").count >= 3 }
        try await runs[0].stop().get()
        let afterStop = try await Self.waitingTicks(harness, "ticks").count
        try await WorkerKit.eventually("three more ticks after a worker stopped") {
            try await Self.waitingTicks(harness, "ticks").count >= afterStop + 3
        }
        for run in runs.dropFirst() { try await run.stop().get() }

        let ticks = try await Self.waitingTicks(harness, "ticks")
        Self.expectOncePerTick(ticks)
        let jobs = try await harness.list(harness.keys.ready("ticks")).map(WorkerKit.object)
        #expect(jobs.allSatisfy { $0["task"] == "report.tick" && $0["schedule"] == "every-second" && $0["queue"] == "ticks" })
    }

    @Test func aScheduleRedisRefusesDoesNotStopTheOthers() async throws {
        let harness = try await WorkerHarness.make("sched-refused")
        // Something else wrote a string where the `broken` queue's ready list belongs.
        try await harness.command("SET", harness.keys.ready("broken"), "not a list")
        var tasks = TaskRegistry()
        try tasks.schedule("into-broken", .every(.seconds(1)), task: "report.tick", queue: "broken")
        try tasks.schedule("into-ticks", .every(.seconds(1)), task: "report.tick", queue: "ticks")
        try await harness.withWorker(try harness.configuration(), registry: tasks) { _ in
            try await WorkerKit.eventually("three ticks of the healthy schedule") { try await Self.waitingTicks(harness, "ticks").count >= 3 }
        }
        #expect(try await harness.command("GET", harness.keys.ready("broken")).string == "not a list")
        Self.expectOncePerTick(try await Self.waitingTicks(harness, "ticks"))
    }

    @Test func aDaemonKilledWithSIGKILLNeitherDoublesNorSkipsATick() async throws {
        let harness = try await WorkerHarness.make("sched-kill")
        let arguments = [
            "run", "--redis", harness.url, "--namespace", harness.namespace, "--queues", "default", "--log-level", "warning",
            "--schedule", "every-second=every 1s=report.tick@ticks",
        ]
        var daemons: [WorkerDaemon] = []
        for _ in 0..<3 { daemons.append(try await WorkerDaemon.launch(arguments)) }
        defer { for daemon in daemons { Task { await daemon.killIfRunning() } } }
        try await WorkerKit.eventually("three ticks from the daemons") { try await Self.waitingTicks(harness, "ticks").count >= 3 }
        daemons[0].send(SIGKILL)
        _ = try await daemons[0].waitForExit(within: .seconds(30))
        let atKill = try await Self.waitingTicks(harness, "ticks").count
        try await WorkerKit.eventually("four more ticks after the kill") { try await Self.waitingTicks(harness, "ticks").count >= atKill + 4 }
        for daemon in daemons.dropFirst() { daemon.send(SIGTERM) }
        for daemon in daemons.dropFirst() {
            let exit = try await daemon.waitForExit(within: .seconds(60))
            #expect(exit.exited && exit.status == 0, "\(daemon.stderr)")
        }
        Self.expectOncePerTick(try await Self.waitingTicks(harness, "ticks"))
    }

    @Test func operatorsSeeEachScheduleWithItsLastAndNextTick() async throws {
        let harness = try await WorkerHarness.make("sched-report")
        var tasks = TaskRegistry()
        try tasks.schedule("every-second", .every(.seconds(1)), task: "report.tick", queue: "ticks", missed: .skip)
        try tasks.schedule("nightly", .cron("0 3 * * *", timeZone: "Europe/Paris"), task: "report.nightly", queue: "ticks")
        try await harness.withWorker(try harness.configuration(), registry: tasks) { worker in
            try await WorkerKit.eventually("a tick") { try await harness.readyCount("ticks") >= 1 }
            let admin = RedisAdmin(client: harness.redis, namespace: harness.namespace)
            let report = try await admin.schedules()
            #expect(report.schedules.map(\.name) == ["every-second", "nightly"])
            let second = report.schedules[0]
            #expect(second.timing == "every 1s" && second.task == "report.tick" && second.queue == "ticks" && second.missed == "skip")
            #expect(second.declaredBy == worker.id)
            let last = try #require(second.lastTickMilliseconds)
            #expect(try #require(second.nextTickMilliseconds) > last)
            let nightly = report.schedules[1]
            #expect(nightly.timing == "cron 0 3 * * * Europe/Paris" && nightly.missed == "catch up 1")
            // 03:00 in Paris is 01:00 or 02:00 UTC.
            let next = Date(timeIntervalSince1970: Double(try #require(nightly.nextTickMilliseconds)) / 1000)
            #expect([1, 2].contains(Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: next).hour))
        }

        let json = try await CLI.run(["schedules", "--json", "--redis", harness.url, "--namespace", harness.namespace])
        #expect(json.status == 0, "\(json)")
        let document = try WorkerKit.object(Array(json.stdout.utf8))
        #expect(document["schema"] == "airlock.schedules/1")
        #expect(document["schedules"]?.arrayValue?.compactMap { $0.objectValue?["name"]?.stringValue } == ["every-second", "nightly"])
        let table = try await CLI.run(["schedules", "--redis", harness.url, "--namespace", harness.namespace])
        #expect(table.status == 0 && table.stdout.contains("cron 0 3 * * * Europe/Paris") && table.stdout.contains("report.nightly"), "\(table)")
    }

    @Test func hostileTextInAPublishedScheduleIsEscaped() async throws {
        let harness = try await WorkerHarness.make("sched-hostile")
        // A record written by something other than a worker: control characters everywhere.
        try await harness.command(
            "HSET", harness.keys.schedules, "evil\u{1b}[2J",
            #"{"task":"t\u001b]0;owned\u0007","queue":"q\n","timing":{"cron":"0 3 * * *\u001b[31m"},"declared_by":"\u202eevil"}"#)
        let table = try await CLI.run(["schedules", "--redis", harness.url, "--namespace", harness.namespace])
        #expect(table.status == 0, "\(table)")
        #expect(!CLI.hasTerminalControls(table.stdout), "\(table.stdout)")
        #expect(table.stdout.contains("evil\\x1b[2J") && table.stdout.contains("(unreadable)"))
    }

    @Test func aCeleryProtocolWorkerWithSchedulesRefusesToStart() async throws {
        let harness = try await WorkerHarness.make("sched-celery")
        var tasks = TaskRegistry()
        try tasks.schedule("every-second", .every(.seconds(1)), task: "report.tick")
        var configuration = try harness.configuration()
        configuration.wireProtocol = .celery
        let run = WorkerRun(Worker(configuration: configuration, registry: tasks, logger: WorkerKit.quiet))
        let result = try await run.waitForExit(within: .seconds(30))
        #expect { try result.get() } throws: { "\($0)".contains("cannot run periodic jobs") }

        // The same worker without its schedules starts.
        configuration.runsSchedules = false
        try await harness.withWorker(configuration, registry: tasks) { worker in try await harness.waitUntilRegistered(worker) }
        #expect(try await harness.command("EXISTS", harness.keys.schedules).int == 0)
    }
}

extension Sequence {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}
