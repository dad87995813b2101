import Airlock
import Logging

/// Enqueues the jobs of a worker's ``PeriodicJob``s at their ticks.
///
/// Every worker with schedules runs one; they need no leader. Each pass plans every schedule
/// from its last recorded tick (``TickPlan``) and hands the plan to the source's atomic claim,
/// which enqueues only ticks no other worker enqueued and answers the recorded last tick. Between
/// passes it sleeps until the next tick of any schedule (at most ``idleWait``), so a fleet
/// enqueues each tick once, on time, whichever workers are alive.
package struct Scheduler: Sendable {
    let schedules: [PeriodicJob]
    let source: any JobSource
    let health: SourceHealth
    /// The worker id, written as each job's origin.
    let origin: String
    let logger: Logger
    /// The longest sleep between passes; schedules are published again this often.
    package static let idleWait: Duration = .seconds(60)

    /// One schedule's pass: plan from its last tick, claim; returns when its next tick comes.
    private func pass(_ job: PeriodicJob, last: inout [String: Int64]) async throws -> Int64? {
        let known: Int64
        if let cached = last[job.name] {
            known = cached
        } else {
            // First pass: learn the recorded last tick, or record now as the schedule's start.
            let now = epochMilliseconds()
            known = try await source.claimTicks(TickClaim(schedule: job.name, queue: job.queue, initialize: now)).last ?? now
        }
        last[job.name] = known
        let now = epochMilliseconds()
        let plan = TickPlan.plan(job, last: known, now: now)
        guard let advance = plan.advanceTo else { return plan.wakeAt }
        let jobs = plan.enqueue.map { (tick: $0, message: job.envelope(tick: $0, now: now, origin: origin).encoded()) }
        let result = try await source.claimTicks(TickClaim(schedule: job.name, queue: job.queue, jobs: jobs, advanceTo: advance))
        last[job.name] = result.last ?? advance
        if result.enqueued > 0 {
            logger.debug("enqueued scheduled jobs", metadata: [
                "schedule": "\(SafeText.escape(job.name))", "jobs": "\(result.enqueued)", "tick": "\(plan.enqueue.last ?? advance)",
            ])
        }
        let missed = plan.enqueue.count { $0 <= now.subtractingSaturated(job.lateness.wholeMilliseconds) }
        if missed > 0 && result.enqueued > 0 {
            logger.notice("enqueued missed ticks", metadata: ["schedule": "\(SafeText.escape(job.name))", "ticks": "\(missed)"])
        }
        return plan.wakeAt
    }

    func run() async {
        var last: [String: Int64] = [:]
        var failures = 0
        var published: Int64?
        while !Task.isCancelled {
            do {
                let start = epochMilliseconds()
                if published.map({ start - $0 >= Self.idleWait.wholeMilliseconds }) ?? true {
                    try await source.describeSchedules(schedules, worker: origin)
                    published = start
                }
                var wake = start + Self.idleWait.wholeMilliseconds
                for job in schedules {
                    do {
                        if let next = try await pass(job, last: &last) { wake = min(wake, next) }
                        health.recovered("schedule \(SafeText.escape(job.name))")
                    } catch {
                        // A schedule Redis refuses (its queue's ready key holds another type, say)
                        // is logged and retried at the next pass; the other schedules go on.
                        guard case .refused = source.classify(error) else { throw error }
                        health.failed("schedule \(SafeText.escape(job.name))", error)
                    }
                }
                health.recovered("scheduler")
                failures = 0
                let delay = wake - epochMilliseconds()
                if delay > 0 { try? await Task.sleep(for: .milliseconds(delay)) }
            } catch {
                if health.failed("scheduler", error) { return }
                failures += 1
                await health.backoff(attempt: failures)
            }
        }
    }
}
