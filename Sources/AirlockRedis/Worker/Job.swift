/// A job as fetched: the exact bytes taken from the ready list (needed verbatim to remove it
/// from the in-flight list) and the queue it came from.
struct Job: Sendable {
    /// Index of the queue in the worker's queue list; lower runs first.
    let queueIndex: Int
    /// The queue name.
    let queue: String
    /// Where the job goes back to when it is returned unstarted (see ``QueueRoute/homeKey``).
    let home: String
    /// The message exactly as it sat in Redis.
    let raw: [UInt8]
}
