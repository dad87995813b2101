import Airlock
package import Metrics
import Synchronization

/// One worker's swift-metrics instruments (``AirlockMetrics`` names them). Created once per run;
/// per-task instruments are made the first time a queue and task pair is seen, so only pairs that
/// occur become series.
package final class WorkerMetrics: Sendable {
    /// How a job that left a task slot ended, as the `outcome` label says it.
    enum Outcome: String, CaseIterable, Sendable {
        case succeeded, retried, dead, expired, postponed, cancelled, revoked

        init(_ outcome: Settlement.Outcome) {
            switch outcome {
            case .acknowledge: self = .succeeded
            case .retry: self = .retried
            case .dead: self = .dead
            case .expired: self = .expired
            case .postpone: self = .postponed
            // The only requeue a slot hands over: a task cancelled by a shutdown's deadline.
            case .requeue: self = .cancelled
            // Cancelled by an operator (`airlock-workerd cancel`), not retried.
            case .cancelled: self = .revoked
            }
        }
    }

    /// The instruments of one queue and task pair.
    final class TaskInstruments: Sendable {
        let outcomes: [Outcome: Counter]
        let runDuration: Timer

        init(queue: String, task: String, factory: any MetricsFactory) {
            outcomes = Dictionary(uniqueKeysWithValues: Outcome.allCases.map { outcome in
                (outcome, Counter(label: AirlockMetrics.jobs.name, dimensions: [("queue", queue), ("task", task), ("outcome", outcome.rawValue)],
                                  factory: factory))
            })
            runDuration = Timer(label: AirlockMetrics.runDuration.name, dimensions: [("queue", queue), ("task", task)], factory: factory)
        }

        func count(_ outcome: Settlement.Outcome) { outcomes[Outcome(outcome)]?.increment() }
    }

    private struct PairKey: Hashable {
        let queue: String
        let task: String
    }

    private let factory: any MetricsFactory
    private let tasks: Set<String>
    private let inFlight: [String: Meter]
    private let queueWait: [String: Timer]
    private let recovered: Counter
    private let pairs = Mutex<[PairKey: TaskInstruments]>([:])

    /// Instruments for a worker of `queues` running `tasks` (the registered names) with `concurrency` slots.
    package init(factory: any MetricsFactory, queues: [String], tasks: [String], concurrency: Int) {
        self.factory = factory
        self.tasks = Set(tasks)
        inFlight = Dictionary(queues.map { ($0, Meter(label: AirlockMetrics.inFlight.name, dimensions: [("queue", $0)], factory: factory)) },
                              uniquingKeysWith: { first, _ in first })
        queueWait = Dictionary(queues.map { ($0, Timer(label: AirlockMetrics.queueWait.name, dimensions: [("queue", $0)], factory: factory)) },
                               uniquingKeysWith: { first, _ in first })
        recovered = Counter(label: AirlockMetrics.reaperRecovered.name, factory: factory)
        Gauge(label: AirlockMetrics.concurrency.name, factory: factory).record(concurrency)
    }

    /// Records nothing anywhere: for the fuzz harness and tests that do not look.
    package static let discarding = WorkerMetrics(factory: NOOPMetricsHandler.instance, queues: [], tasks: [], concurrency: 0)

    /// The instruments for `task` on `queue`; a name this worker has not registered is counted as
    /// ``AirlockMetrics/unknownTask``, so a job's bytes never create a series.
    func instruments(queue: String, task: String?) -> TaskInstruments {
        let label = task.flatMap { tasks.contains($0) ? $0 : nil } ?? AirlockMetrics.unknownTask
        let key = PairKey(queue: queue, task: label)
        return pairs.withLock { pairs in
            if let known = pairs[key] { return known }
            let made = TaskInstruments(queue: queue, task: label, factory: factory)
            pairs[key] = made
            return made
        }
    }

    /// A task of `queue` started or stopped running.
    func running(_ queue: String, _ delta: Int) {
        guard let meter = inFlight[queue] else { return }
        if delta > 0 { meter.increment() } else { meter.decrement() }
    }

    /// A job of `queue` starts now; it became runnable at `readyAt` (ms since the epoch).
    func started(_ queue: String, readyAt: Int64, now: Int64) {
        // A producer's clock ahead of ours must not record a negative wait.
        queueWait[queue]?.recordMilliseconds(max(0, now - readyAt))
    }

    /// The reaper returned `count` jobs of dead workers.
    func recoveredJobs(_ count: Int) {
        if count > 0 { recovered.increment(by: count) }
    }
}
