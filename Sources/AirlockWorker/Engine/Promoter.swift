import Airlock
import Logging

/// Moves a queue's delayed jobs to its ready jobs when they come due.
///
/// It sleeps until the next due time rather than polling on a beat; a producer that adds an
/// earlier job signals it (``JobSource/waitForDelayedChange(on:timeout:)``, which a listener waits
/// on) and the promoter wakes early. Promotion is atomic in the source with a bounded batch, so any
/// number of workers can promote the same queue without moving a job twice.
package struct Promoter: Sendable {
    let queue: String
    let source: any JobSource
    let health: SourceHealth
    /// The longest the promoter sleeps without news (a missed signal costs at most this).
    package static let idleWait: Duration = .seconds(5)

    /// How long to sleep before promoting again: until the next due time (a number from the
    /// back end, so anything — saturated, never trapping), at most ``idleWait``.
    package static func wait(untilDue next: Int64?, now: Int64) -> Duration {
        guard let next else { return idleWait }
        return min(.milliseconds(max(0, next.subtractingSaturated(now))), idleWait)
    }

    func run() async {
        let doorbell = Doorbell()
        await withDiscardingTaskGroup { group in
            group.addTask { await listen(doorbell) }
            group.addTask { await promote(doorbell) }
            // Both loops end only when the worker's task group is cancelled.
        }
    }

    private func promote(_ doorbell: Doorbell) async {
        var failures = 0
        while !Task.isCancelled {
            do {
                let promotion = try await source.promoteDueJobs(of: queue)
                health.recovered("promote \(queue)")
                failures = 0
                if promotion.more { continue }
                await doorbell.wait(until: .now + Self.wait(untilDue: promotion.nextDueAt, now: epochMilliseconds()))
            } catch {
                if health.failed("promote \(queue)", error) { return }
                failures += 1
                await health.backoff(attempt: failures)
            }
        }
    }

    /// Waits for producers' signals and rings when one came.
    private func listen(_ doorbell: Doorbell) async {
        var failures = 0
        while !Task.isCancelled {
            do {
                if try await source.waitForDelayedChange(on: queue, timeout: .milliseconds(500)) { doorbell.ring() }
                health.recovered("wake \(queue)")
                failures = 0
            } catch {
                // Without the listener the promoter still wakes by itself at the next due time
                // (at most idleWait later), so a failure here is logged and retried, never fatal.
                if health.failed("wake \(queue)", error) { return }
                failures += 1
                await health.backoff(attempt: failures)
            }
        }
    }
}
