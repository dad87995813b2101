/// Spacing of repeated attempts after consecutive failures — reconnecting to a server that is
/// down, a worker retrying its queue back end — so a dead server is not hammered by every client
/// at once, and a short blip costs a short wait.
public struct Backoff: Sendable, Equatable {
    /// Delay before the second attempt.
    public var initial: Duration
    /// Cap on any single delay.
    public var maximum: Duration
    /// Growth factor between consecutive delays.
    public var multiplier: Double

    /// Defaults suit a local or same-datacenter server: 50 ms doubling up to 2 s.
    public init(initial: Duration = .milliseconds(50), maximum: Duration = .seconds(2), multiplier: Double = 2) {
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
    }

    /// The wait before retry number `attempt` (0-based): `initial * multiplier^attempt`, capped at `maximum`.
    public func delay(attempt: Int) -> Duration {
        var delay = min(initial, maximum)
        guard multiplier > 1, initial > .zero else { return delay }
        var step = 0
        while step < attempt && delay < maximum {
            delay = min(delay * multiplier, maximum)
            step += 1
        }
        return delay
    }
}
