public import Airlock

/// The batch a job belongs to, as its envelope names it (fields ``idField`` and ``queueField``).
///
/// A batch's record lives beside its callbacks, in the slot of the batch's queue, so the settle
/// script that counts the batch's last job also pushes the callback jobs, in one atomic step.
public struct BatchMembership: Sendable, Hashable {
    /// The batch id.
    public let id: String
    /// The queue the batch's record and callbacks live in.
    public let queue: String

    /// Creates a membership.
    public init(id: String, queue: String) {
        self.id = id
        self.queue = queue
    }

    /// The membership an envelope's extra fields carry: nil unless both fields are strings, the
    /// id is 1 to 128 bytes and the queue is a valid queue name (a job naming anything else is
    /// run as a job of no batch: its bytes must not aim the settle script at arbitrary keys).
    public init?(extra: [String: JSONValue]) {
        guard let id = extra[Self.idField]?.stringValue, let queue = extra[Self.queueField]?.stringValue,
              (1...128).contains(id.utf8.count), QueueName.problem(with: queue) == nil
        else { return nil }
        self.init(id: id, queue: queue)
    }

    /// The fields a member job carries in its envelope.
    public var extra: [String: JSONValue] { [Self.idField: .string(id), Self.queueField: .string(queue)] }

    /// Envelope field naming the batch id.
    public static let idField = "batch_id"
    /// Envelope field naming the batch's queue.
    public static let queueField = "batch_queue"

    /// The batch of the job this task runs for, set by the worker around the task's body: jobs the
    /// task enqueues join it (counted in the batch before the running job settles, so the batch
    /// never looks complete while a follow-up is still to come).
    @TaskLocal public static var current: BatchMembership?
}

/// One member job's final outcome, for the source to count in its batch.
public struct BatchCount: Sendable, Hashable {
    /// The batch.
    public let batch: BatchMembership
    /// The job id: a job counts once, however many copies of it settle.
    public let jobID: String

    /// Creates a count.
    public init(batch: BatchMembership, jobID: String) {
        self.batch = batch
        self.jobID = jobID
    }

    /// The count for a native envelope's raw bytes, read without running it (a job cancelled
    /// before it started, or removed from a queue by an operator); nil when it names no batch or
    /// cannot be read.
    public init?(raw: [UInt8]) {
        guard let fields = (try? JSONParser.parse(raw))?.objectValue, let id = fields["id"]?.stringValue,
              let batch = BatchMembership(extra: fields)
        else { return nil }
        self.init(batch: batch, jobID: id)
    }
}
