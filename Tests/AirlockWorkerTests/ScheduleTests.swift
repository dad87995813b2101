import Airlock
import AirlockWorker
import Foundation
import Synchronization
import Testing

// Periodic jobs without a server: the cron reader, tick planning, and three schedulers over one
// in-memory back end enqueueing each tick once.

@Suite("Cron expressions")
struct CronExpressionTests {
    static let utc = ScheduleTimeZone.utc
    static let paris = try! ScheduleTimeZone("Europe/Paris")

    /// `2026-12-01T10:07:30Z`-style text as a date.
    static func at(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }
    static func text(_ date: Date?) -> String? { date.map { ISO8601DateFormatter().string(from: $0) } }

    /// The first `count` matches after `start`.
    static func matches(_ expression: String, after start: String, count: Int, in zone: ScheduleTimeZone = utc) throws -> [String] {
        let cron = try CronExpression(expression)
        var out: [String] = []
        var date = at(start)
        for _ in 0..<count {
            guard let next = cron.next(after: date, in: zone) else { break }
            out.append(text(next)!)
            date = next
        }
        return out
    }

    @Test func stepsRangesAndListsMatchTheirInstants() throws {
        #expect(try Self.matches("*/15 * * * *", after: "2026-12-01T10:07:30Z", count: 3)
            == ["2026-12-01T10:15:00Z", "2026-12-01T10:30:00Z", "2026-12-01T10:45:00Z"])
        #expect(try Self.matches("0 9-10 * * *", after: "2026-12-01T09:00:00Z", count: 3)
            == ["2026-12-01T10:00:00Z", "2026-12-02T09:00:00Z", "2026-12-02T10:00:00Z"])
        #expect(try Self.matches("5,35 14 * * *", after: "2026-12-01T14:05:00Z", count: 2) == ["2026-12-01T14:35:00Z", "2026-12-02T14:05:00Z"])
        #expect(try Self.matches("10/20 * * * *", after: "2026-12-01T00:00:00Z", count: 3)
            == ["2026-12-01T00:10:00Z", "2026-12-01T00:30:00Z", "2026-12-01T00:50:00Z"])
    }

    @Test func sixFieldsPutSecondsFirst() throws {
        #expect(try Self.matches("*/10 * * * * *", after: "2026-12-01T10:00:05Z", count: 3)
            == ["2026-12-01T10:00:10Z", "2026-12-01T10:00:20Z", "2026-12-01T10:00:30Z"])
    }

    @Test func namesAndSundayAsSevenAreRead() throws {
        // 2026-12-01 is a Tuesday.
        #expect(try Self.matches("0 9 * jan,dec MON-FRI", after: "2026-12-04T12:00:00Z", count: 2)
            == ["2026-12-07T09:00:00Z", "2026-12-08T09:00:00Z"])
        #expect(try Self.matches("0 0 * * 7", after: "2026-12-01T00:00:00Z", count: 1) == ["2026-12-06T00:00:00Z"])
        #expect(try Self.matches("0 0 * * 0", after: "2026-12-01T00:00:00Z", count: 1) == ["2026-12-06T00:00:00Z"])
    }

    @Test func bothDayFieldsRestrictedMatchEither() throws {
        // Midnight on the 1st and on every Monday (Vixie cron's rule).
        #expect(try Self.matches("0 0 1 * MON", after: "2026-12-21T00:00:00Z", count: 3)
            == ["2026-12-28T00:00:00Z", "2027-01-01T00:00:00Z", "2027-01-04T00:00:00Z"])
        // With the weekday field `*`, only the date counts.
        #expect(try Self.matches("0 0 1 * *", after: "2026-12-21T00:00:00Z", count: 1) == ["2027-01-01T00:00:00Z"])
    }

    @Test func leapDaysAndImpossibleDates() throws {
        #expect(try Self.matches("0 0 29 2 *", after: "2026-03-01T00:00:00Z", count: 1) == ["2028-02-29T00:00:00Z"])
        #expect(try CronExpression("0 0 30 2 *").next(after: Self.at("2026-01-01T00:00:00Z"), in: Self.utc) == nil)
    }

    @Test func macros() throws {
        #expect(try Self.matches("@hourly", after: "2026-12-01T10:07:30Z", count: 1) == ["2026-12-01T11:00:00Z"])
        #expect(try Self.matches("@daily", after: "2026-12-01T10:07:30Z", count: 1) == ["2026-12-02T00:00:00Z"])
        #expect(try Self.matches("@yearly", after: "2026-12-01T10:07:30Z", count: 1) == ["2027-01-01T00:00:00Z"])
    }

    @Test func localTimesFollowTheTimeZoneAcrossDaylightSaving() throws {
        // 03:00 in Paris is 02:00 UTC in winter.
        #expect(try Self.matches("0 3 * * *", after: "2026-12-01T00:00:00Z", count: 1, in: Self.paris) == ["2026-12-01T02:00:00Z"])
        // 2026-03-29: 02:00 jumps to 03:00, so 02:30 does not exist that day and is skipped.
        #expect(try Self.matches("30 2 * * *", after: "2026-03-28T12:00:00Z", count: 1, in: Self.paris) == ["2026-03-30T00:30:00Z"])
        // 2026-10-25: 03:00 falls back to 02:00, so 02:30 happens twice and fires twice.
        #expect(try Self.matches("30 2 * * *", after: "2026-10-24T12:00:00Z", count: 2, in: Self.paris)
            == ["2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"])
    }

    @Test(arguments: [
        ("60 * * * *", "minute field '60': 60 is out of range 0...59"),
        ("* * * *", "has 4 fields"),
        ("*/0 * * * *", "step '0' is not a whole number above 0"),
        ("5-1 * * * *", "range 5-1 runs backwards"),
        ("0 0 * FOO *", "month field 'FOO': 'FOO' is not a number (or a name: JAN…DEC)"),
        ("0 0 ,1 * *", "empty list item"),
        ("0 0 1/2/3 * *", "more than one '/'"),
    ])
    func invalidExpressionsSayWhichFieldAndWhy(expression: String, message: String) {
        #expect {
            try CronExpression(expression)
        } throws: { error in
            guard let error = error as? ScheduleError, error.kind == .invalidCron else { return false }
            return error.description.contains(message)
        }
    }

    @Test func hostileTextInAnExpressionIsEscapedInTheError() {
        #expect {
            try CronExpression("\u{1b}[31m * * * *")
        } throws: { error in
            "\(error)".contains("\\x1b") && !"\(error)".contains("\u{1b}")
        }
    }
}

