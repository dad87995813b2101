import Airlock
import Logging

/// Proves this worker is alive, and recovers the jobs of workers that are not.
///
/// The worker heartbeats every ``WorkerConfiguration/heartbeatInterval``; a heartbeat that learns
/// this worker was given up for dead meanwhile (it stalled past its TTL and a reaper returned its
/// jobs) makes it give up the jobs it holds but has not started. Every worker also runs the
/// reaper: each ``WorkerConfiguration/reaperInterval`` (± 20 %, so a fleet does not reap in
/// lockstep) it asks the source to return the jobs of workers whose heartbeat expired.
struct Liveness: Sendable {
    let source: any JobSource
    let configuration: WorkerConfiguration
    let metrics: WorkerMetrics
    let held: @Sendable () -> Int
    /// Called when a heartbeat learns that a reaper recovered this worker's jobs while it was stalled.
    let reaped: @Sendable () -> Void
    /// Called with the ids of held jobs an operator cancelled.
    let cancel: @Sendable ([String]) -> Void
    /// Called when a heartbeat learns that the source's queues changed (``HeartbeatResult/queuesChanged``).
    let queuesChanged: @Sendable () -> Void
    let health: SourceHealth
    let logger: Logger

    /// Beats until cancelled.
    func heartbeat() async {
        var failures = 0
        while !Task.isCancelled {
            do {
                switch try await source.heartbeat(held: held()) {
                case .alive: break
                case .reaped:
                    logger.error("this worker stalled past its heartbeat TTL and a reaper returned its jobs to their queues; dropping the unstarted jobs it still held instead of running them twice")
                    reaped()
                case .queuesChanged:
                    queuesChanged()
                }
                let cancelled = try await source.takeCancellations()
                if !cancelled.isEmpty { cancel(cancelled) }
                health.recovered("heartbeat")
                failures = 0
                try? await Task.sleep(for: configuration.heartbeatInterval)
            } catch {
                if health.failed("heartbeat", error) { return }
                failures += 1
                await health.backoff(attempt: failures)
            }
        }
    }

    /// Looks for dead workers every ``WorkerConfiguration/reaperInterval`` until cancelled.
    func reap() async {
        while !Task.isCancelled {
            do {
                try await reapOnce()
                health.recovered("reaper")
            } catch {
                if health.failed("reaper", error) { return }
            }
            let jitter = Double.random(in: 0.8...1.2)
            try? await Task.sleep(for: configuration.reaperInterval * jitter)
        }
    }

    /// One pass; returns how many jobs were recovered.
    @discardableResult
    func reapOnce() async throws -> Int {
        let recovered = try await source.recoverAbandonedJobs()
        metrics.recoveredJobs(recovered)
        if recovered > 0 { logger.warning("recovered jobs of dead workers", metadata: ["jobs": "\(recovered)"]) }
        return recovered
    }
}
