public import Airlock

extension DispatchOptions {
    /// These options, asking for the job's result (its value, or its failure) to be stored for
    /// `ttl` (at least a second), for a producer to read with a result handle
    /// (`JobResults.handle(for:)` in `AirlockRedis`).
    ///
    /// ```swift
    /// let intent = try Airlock.enqueue(name: "math.add", args: [2, 3], options: DispatchOptions().keepingResult(for: .minutes(10)))
    /// ```
    public func keepingResult(for ttl: Duration) -> DispatchOptions {
        var options = self
        options.extra[NativeCodec.resultTTLField] = .int(Int(max(ttl, .seconds(1)).wholeMilliseconds))
        return options
    }
}
