/// What becomes of a job that left a task slot: the engine decides it, the ``JobSource`` records it.
public struct Settlement: Sendable {
    /// What to do with the job.
    public enum Outcome: Sendable, Equatable {
        /// Succeeded: forget it, count it processed.
        case acknowledge
        /// Failed, and runs again: `message` (one attempt later) becomes due at `dueAt` (ms).
        case retry(message: [UInt8], dueAt: Int64)
        /// Failed for good: keep `entry` in the dead letters.
        case dead(entry: [UInt8])
        /// Not started before it expired: dropped, counted expired.
        case expired
        /// Never started (shutdown, a reaped worker): back to the front of its queue, unchanged.
        case requeue
        /// Not due yet (a producer put a future `eta` on a ready job): wait among delayed jobs.
        case postpone(dueAt: Int64)
        /// An operator cancelled it (`airlock-workerd cancel`) before it started or while its task
        /// ran and did not succeed: dropped, counted cancelled, never retried.
        case cancelled
    }

    /// The job, exactly as fetched.
    public let job: FetchedJob
    /// What to do with it.
    public var outcome: Outcome
    /// A result to store with the settlement, written only if the job was still held.
    public var result: StoredResult?
    /// The batch that counts this job's final outcome (acknowledged, dead, expired, cancelled),
    /// if it belongs to one; retries, returns and postponements are not counted.
    public var batch: BatchCount?
    /// The job still occupies a worker slot, freed once this settlement reached the source.
    var holdsSlot = false
    /// Where the slot counts the outcome (set by the runner; the settlement of a job that never
    /// ran, such as a shutdown's return of an unstarted job, has none and is not counted).
    var instruments: WorkerMetrics.TaskInstruments?

    /// Creates a settlement.
    public init(job: FetchedJob, outcome: Outcome, result: StoredResult? = nil) {
        self.job = job
        self.outcome = outcome
        self.result = result
    }

    /// Whether the task succeeded.
    public var succeeded: Bool { outcome == .acknowledge }
}
