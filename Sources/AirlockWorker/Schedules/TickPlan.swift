/// What one scheduler pass does for one ``PeriodicJob``: which ticks to enqueue and which tick to
/// record as the last one. A pure function of the schedule, the last recorded tick and the time,
/// so every worker of the fleet computes the same plan, and the source's atomic claim keeps
/// whichever arrives first.
package struct TickPlan: Sendable, Equatable {
    /// Ticks (ms since the epoch) to enqueue, oldest first.
    package var enqueue: [Int64] = []
    /// The tick to record as the last one considered (enqueued or dropped), so no pass looks at
    /// older ones again; `nil` when no tick passed since the last one.
    package var advanceTo: Int64?
    /// When the scheduler should look again: the next tick, or at once when a pass was cut short.
    package var wakeAt: Int64?

    /// Ticks older than this (ms) are never caught up: 31 days.
    package static let horizon: Int64 = 31 * 24 * 3600 * 1000
    /// Most ticks one pass enqueues for one schedule; the rest follow in the next pass.
    package static let maxPerPass = 1000

    /// The plan for `job` whose last recorded tick is `last`, at `now`.
    ///
    /// A tick no later than `lateness` ago is enqueued whatever happened (it is late, not missed);
    /// older ones are missed and follow ``PeriodicJob/missed``.
    package static func plan(_ job: PeriodicJob, last: Int64, now: Int64) -> TickPlan {
        let timing = job.timing
        let floor = max(last, now.subtractingSaturated(horizon))
        let cutoff = max(now.subtractingSaturated(job.lateness.wholeMilliseconds), floor)
        var plan = TickPlan()

        // Missed ticks, in (floor, cutoff]: only the most recent few matter (at least one, to know
        // how far to advance). Search windows growing backwards from the cutoff, so an hourly
        // schedule missed for a month costs a few steps, not one per tick.
        let wanted: Int
        switch job.missed {
        case .skip: wanted = 0
        case .catchUp(let n): wanted = min(n, maxPerPass)
        }
        var missed: [Int64] = []
        for window: Int64 in [3_600_000, 86_400_000, horizon] {
            let low = max(floor, cutoff.subtractingSaturated(window))
            missed = recent(max(wanted, 1), of: timing, in: low, cutoff)
            if missed.count >= max(wanted, 1) || low == floor { break }
        }
        plan.enqueue = Array(missed.suffix(wanted))

        // On-time ticks, in (cutoff, now].
        var tick = timing.next(after: cutoff)
        while let t = tick, t <= now {
            if plan.enqueue.count == maxPerPass {
                plan.advanceTo = plan.enqueue.last
                plan.wakeAt = now
                return plan
            }
            plan.enqueue.append(t)
            tick = timing.next(after: t)
        }
        plan.advanceTo = plan.enqueue.last.map { max($0, missed.last ?? $0) } ?? missed.last
        plan.wakeAt = tick
        return plan
    }

    /// The last `count` ticks in (`low`, `high`], oldest first.
    private static func recent(_ count: Int, of timing: ScheduleTiming, in low: Int64, _ high: Int64) -> [Int64] {
        guard low < high else { return [] }
        if case .every(let ms, let offset) = timing.rule {
            // Evenly spaced: count back from the last tick at or before `high`.
            var ticks: [Int64] = []
            var t = (high - offset).flooredDiv(ms) * ms + offset
            while t > low && ticks.count < count {
                ticks.append(t)
                t -= ms
            }
            return ticks.reversed()
        }
        var ring = [Int64](repeating: 0, count: count)
        var seen = 0
        var tick = timing.next(after: low)
        while let t = tick, t <= high {
            ring[seen % count] = t
            seen += 1
            tick = timing.next(after: t)
        }
        if seen <= count { return Array(ring.prefix(seen)) }
        let start = seen % count
        return Array(ring[start...] + ring[..<start])
    }
}