@Suite("Schedule timings")
struct ScheduleTimingTests {
    @Test func intervalTicksAreEpochAlignedWithAnOffset() throws {
        let minute = try ScheduleTiming.every(.seconds(60))
        #expect(minute.next(after: 1_796_119_650_000) == 1_796_119_680_000)
        #expect(minute.next(after: 1_796_119_680_000) == 1_796_119_740_000)
        let offset = try ScheduleTiming.every(.seconds(60), offset: .seconds(15))
        #expect(offset.next(after: 1_796_119_650_000) == 1_796_119_695_000)   // :30 → :15 of the next minute
        #expect(offset.description == "every 1m +15s")
    }

    @Test func intervalsUnderASecondAreRefused() {
        #expect(throws: ScheduleError.self) { try ScheduleTiming.every(.milliseconds(999)) }
    }

    @Test func unknownTimeZoneIsRefused() {
        #expect { try ScheduleTiming.cron("0 3 * * *", timeZone: "Mars/Olympus") } throws: { "\($0)".contains("unknown time zone 'Mars/Olympus'") }
    }

    @Test func theWrittenFormParsesBack() throws {
        for text in ["every 30s", "every 5m", "every 2h", "cron 0 3 * * * Europe/Paris", "cron */10 * * * * * UTC", "cron @daily UTC"] {
            #expect(try ScheduleTiming(parsing: text).description == text, "\(text) → \((try? ScheduleTiming(parsing: text).description) ?? "error")")
        }
        // Six words after `cron` whose last is not a time zone: six fields, seconds first.
        #expect(try ScheduleTiming(parsing: "cron 0 0 3 * * MON").description == "cron 0 0 3 * * MON UTC")
        #expect(try ScheduleTiming(parsing: "every 1500ms").description == "every 1500ms")
        // A last word meant as a zone, that names none, is reported as a zone.
        #expect { try ScheduleTiming(parsing: "cron 0 3 * * * Mars/Olympus") } throws: { "\($0)".contains("unknown time zone 'Mars/Olympus'") }
        #expect { try ScheduleTiming(parsing: "cron @daily Europe/Pariss") } throws: { "\($0)".contains("unknown time zone 'Europe/Pariss'") }
        for bad in ["every", "every 10", "every 0s", "hourly", "cron", "every -5s"] {
            #expect(throws: ScheduleError.self, "\(bad)") { try ScheduleTiming(parsing: bad) }
        }
    }

