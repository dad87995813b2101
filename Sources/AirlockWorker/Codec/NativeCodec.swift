import Airlock

/// Airlock envelopes (`docs/PROTOCOL.md`): a retry is the envelope one attempt later with its new
/// `eta` and `last_error`; a dead letter is the envelope plus `error`, `failed_at` and `attempts`.
/// A result is stored when the job asks for one (``resultTTLField``) and the codec knows where
/// results go (``init(resultKey:)``).
public struct NativeCodec: WireCodec {
    /// Where a job's result is stored, by queue and job id; `nil` stores none.
    private let resultKey: (@Sendable (_ queue: String, _ jobID: String) -> String)?

    /// Creates the codec; with `resultKey`, jobs that ask for it get their result stored there.
    public init(resultKey: (@Sendable (_ queue: String, _ jobID: String) -> String)? = nil) {
        self.resultKey = resultKey
    }

    /// The envelope field asking for the job's result to be kept, for this many milliseconds.
    public static let resultTTLField = "result_ttl_ms"
    /// The suffix of the list, beside the result, that a waiting producer blocks on.
    public static let resultNotifySuffix = ":done"

    /// `{"status":"success","value":…}` or `{"status":"failure","error":…,"error_type":…}`, with
    /// `id` and `finished_at`, kept for the job's ``resultTTLField``; `nil` when it asked for none.
    public func result(of job: DecodedJob, _ outcome: TaskOutcome, expiry: Duration) -> StoredResult? {
        guard let resultKey, let ttl = job.envelope.extra[Self.resultTTLField]?.intValue, ttl > 0 else { return nil }
        var record: [String: JSONValue] = ["id": .string(job.envelope.id), "finished_at": .int(Int(epochMilliseconds()))]
        switch outcome {
        case .success(let value):
            record["status"] = "success"
            record["value"] = value
        case .failure(let reason, let errorType):
            record["status"] = "failure"
            record["error"] = .string(reason)
            record["error_type"] = .string(errorType)
        }
        var bytes: [UInt8] = []
        JSONWriter.write(.object(record), into: &bytes)
        let key = resultKey(job.envelope.queue, job.envelope.id)
        return StoredResult(key: key, value: bytes, expirySeconds: max(1, (ttl + 999) / 1000), notifyKey: key + Self.resultNotifySuffix)
    }

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
