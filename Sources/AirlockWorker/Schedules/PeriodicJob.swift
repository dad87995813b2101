public import Airlock
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A job enqueued at every tick of a schedule, declared where tasks are registered
/// (``TaskRegistry/schedule(_:_:task:args:kwargs:queue:missed:lateness:)``).
///
/// Every worker that has the schedule runs a scheduler, and each tick is enqueued exactly once
/// across the fleet: a tick is claimed and its job pushed in one atomic step of the source, which
/// also records the latest tick enqueued, so a second worker — or the same one after a restart —
/// finds the tick taken. The job carries the tick's time (``TaskContext/scheduledAt``) and the
/// schedule's name (``TaskContext/schedule``). See `docs/SCHEDULES.md`.
public struct PeriodicJob: Sendable, Hashable {
    /// The schedule's name, unique in a namespace (it names the schedule's record in the source).
    public let name: String
    /// When it fires.
    public let timing: ScheduleTiming
    /// The task name each tick's job runs.
    public let task: String
    /// Positional arguments of each job.
    public let args: [JSONValue]
    /// Keyword arguments of each job.
    public let kwargs: [String: JSONValue]
    /// The queue each job goes to (it need not be one this worker consumes).
    public let queue: String
    /// What happens to ticks no worker enqueued in time (the fleet was down).
    public let missed: MissedTicks
    /// How late a tick may still be enqueued as an ordinary one; an older tick counts as missed.
    public let lateness: Duration

    /// Creates a periodic job; ``TaskRegistry/schedule(_:_:task:args:kwargs:queue:missed:lateness:)`` is the usual way.
    /// - Throws: ``ScheduleError`` for a name or queue outside the rules, or a negative lateness.
    public init(
        name: String, timing: ScheduleTiming, task: String, args: [JSONValue] = [], kwargs: [String: JSONValue] = [:], queue: String = "default",
        missed: MissedTicks = .catchUp(upTo: 1), lateness: Duration = .seconds(60)
    ) throws(ScheduleError) {
        if name.isEmpty || name.utf8.count > 200 || !SafeText.isSafe(name) {
            throw ScheduleError(.invalidSchedule, "schedule name \(CronExpression.quote(name)) must be 1 to 200 bytes of printable text")
        }
        if let problem = QueueName.problem(with: queue) { throw ScheduleError(.invalidSchedule, "schedule \(CronExpression.quote(name)): \(problem)") }
        if task.isEmpty { throw ScheduleError(.invalidSchedule, "schedule \(CronExpression.quote(name)) names no task") }
        if lateness < .zero { throw ScheduleError(.invalidSchedule, "schedule \(CronExpression.quote(name)): lateness must not be negative") }
        if case .catchUp(let n) = missed, n < 0 { throw ScheduleError(.invalidSchedule, "schedule \(CronExpression.quote(name)): catchUp(upTo:) must not be negative") }
        self.name = name
        self.timing = timing
        self.task = task
        self.args = args
        self.kwargs = kwargs
        self.queue = queue
        self.missed = missed
        self.lateness = lateness
    }

    /// The envelope of the job for the tick at `tick` (ms since the epoch), enqueued at `now`.
    package func envelope(tick: Int64, now: Int64, origin: String) -> Envelope {
        Envelope(
            id: UUID().jobID, task: task, args: args, kwargs: kwargs, queue: queue, enqueuedAt: now, origin: origin,
            extra: [Self.scheduleField: .string(name), Self.scheduledAtField: .int(Int(tick))])
    }

    /// The schedule as published for operators (`airlock-workerd schedules`): name, task, queue,
    /// timing, missed-tick policy, lateness.
    package var record: [String: JSONValue] {
        var fields: [String: JSONValue] = [
            "name": .string(name), "task": .string(task), "queue": .string(queue), "timing": .object(timing.record),
            "lateness_ms": .int(Int(lateness.wholeMilliseconds)),
        ]
        switch missed {
        case .skip: fields["missed"] = "skip"
        case .catchUp(let n): fields["missed"] = .string("catch_up"); fields["catch_up"] = .int(n)
        }
        return fields
    }

