import Airlock
import Logging

/// Takes jobs from one lane into the worker's buffer, a reservation at a time.
///
/// It reserves free capacity first (``WorkBuffer``), then asks the source for at most that many
/// jobs, so the worker never holds more than `concurrency + prefetch`. When the lane is empty it
/// waits in the source (blocking, never polling). A lane that ``claimsWhileIdle`` waits *taking*
/// the next job, with one slot reserved for it: the job starts without another round trip. Any
/// other lane only waits for work and then competes for a slot, so an earlier queue keeps its
/// priority. A queue at its fleet-wide limit (`.limited`) is waited on in the source too: the
/// fetcher holds no reservation meanwhile.
struct Fetcher: Sendable {
    let laneIndex: Int
    let lane: FetchLane
    /// Whether this lane, while empty, waits taking the next job and holds one reserved slot for
    /// it (see ``claimsWhileIdle(lane:ranks:prefetch:)``).
    let claimsWhileIdle: Bool
    let source: any JobSource
    let configuration: WorkerConfiguration
    let buffer: WorkBuffer
    let health: SourceHealth
    let reconciler: Reconciler

    func run() async {
        let component = "fetch \(lane)"
        var failures = 0
        var uncertain = false
        var reserved = await buffer.reserve(laneIndex: laneIndex, maximum: configuration.fetchBatch)
        while reserved > 0 {
            do {
                if uncertain {
                    // The last request failed after it may have run: take back what it may have moved.
                    try await reconciler.reconcile(lane)
                    uncertain = false
                }
                let taken = try await source.take(reserved, from: lane)
                health.recovered(component)
                failures = 0
                switch taken {
                case .paused:
                    // Hold nothing, look again shortly.
                    buffer.deliver([], laneIndex: laneIndex, reserved: reserved)
                    reserved = 0
                    try? await Task.sleep(for: .milliseconds(250))
                case .limited(let retryAfter):
                    // The queue's fleet-wide limit is reached: give the reservation back (another
                    // lane may use the slots) and wait in the source — until the next rate token,
                    // or blocking until some worker frees a lease — then take again.
                    buffer.deliver([], laneIndex: laneIndex, reserved: reserved)
                    reserved = 0
                    try await source.waitForLimit(on: lane, retryAfter: retryAfter, timeout: configuration.blockTimeout)
                case .jobs(let jobs) where !jobs.isEmpty:
                    reserved = await buffer.deliverAndReserve(wrap(jobs), laneIndex: laneIndex, reserved: reserved, maximum: configuration.fetchBatch)
                    continue
                case .jobs where claimsWhileIdle:
                    buffer.deliver([], laneIndex: laneIndex, reserved: reserved - 1)
                    reserved = 1
                    let jobs = try await source.waitForJobs(on: lane, timeout: configuration.blockTimeout, claimOne: true)
                    reserved = await buffer.deliverAndReserve(wrap(jobs), laneIndex: laneIndex, reserved: 1, maximum: configuration.fetchBatch)
                    continue
                case .jobs:
                    buffer.deliver([], laneIndex: laneIndex, reserved: reserved)
                    reserved = 0
                    _ = try await source.waitForJobs(on: lane, timeout: configuration.blockTimeout, claimOne: false)
                }
            } catch {
                buffer.deliver([], laneIndex: laneIndex, reserved: reserved)
                reserved = 0
                if health.mayHaveBeenApplied(error) { uncertain = true }
                if health.failed(component, error) { return }
                failures += 1
                await health.backoff(attempt: failures)
            }
            reserved = await buffer.reserve(laneIndex: laneIndex, maximum: configuration.fetchBatch)
        }
    }

    /// Which lane may wait taking its next job: the worker's only lane; or the first of several
    /// when no other lane shares its rank and `prefetch` is at least 1. The first queue is served
    /// first anyway, so the slot it holds while idle is one a later queue would have lost to it;
    /// and it comes out of the prefetch, so later queues can still run `concurrency` jobs at once.
    /// Every other lane holds nothing while it waits (a later queue must not keep a slot from an
    /// earlier one), and pays a round trip to take the job that woke it.
    static func claimsWhileIdle(lane index: Int, ranks: [Int], prefetch: Int) -> Bool {
        if ranks.count == 1 { return true }
        return index == 0 && prefetch >= 1 && ranks.dropFirst().allSatisfy { $0 != ranks[0] }
    }

    private func wrap(_ jobs: [FetchedJob]) -> [Job] {
        jobs.map { Job(laneIndex: laneIndex, fetched: $0) }
    }
}
