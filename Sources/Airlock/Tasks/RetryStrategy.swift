/// How long a failed job waits before its next attempt.
///
/// The retry budget (how many retries) is separate: it comes from the envelope's `max_retries`,
/// the task's registration, or the worker's default, in that order.
public protocol RetryStrategy: Sendable {
    /// The delay before the next attempt, after `failures` failed attempts (1 after the first failure).
    func delay(afterFailures failures: Int) -> Duration
}

/// `base × 2^(failures-1)`, capped at `maximum`, then spread by ±`jitter` so a burst of failures
/// does not come back as a burst of retries.
public struct ExponentialJitterRetry: RetryStrategy {
    /// The first delay.
    public let base: Duration
    /// The largest delay.
    public let maximum: Duration
    /// Fraction of the delay to randomise, 0…1.
    public let jitter: Double

    /// Creates the strategy.
    public init(base: Duration = .seconds(1), maximum: Duration = .seconds(300), jitter: Double = 0.5) {
        self.base = base
        self.maximum = maximum
        self.jitter = min(max(jitter, 0), 1)
    }

    /// The capped, jittered exponential delay.
    public func delay(afterFailures failures: Int) -> Duration {
        let exponent = Double(min(max(failures - 1, 0), 40))
        let raw = min(base.timeInterval * pow2(exponent), maximum.timeInterval)
        let spread = raw * jitter * Double.random(in: -1...1)
        return Duration(checkedSeconds: max(0, raw + spread)) ?? .longestAccepted
    }

    private func pow2(_ x: Double) -> Double { Double(sign: .plus, exponent: Int(x), significand: 1) }
}

/// The same delay every time.
public struct FixedRetry: RetryStrategy {
    /// The delay.
    public let interval: Duration
    /// Creates the strategy.
    public init(_ interval: Duration) { self.interval = interval }
    /// Always ``interval``.
    public func delay(afterFailures failures: Int) -> Duration { interval }
}

extension RetryStrategy where Self == ExponentialJitterRetry {
    /// Exponential backoff with jitter: the default.
    public static func exponentialJitter(
        base: Duration = .seconds(1), maximum: Duration = .seconds(300), jitter: Double = 0.5
    ) -> ExponentialJitterRetry {
        ExponentialJitterRetry(base: base, maximum: maximum, jitter: jitter)
    }
}

extension RetryStrategy where Self == FixedRetry {
    /// The same delay before every retry.
    public static func fixed(_ interval: Duration) -> FixedRetry { FixedRetry(interval) }
    /// Retry as soon as a worker is free.
    public static var immediate: FixedRetry { FixedRetry(.zero) }
}
