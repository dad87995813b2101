import Airlock
package import Metrics
import Synchronization

/// One worker's swift-metrics instruments (``AirlockMetrics`` names them). Created once per run;
/// per-task instruments are made the first time a queue and task pair is seen, so only pairs that
/// occur become series.
package final class WorkerMetrics: Sendable {
    /// How a job that left a task slot ended, as the `outcome` label says it.
    enum Outcome: Int, CaseIterable, Sendable {
        case succeeded, retried, dead, expired, postponed, cancelled, revoked

        /// The `outcome` label: the case's name.
        var label: String { String(describing: self) }

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

    /// The instruments of one queue: its in-flight meter and queue-wait timer (absent for a queue
    /// this worker was not configured with), and those of each task seen on it.
    final class QueueInstruments: Sendable {
        let name: String
        let inFlight: Meter?
        let queueWait: Timer?
        private let tasks = Mutex<[String: TaskInstruments]>([:])

        init(name: String, configured: Bool, factory: any MetricsFactory) {
            self.name = name
            inFlight = configured ? Meter(label: AirlockMetrics.inFlight.name, dimensions: [("queue", name)], factory: factory) : nil
            queueWait = configured ? Timer(label: AirlockMetrics.queueWait.name, dimensions: [("queue", name)], factory: factory) : nil
        }

        /// The instruments of `task` on this queue if it is one of `registered`, else those of
        /// ``AirlockMetrics/unknownTask``. Looked up by the job's name first, so a known task costs
        /// one hash; only registered names are ever stored, so hostile names cannot grow the map.
        func task(_ task: String?, registered: Set<String>, factory: any MetricsFactory) -> TaskInstruments {
            tasks.withLock { tasks in
                if let task, let known = tasks[task] { return known }
                let label = task.flatMap { registered.contains($0) ? $0 : nil } ?? AirlockMetrics.unknownTask
                if let known = tasks[label] { return known }
                let made = TaskInstruments(queue: self, task: label, factory: factory)
                tasks[label] = made
                return made
            }
        }
    }

    /// The instruments of one queue and task pair, holding its queue's: a job looks up one
    /// object, not a series per instrument (six string hashes per job were a measurable share of
    /// a no-op job: docs/BENCHMARKS.md).
    final class TaskInstruments: Sendable {
        let queue: QueueInstruments
        /// One counter per ``Outcome``, at its raw value.
        private let outcomes: [Counter]
        let runDuration: Timer

        init(queue: QueueInstruments, task: String, factory: any MetricsFactory) {
            self.queue = queue
            outcomes = Outcome.allCases.map { outcome in
                Counter(label: AirlockMetrics.jobs.name, dimensions: [("queue", queue.name), ("task", task), ("outcome", outcome.label)],
                        factory: factory)
            }
            runDuration = Timer(label: AirlockMetrics.runDuration.name, dimensions: [("queue", queue.name), ("task", task)], factory: factory)
        }

        func count(_ outcome: Settlement.Outcome) { outcomes[Outcome(outcome).rawValue].increment() }

        /// A job starts now; it became runnable at `readyAt` (ms since the epoch).
        func started(readyAt: Int64, now: Int64) {
            // A producer's clock ahead of ours must not record a negative wait.
            queue.queueWait?.recordMilliseconds(max(0, now - readyAt))
        }

        /// A task started or stopped running.
        func running(_ delta: Int) {
            guard let meter = queue.inFlight else { return }
            if delta > 0 { meter.increment() } else { meter.decrement() }
        }
    }

    private let factory: any MetricsFactory
    private let tasks: Set<String>
    /// The configured queues: fixed for the run, so read without a lock.
    private let queues: [String: QueueInstruments]
    /// Any other queue a job names (none in a worker; the fuzz harness configures none).
    private let otherQueues = Mutex<[String: QueueInstruments]>([:])
    private let recovered: Counter

    /// Instruments for a worker of `queues` running `tasks` (the registered names) with `concurrency` slots.
    package init(factory: any MetricsFactory, queues: [String], tasks: [String], concurrency: Int) {
        self.factory = factory
        self.tasks = Set(tasks)
        self.queues = Dictionary(queues.map { ($0, QueueInstruments(name: $0, configured: true, factory: factory)) },
                                 uniquingKeysWith: { first, _ in first })
        recovered = Counter(label: AirlockMetrics.reaperRecovered.name, factory: factory)
        Gauge(label: AirlockMetrics.concurrency.name, factory: factory).record(concurrency)
    }

    /// Records nothing anywhere: for the fuzz harness and tests that do not look.
    package static let discarding = WorkerMetrics(factory: NOOPMetricsHandler.instance, queues: [], tasks: [], concurrency: 0)

    /// The instruments for `task` on `queue`; a name this worker has not registered is counted as
    /// ``AirlockMetrics/unknownTask``, so a job's bytes never create a series.
    func instruments(queue: String, task: String?) -> TaskInstruments {
        let instruments = queues[queue] ?? otherQueues.withLock { others in
            if let known = others[queue] { return known }
            let made = QueueInstruments(name: queue, configured: false, factory: factory)
            others[queue] = made
            return made
        }
        return instruments.task(task, registered: tasks, factory: factory)
    }

    /// The reaper returned `count` jobs of dead workers.
    func recoveredJobs(_ count: Int) {
        if count > 0 { recovered.increment(by: count) }
    }
}