    @Test func registryRefusesDuplicateNamesAndBadQueues() throws {
        var tasks = TaskRegistry()
        try tasks.schedule("nightly", .every(.seconds(60)), task: "report")
        #expect { try tasks.schedule("nightly", .every(.seconds(30)), task: "other") } throws: { ($0 as? ScheduleError)?.kind == .duplicateSchedule }
        #expect(throws: ScheduleError.self) { try tasks.schedule("bad queue", .every(.seconds(60)), task: "t", queue: "a b") }
        #expect(throws: ScheduleError.self) { try tasks.schedule("line\nbreak", .every(.seconds(60)), task: "t") }
        #expect(tasks.schedules.map(\.name) == ["nightly"])
    }
}

@Suite("Tick planning")
struct TickPlanTests {
    /// A whole second, so interval ticks land on it.
    static let t: Int64 = 1_796_119_650_000

    static func job(_ timing: ScheduleTiming, missed: MissedTicks = .catchUp(upTo: 1), lateness: Duration = .seconds(60)) throws -> PeriodicJob {
        try PeriodicJob(name: "s", timing: timing, task: "t", missed: missed, lateness: lateness)
    }

    @Test func onTimeTicksSinceTheLastAreEnqueued() throws {
        let plan = TickPlan.plan(try Self.job(.every(.seconds(1))), last: Self.t, now: Self.t + 3_500)
        #expect(plan.enqueue == [Self.t + 1000, Self.t + 2000, Self.t + 3000])
        #expect(plan.advanceTo == Self.t + 3000)
        #expect(plan.wakeAt == Self.t + 4000)
    }

    @Test func nothingDueMeansNothingEnqueuedAndNoAdvance() throws {
        let plan = TickPlan.plan(try Self.job(.every(.seconds(1))), last: Self.t + 3000, now: Self.t + 3_500)
        #expect(plan.enqueue.isEmpty)
        #expect(plan.advanceTo == nil)
        #expect(plan.wakeAt == Self.t + 4000)
    }

    @Test func catchUpEnqueuesTheMostRecentMissedTicksThenTheOnTimeOnes() throws {
        let plan = TickPlan.plan(try Self.job(.every(.seconds(1)), missed: .catchUp(upTo: 3)), last: Self.t, now: Self.t + 1_000_000)
        let cutoff = Self.t + 940_000
        #expect(Array(plan.enqueue.prefix(3)) == [cutoff - 2000, cutoff - 1000, cutoff])
        #expect(Array(plan.enqueue.dropFirst(3)) == stride(from: cutoff + 1000, through: Self.t + 1_000_000, by: 1000).map { $0 })
        #expect(plan.advanceTo == Self.t + 1_000_000)
    }

    @Test func skipDropsMissedTicksButStillAdvancesPastThem() throws {
        let plan = TickPlan.plan(try Self.job(.every(.seconds(1)), missed: .skip, lateness: .zero), last: Self.t, now: Self.t + 100_500)
        #expect(plan.enqueue.isEmpty)
        #expect(plan.advanceTo == Self.t + 100_000)
        #expect(plan.wakeAt == Self.t + 101_000)
    }

    @Test func anHourlyCronMissedForWeeksCatchesUpOnlyTheLatestTick() throws {
        let hourly = try ScheduleTiming.cron("0 * * * *")
        let now = Self.t + 20 * 86_400_000
        let plan = TickPlan.plan(try Self.job(hourly), last: Self.t, now: now)
        let latest = try #require(hourly.next(after: now - 3_600_000))
        #expect(plan.enqueue == [latest])
        #expect(plan.advanceTo == latest)
    }

    @Test func ticksBeyondTheHorizonAreNeverLookedAt() throws {
        let plan = TickPlan.plan(try Self.job(.every(.seconds(3600)), missed: .catchUp(upTo: 100_000)), last: 0, now: Self.t)
        // Hourly over 31 days: 744 ticks, however many more the policy would take.
        #expect(plan.enqueue.count == 31 * 24)
        #expect(plan.enqueue.allSatisfy { $0 > Self.t - TickPlan.horizon })
    }

