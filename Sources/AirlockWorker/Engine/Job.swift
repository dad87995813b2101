/// A job in the worker's hands: as fetched, and the lane it came through (its priority).
struct Job: Sendable {
    /// Index of the lane in the worker's lane list; lower runs first.
    let laneIndex: Int
    /// The job exactly as the source handed it over.
    let fetched: FetchedJob

    var queue: String { fetched.queue }
    var raw: [UInt8] { fetched.raw }
}
