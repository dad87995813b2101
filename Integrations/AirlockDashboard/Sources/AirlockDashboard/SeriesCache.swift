import AirlockRedis

/// The overview's hour of per-second counters, summed over queues, with finished minutes kept.
///
/// A worker writes each batch into the current minute of its clock, so once the minute is over a
/// minute's hashes no longer change (until they expire). The first overview reads the whole hour
/// (one `HGETALL` per queue and minute); later ones read only the minutes not kept yet and the
/// current one — and, during the first ``clockLagSeconds`` of a minute, the previous one too, in
/// case a worker's clock runs a little behind this one's.
actor SeriesCache {
    /// How far behind this process's clock a worker's may run and still have its last writes to
    /// the previous minute shown.
    static let clockLagSeconds: Int64 = 10

    private var queues: [String] = []
    private var finished: [Int64: ThroughputMinute] = [:]

    /// The last `seconds` seconds ending at `endSecond` (Unix seconds), over `queues`.
    func series(admin: RedisAdmin, queues current: [String], endSecond: Int64, seconds: Int = 3600) async throws -> ThroughputSeries {
        if current != queues {
            queues = current
            finished = [:]
        }
        let window = RedisAdmin.minutes(endSecond: endSecond, seconds: seconds)
        let currentMinute = window.upperBound
        let lastFinished = endSecond % 60 >= Self.clockLagSeconds ? currentMinute - 1 : currentMinute - 2
        finished = finished.filter { window.contains($0.key) && $0.key <= lastFinished }
        // Everything from the oldest minute not kept to now (a gap after an idle spell is read whole).
        let first = window.first { $0 > lastFinished || finished[$0] == nil } ?? currentMinute
        let read = first...currentMinute
        let perQueue = try await admin.throughputMinutes(queues: current, minutes: read)
        var minutes = finished
        for minute in read {
            var sum = ThroughputMinute(minute: minute)
            for queue in current { if let counts = perQueue[queue]?[minute] { sum = sum.adding(counts) } }
            minutes[minute] = sum
            if minute <= lastFinished { finished[minute] = sum }
        }
        return ThroughputSeries(queues: current, endSecond: endSecond, seconds: seconds, minutes: minutes)
    }
}