    @Test func aLongBacklogIsCutIntoPassesThatEachAdvance() throws {
        let job = try Self.job(.every(.seconds(1)), missed: .skip, lateness: .seconds(86_400))
        var last = Self.t
        let now = Self.t + 2_500_000
        var enqueued: [Int64] = []
        for _ in 0..<10 {
            let plan = TickPlan.plan(job, last: last, now: now)
            #expect(plan.enqueue.count <= TickPlan.maxPerPass)
            enqueued += plan.enqueue
            guard let advance = plan.advanceTo else { break }
            last = advance
        }
        #expect(enqueued == stride(from: Self.t + 1000, through: now, by: 1000).map { $0 })
    }
}

@Suite("Schedulers in memory")
struct InMemorySchedulerTests {
    /// What the scheduled jobs saw.
    final class Runs: Sendable {
        let seen = Mutex<[(tick: Int64, enqueued: Int64, schedule: String?)]>([])
        var ticks: [Int64] { seen.withLock { $0.map(\.tick) } }
    }

    static func registry(_ runs: Runs, missed: MissedTicks = .catchUp(upTo: 1), lateness: Duration = .seconds(60)) throws -> TaskRegistry {
        var tasks = TaskRegistry()
        tasks.register("tick.record") { _, context in
            let tick = context.scheduledAt.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } ?? -1
            let enqueued = context.enqueuedAt.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } ?? -1
            runs.seen.withLock { $0.append((tick, enqueued, context.schedule)) }
        }
        try tasks.schedule("every-second", .every(.seconds(1)), task: "tick.record", missed: missed, lateness: lateness)
        return tasks
    }

    @Test func threeSchedulersEnqueueEachTickOnce() async throws {
        let queues = InMemoryQueues()
        let runs = Runs()
        let registry = try Self.registry(runs)
        let workers = (0..<3).map { _ in EngineRun(Worker(source: queues.makeSource(), configuration: Engine.configuration(), registry: registry, logger: Engine.quiet)) }
        try await Engine.eventually("five ticks run") { Set(runs.ticks).count >= 5 }
        for run in workers { try await run.stop() }

        let ticks = runs.ticks.sorted()
        #expect(Set(ticks).count == ticks.count, "a tick ran twice: \(ticks)")
        #expect(ticks.allSatisfy { $0 % 1000 == 0 })
        #expect(zip(ticks, ticks.dropFirst()).allSatisfy { $1 - $0 == 1000 }, "a tick was skipped: \(ticks)")
        #expect(runs.seen.withLock { $0.allSatisfy { $0.schedule == "every-second" } })
        #expect(try #require(queues.lastTick(of: "every-second")) >= ticks.last!)
    }

    @Test(arguments: [MissedTicks.catchUp(upTo: 2), .skip])
    func ticksMissedWhileNoWorkerRanFollowThePolicy(missed: MissedTicks) async throws {
        let queues = InMemoryQueues()
        let source = queues.makeSource()
        // The fleet last enqueued a tick 100 s ago, then stopped.
        let seed = (epochMilliseconds() / 1000 - 100) * 1000
        _ = try await source.claimTicks(TickClaim(schedule: "every-second", queue: "default", initialize: seed))
        let runs = Runs()
        let lateness: Duration = .seconds(30)
        let run = EngineRun(Worker(source: source, configuration: Engine.configuration(), registry: try Self.registry(runs, missed: missed, lateness: lateness), logger: Engine.quiet))
        try await Engine.eventually("the first pass's jobs and one more tick run") { runs.ticks.count >= 32 }
        try await run.stop()

        let seen = runs.seen.withLock { $0 }
        // A tick enqueued the lateness or more after its time was a missed one, caught up.
        let caughtUp = seen.filter { $0.enqueued - $0.tick >= lateness.wholeMilliseconds }
        let expected = if case .catchUp(let n) = missed { n } else { 0 }
        #expect(caughtUp.count == expected, "\(caughtUp)")
        #expect(seen.allSatisfy { $0.tick > seed })
        let ticks = seen.map(\.tick).sorted()
        #expect(Set(ticks).count == ticks.count)
        #expect(zip(ticks, ticks.dropFirst()).allSatisfy { $1 - $0 == 1000 }, "the run is not contiguous: \(ticks)")
    }
}