    /// The envelope field naming the schedule that enqueued a job.
    public static let scheduleField = "schedule"
    /// The envelope field holding the tick a scheduled job is for (ms since the epoch).
    public static let scheduledAtField = "scheduled_at"
}

/// When a ``PeriodicJob`` fires. Ticks are the same instants on every worker, so the fleet agrees
/// on which tick is which.
public struct ScheduleTiming: Sendable, Hashable, CustomStringConvertible {
    enum Rule: Hashable {
        case cron(CronExpression, ScheduleTimeZone)
        case every(milliseconds: Int64, offset: Int64)
    }
    let rule: Rule
    private init(rule: Rule) { self.rule = rule }

    /// At the instants a cron expression matches in `timeZone` (default UTC).
    /// - Throws: ``ScheduleError`` for an expression that does not parse or an unknown time zone.
    public static func cron(_ expression: String, timeZone: String = "UTC") throws(ScheduleError) -> ScheduleTiming {
        let expression = try CronExpression(expression)
        return ScheduleTiming(rule: .cron(expression, try ScheduleTimeZone(timeZone)))
    }

    /// Every `interval` (at least one second, whole milliseconds), at the multiples of `interval`
    /// since the Unix epoch plus `offset`: `.every(.seconds(60))` fires at each minute's start.
    /// - Throws: ``ScheduleError`` for an interval under one second.
    public static func every(_ interval: Duration, offset: Duration = .zero) throws(ScheduleError) -> ScheduleTiming {
        let ms = interval.wholeMilliseconds
        guard ms >= 1000 else { throw ScheduleError(.invalidSchedule, "an interval schedule needs at least one second, not \(interval)") }
        let offsetMS = offset.wholeMilliseconds
        return ScheduleTiming(rule: .every(milliseconds: ms, offset: ((offsetMS % ms) + ms) % ms))
    }

    /// Reads the form ``description`` writes, as a command line or a configuration file gives it:
    /// `every 30s` (units `ms`, `s`, `m`, `h`, `d`), `cron 0 3 * * *`, `cron */10 * * * * * UTC`,
    /// `cron 0 3 * * * Europe/Paris` (a last word that names a time zone is one).
    /// - Throws: ``ScheduleError`` saying what does not parse.
    public init(parsing text: String) throws(ScheduleError) {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        switch words.first?.lowercased() {
        case "every"?:
            guard words.count == 2, let interval = Self.duration(words[1]) else {
                throw ScheduleError(.invalidSchedule, "\(CronExpression.quote(text)): write every <number><ms|s|m|h|d>, such as every 30s")
            }
            self = try .every(interval)
        case "cron"?:
            var fields = Array(words.dropFirst())
            var zone = ScheduleTimeZone.utc
            if let last = fields.last, fields.count > 1, !last.hasPrefix("@") {
                do {
                    zone = try ScheduleTimeZone(last)
                    fields.removeLast()
                } catch {
                    // Not a zone, so a cron field — unless the words only parse without it: then
                    // it was meant as a zone, and the zone's error is the one that helps.
                    let withoutIt = fields.dropLast().joined(separator: " ")
                    if (try? CronExpression(fields.joined(separator: " "))) == nil, (try? CronExpression(withoutIt)) != nil { throw error }
                }
            }
            // The zone is read once, above: its file is not opened again here.
            self = ScheduleTiming(rule: .cron(try CronExpression(fields.joined(separator: " ")), zone))
        default:
            throw ScheduleError(.invalidSchedule, "\(CronExpression.quote(text)) is neither 'every <interval>' nor 'cron <expression> [time zone]'")
        }
    }

