import Airlock
import AirlockRedisClient
import AirlockWorker

/// A periodic job as the workers that declare it published it (`<ns>:schedules`), with its last
/// enqueued tick from its record in the queue's slot.
public struct ScheduleStatus: Sendable, Hashable {
    /// The schedule's name.
    public var name: String
    /// The task each tick's job runs.
    public var task: String
    /// The queue its jobs go to.
    public var queue: String
    /// `cron 0 3 * * * Europe/Paris`, `every 30s`; `nil` when the record is unreadable.
    public var timing: String?
    /// `skip` or `catch up N`.
    public var missed: String?
    /// The last tick considered (enqueued, or dropped as missed), ms since the epoch; `nil`
    /// before the first pass of any scheduler.
    public var lastTickMilliseconds: Int64?
    /// The next tick after the later of the last tick and now.
    public var nextTickMilliseconds: Int64?
    /// The worker that last published it.
    public var declaredBy: String?
    /// When a worker last published it (schedulers do every minute): an old value means no
    /// running worker declares this schedule any more.
    public var seenAtMilliseconds: Int64?
}

/// What `airlock-workerd schedules` shows.
public struct ScheduleReport: Sendable, Hashable {
    /// The namespace listed.
    public var namespace: String
    /// When the list was taken, ms since the epoch.
    public var sampledAtMilliseconds: Int64
    /// The schedules, by name.
    public var schedules: [ScheduleStatus]
}

extension RedisAdmin {
    /// Every published schedule with its last and next tick. Two round trips: the registry hash,
    /// then one pipeline of `GET` per schedule's tick record.
    public func schedules() async throws -> ScheduleReport {
        let entries = try await pipeline([RedisCommand("HGETALL", keys.schedules)])[0].fields()
        let now = epochMilliseconds()
        var listed: [(status: ScheduleStatus, timing: ScheduleTiming?)] = []
        for (name, text) in entries {
            let record = (try? JSONParser.parse(Array(text.utf8)))?.objectValue ?? [:]
            let timing = record["timing"]?.objectValue.flatMap(ScheduleTiming.init(record:))
            var missed = record["missed"]?.stringValue
            if missed == "catch_up" { missed = "catch up \(record["catch_up"]?.intValue ?? 1)" }
            listed.append((ScheduleStatus(
                name: name, task: record["task"]?.stringValue ?? "?", queue: record["queue"]?.stringValue ?? "?", timing: timing?.description,
                missed: missed, declaredBy: record["declared_by"]?.stringValue, seenAtMilliseconds: record["seen_at"]?.intValue.map(Int64.init)), timing))
        }
        listed.sort { $0.status.name < $1.status.name }
        // A record whose queue is not a valid name (written by hand) has no tick record to read.
        let readable = listed.indices.filter { QueueName.problem(with: listed[$0].status.queue) == nil }
        let ticks = readable.isEmpty ? [] : try await pipeline(readable.map {
            RedisCommand("GET", keys.scheduleTick(listed[$0].status.queue, schedule: listed[$0].status.name))
        })
        for (reply, index) in zip(ticks, readable) {
            let last = try reply.optionalBulk().flatMap { Int64(String(decoding: $0, as: UTF8.self)) }
            listed[index].status.lastTickMilliseconds = last
            listed[index].status.nextTickMilliseconds = listed[index].timing?.next(after: max(last ?? now, now))
        }
        return ScheduleReport(namespace: namespace, sampledAtMilliseconds: now, schedules: listed.map(\.status))
    }
}
