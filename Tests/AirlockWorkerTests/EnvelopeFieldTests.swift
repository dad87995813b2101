import Airlock
@testable import AirlockWorker
import Testing

/// The decoder finds known fields by their length first; every name must still be found, and
/// every near miss must stay an extra field.
@Suite struct EnvelopeFieldTests {
    @Test func everyKnownFieldIsFoundByItsWireName() {
        for field in Envelope.Field.allCases {
            #expect(Envelope.Field(field.name) == field, "\(field.name)")
        }
        #expect(Envelope.knownFields.count == Envelope.Field.count)
    }

    @Test func aNameOfTheSameLengthIsNotAKnownField() {
        for field in Envelope.Field.allCases {
            let twisted = String(field.name.dropLast()) + (field.name.last == "x" ? "y" : "x")
            #expect(Envelope.Field(twisted) == nil, "\(twisted)")
            #expect(Envelope.Field(field.name.uppercased()) == nil)
            #expect(Envelope.Field(field.name + "_") == nil)
        }
    }

    @Test func everyFieldSurvivesEncodeAndDecode() throws {
        let trace = TraceContext(traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "vendor=1")
        let envelope = Envelope(
            id: "job-1", task: "t", args: [1], kwargs: ["k": "v"], queue: "q", enqueuedAt: 1_700_000_000_000, eta: 1_700_000_000_500,
            expires: 1_700_000_900_000, attempt: 3, maxRetries: 4, origin: "o", priority: -2, idempotencyKey: "key", trace: trace,
            extra: ["tenant": 9, "v2": "kept", "idempotency_kez": "kept too"])
        let decoded = try Envelope.decode(envelope.encoded())
        #expect(decoded == envelope)
        #expect(decoded.trace?.traceparent == trace?.traceparent)
        #expect(decoded.trace?.tracestate == "vendor=1")
        #expect(decoded.extra == envelope.extra)
        // The dictionary path (dead letters read back as fields) agrees with the byte path.
        guard case .object(let fields) = try JSONParser.parse(envelope.encoded()) else { Issue.record("not an object"); return }
        #expect(try Envelope.decode(fields: fields) == decoded)
    }
}
