import Airlock
import Logging

/// Puts back what the source says this worker holds but the worker does not know about.
///
/// A fetch whose reply was lost (the back end restarted after applying it, a timeout) leaves jobs
/// held by this worker that no task slot will ever run, and no reaper takes them while this worker
/// lives. After such a failure the fetcher compares what the source holds with the jobs the worker
/// holds or has yet to settle, and returns the rest to the front of their queue. A job fetched
/// concurrently by another lane of the same queue (Celery's priority sub-keys) may be returned
/// too, and then run twice: at least once is kept, exactly once is not promised.
///
/// A request can also run *late* — during a partition the kernel retransmits it after the client
/// gave up — after the reconciliation. The periodic ``sweep(_:suspects:)`` catches what that
/// strands: a job held but unknown to the worker at two sweeps an interval apart.
struct Reconciler: Sendable {
    let source: any JobSource
    let buffer: WorkBuffer
    let settler: Settler
    let logger: Logger

    /// Returns the jobs of `lane`'s queue that this worker does not hold (all of them with
    /// `everything`, at shutdown, when it holds nothing any more); how many.
    @discardableResult
    func reconcile(_ lane: FetchLane, everything: Bool = false) async throws -> Int {
        let legitimate = everything ? [] : buffer.heldJobs(queue: lane.queue) + settler.unsettledJobs(queue: lane.queue)
        let returned = try await source.returnJobs(of: lane, keeping: legitimate)
        if returned > 0 {
            logger.warning("returned in-flight jobs this worker did not hold (a fetch reply was lost)",
                           metadata: ["queue": "\(SafeText.escape(lane.queue))", "jobs": "\(returned)"])
        }
        return returned
    }

    /// Returns the jobs of `queue` held by this worker but not known to it, now and at the
    /// previous sweep (`suspects`, updated for the next); how many went back.
    ///
    /// A job legitimately taken reaches the buffer within one request timeout of the move, so a job
    /// seen unheld at two sweeps at least ``WorkerConfiguration/orphanSweepInterval`` apart is
    /// stranded, never in transit.
    func sweep(_ queue: String, suspects: inout [[UInt8]: Int]) async throws -> Int {
        // What the source holds first, then what the worker holds: a job delivered in between counts as held.
        var unheld: [[UInt8]: Int] = [:]
        for item in try await source.heldJobs(of: queue) { unheld[item, default: 0] += 1 }
        for item in buffer.heldJobs(queue: queue) + settler.unsettledJobs(queue: queue) {
            if let count = unheld[item] { unheld[item] = count > 1 ? count - 1 : nil }
        }
        var stranded: [[UInt8]] = []
        for (item, count) in unheld {
            stranded += Array(repeating: item, count: min(count, suspects[item] ?? 0))
        }
        suspects = unheld
        guard !stranded.isEmpty else { return 0 }
        let returned = try await source.returnJobs(stranded, of: queue)
        for item in stranded { suspects[item] = nil }
        if returned > 0 {
            logger.warning("returned stranded in-flight jobs (a fetch ran after its connection had failed)",
                           metadata: ["queue": "\(SafeText.escape(queue))", "jobs": "\(returned)"])
        }
        return returned
    }

    /// Sweeps every queue each `interval` until cancelled.
    func sweepUntilCancelled(_ queues: [String], every interval: Duration, health: SourceHealth) async {
        var suspects = [String: [[UInt8]: Int]]()
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            for queue in queues where !Task.isCancelled {
                do {
                    _ = try await sweep(queue, suspects: &suspects[queue, default: [:]])
                    health.recovered("sweep")
                } catch {
                    suspects[queue] = nil
                    if health.failed("sweep", error) { return }
                }
            }
        }
    }
}
