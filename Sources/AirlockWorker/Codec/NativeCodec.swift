import Airlock

/// Airlock envelopes (`docs/PROTOCOL.md`): a retry is the envelope one attempt later with its new
/// `eta` and `last_error`; a dead letter is the envelope plus `error`, `failed_at` and `attempts`.
/// Results are not stored (native producers do not ask for them).
public struct NativeCodec: WireCodec {
    /// Creates the codec.
    public init() {}

    /// `native`.
    public var name: String { "native" }

    /// Parses and validates an envelope.
    public func decode(_ raw: [UInt8], queue: String) throws(EnvelopeError) -> DecodedJob {
        DecodedJob(envelope: try Envelope.decode(raw))
    }

    /// The envelope with `attempt + 1`, `eta` = `dueAt` and `last_error`.
    public func retry(_ job: DecodedJob, dueAt: Int64, error: any Error) -> [UInt8] {
        var next = job.envelope
        next.attempt += 1
        next.eta = dueAt
        next.extra["last_error"] = .string(String(describing: error))
        return next.encoded()
    }

    /// The envelope plus `error`, `failed_at` and `attempts` (and without `last_error`).
    public func deadLetter(_ job: DecodedJob, reason: String, errorType: String, attempts: Int, failedAt: Int64) -> [UInt8] {
        var entry = job.envelope
        entry.extra["error"] = .string(reason)
        entry.extra["failed_at"] = .int(Int(failedAt))
        entry.extra["attempts"] = .int(attempts)
        entry.extra["last_error"] = nil
        return entry.encoded()
    }
}

extension WireCodec where Self == NativeCodec {
    /// Airlock envelopes.
    public static var native: NativeCodec { NativeCodec() }
}
