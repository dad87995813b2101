#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

// Numbers that arrive from outside — a job's `eta`, a retry count, a delayed-set score, a
// `--countdown` typed by an operator — must never trap when they are absurd. These are the only
// conversions between floating-point seconds, `Duration`, `Date` and epoch milliseconds the project
// uses: each one either clamps or says "out of range" with `nil`, never crashes.

extension Duration {
    /// The longest duration Airlock accepts from input (a countdown, a timeout, a sleep): 100 years.
    public static let longestAccepted: Duration = .seconds(100 * 365 * 24 * 3600)

    /// `seconds` as a duration, or `nil` when it is not a finite number in `0…longestAccepted`.
    public init?(checkedSeconds seconds: Double) {
        guard seconds.isFinite, seconds >= 0, seconds <= Duration.longestAccepted.timeInterval else { return nil }
        let whole = seconds.rounded(.towardZero)
        self = .seconds(Int64(whole)) + .nanoseconds(Int64(((seconds - whole) * 1e9).rounded()))
    }

    /// Whole milliseconds, rounded toward zero and saturated at `Int64`'s range.
    public var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return seconds < 0 ? .min : .max }
        return product.addingSaturated(attoseconds / 1_000_000_000_000_000)
    }
}

extension Int64 {
    /// `self + other`, or `Int64.max`/`Int64.min` where the sum would overflow.
    public func addingSaturated(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        guard overflow else { return sum }
        return other > 0 ? .max : .min
    }

    /// `self - other`, or `Int64.max`/`Int64.min` where the difference would overflow.
    public func subtractingSaturated(_ other: Int64) -> Int64 {
        let (difference, overflow) = subtractingReportingOverflow(other)
        guard overflow else { return difference }
        return other < 0 ? .max : .min
    }

    /// The integer nearest to `value`, clamped to `Int64`'s range; `nil` for NaN.
    public init?(saturating value: Double) {
        guard !value.isNaN else { return nil }
        if value >= 9.223_372_036_854_775e18 { self = .max } else if value <= -9.223_372_036_854_775e18 { self = .min } else {
            self = Int64(value.rounded())
        }
    }
}

/// Milliseconds since the Unix epoch, the time unit of the wire protocol; clamped to `Int64`'s
/// range, so even an absurd `Date` gives a number instead of a crash.
public func epochMilliseconds(_ date: Date = Date()) -> Int64 {
    Int64(saturating: date.timeIntervalSince1970 * 1000) ?? 0
}

/// The range of epoch-millisecond timestamps the wire protocol accepts: the Unix epoch to the end
/// of year 9999. A field outside it is malformed input, never arithmetic.
public let acceptedEpochMilliseconds: ClosedRange<Int64> = 0...253_402_300_799_999
