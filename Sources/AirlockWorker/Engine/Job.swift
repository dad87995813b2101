/// A job in the worker's hands: as fetched, and the lane it came through (its priority).
package struct Job: Sendable {
    /// Index of the lane in the worker's lane list; lower runs first.
    let laneIndex: Int
    /// The job exactly as the source handed it over.
    let fetched: FetchedJob

    /// A job as the fuzz harness feeds one to the runner.
    package init(laneIndex: Int, fetched: FetchedJob) {
        self.laneIndex = laneIndex
        self.fetched = fetched
    }

    var queue: String { fetched.queue }
    var raw: [UInt8] { fetched.raw }
}
