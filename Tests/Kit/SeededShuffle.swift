/// A fixed sequence of pseudo-random numbers (a 64-bit LCG), so a failing case can be rerun from its
/// seed. Also a `RandomNumberGenerator`, for the standard library's `random(in:using:)` and `shuffled(using:)`.
public struct SeededShuffle: RandomNumberGenerator {
    /// The generator's state; the seed is its first value.
    public var state: UInt64

    /// A sequence starting from `state`.
    public init(state: UInt64) {
        self.state = state
    }

    /// The next number in `range`.
    public mutating func next(_ range: ClosedRange<Int64>) -> Int64 {
        step()
        return range.lowerBound + Int64((state >> 11) % UInt64(range.upperBound - range.lowerBound + 1))
    }

    /// The next 64 bits: the state after one step, its weak low bits mixed with its high ones.
    public mutating func next() -> UInt64 {
        step()
        return state ^ (state >> 29)
    }

    private mutating func step() {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    }
}
