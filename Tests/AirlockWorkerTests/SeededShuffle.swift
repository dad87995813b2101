/// A fixed sequence of pseudo-random numbers (a 64-bit LCG), so a failing case can be rerun.
struct SeededShuffle {
    var state: UInt64

    /// The next number in `range`.
    mutating func next(_ range: ClosedRange<Int64>) -> Int64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return range.lowerBound + Int64((state >> 11) % UInt64(range.upperBound - range.lowerBound + 1))
    }
}