    private static func duration(_ text: String) -> Duration? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, ms) in units where text.hasSuffix(suffix) {
            guard let n = Int64(text.dropLast(suffix.count)), n > 0, !n.multipliedReportingOverflow(by: ms).overflow else { return nil }
            return .milliseconds(n * ms)
        }
        return nil
    }

    /// The timing as a JSON object (`{"cron": …, "time_zone": …}` or `{"every_ms": …, "offset_ms": …}`),
    /// as schedules are published for operators.
    package var record: [String: JSONValue] {
        switch rule {
        case .cron(let expression, let zone): ["cron": .string(expression.description), "time_zone": .string(zone.identifier)]
        case .every(let ms, let offset): ["every_ms": .int(Int(ms)), "offset_ms": .int(Int(offset))]
        }
    }

    /// The timing a ``record`` describes; `nil` when it does not describe one.
    package init?(record: [String: JSONValue]) {
        if let cron = record["cron"]?.stringValue {
            guard let timing = try? ScheduleTiming.cron(cron, timeZone: record["time_zone"]?.stringValue ?? "UTC") else { return nil }
            self = timing
        } else if let ms = record["every_ms"]?.intValue {
            guard let timing = try? ScheduleTiming.every(.milliseconds(ms), offset: .milliseconds(record["offset_ms"]?.intValue ?? 0)) else { return nil }
            self = timing
        } else {
            return nil
        }
    }

    /// `cron 0 3 * * * Europe/Paris` or `every 30s`.
    public var description: String {
        switch rule {
        case .cron(let expression, let zone): "cron \(expression) \(zone)"
        case .every(let ms, let offset):
            "every \(Self.format(ms))" + (offset == 0 ? "" : " +\(Self.format(offset))")
        }
    }

    /// The first tick strictly after `instant` (ms since the epoch), if any.
    public func next(after instant: Int64) -> Int64? {
        switch rule {
        case .cron(let expression, let zone):
            return expression.next(after: Date(timeIntervalSince1970: Double(instant) / 1000), in: zone).map { Int64($0.timeIntervalSince1970) * 1000 }
        case .every(let ms, let offset):
            return (instant - offset).flooredDiv(ms) * ms + ms + offset
        }
    }

    private static func format(_ ms: Int64) -> String {
        if ms % 3_600_000 == 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }
}

/// What a scheduler does with ticks that passed, beyond the schedule's lateness, with no worker
/// enqueueing them (the fleet was stopped or could not reach its source).
public enum MissedTicks: Sendable, Hashable, CustomStringConvertible {
    /// Drop them; the schedule goes on at its next tick (what cron does).
    case skip
    /// Enqueue the most recent `n` of them, each with its own scheduled time, and drop older
    /// ones. `.catchUp(upTo: 1)` — the default — runs a missed nightly job once, like Celery beat.
    /// Ticks more than 31 days old are never caught up.
    case catchUp(upTo: Int)

    /// `skip` or `catch up 3`.
    public var description: String {
        switch self {
        case .skip: "skip"
        case .catchUp(let n): "catch up \(n)"
        }
    }
}

/// A schedule that cannot work; the description says what to change.
public struct ScheduleError: AirlockError {
    /// The kind of problem, stable for code that branches on it.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Code: String, Sendable, Hashable { case invalidCron, invalidSchedule, duplicateSchedule, unsupported }
        fileprivate let code: Code
        /// A cron expression or time zone that does not parse.
        public static let invalidCron = Kind(code: .invalidCron)
        /// A name, queue, task, interval or catch-up setting outside the rules.
        public static let invalidSchedule = Kind(code: .invalidSchedule)
        /// Two schedules with one name in one registry.
        public static let duplicateSchedule = Kind(code: .duplicateSchedule)
        /// The job source cannot run schedules (for Redis: a Celery-protocol worker).
        public static let unsupported = Kind(code: .unsupported)
        /// The kind's name.
        public var description: String { code.rawValue }
    }

    /// The kind of problem.
    public let kind: Kind
    /// What is wrong, in one line.
    public let description: String

    init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }

    /// A source whose queues hold another protocol's messages.
    package static let unsupportedProtocol = ScheduleError(
        .unsupported, "periodic jobs are written as Airlock envelopes; a worker reading the Celery protocol cannot run them")
}
