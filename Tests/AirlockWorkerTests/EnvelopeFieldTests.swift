import Airlock
import AirlockTestKit
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

    /// The decoder matches keys on their bytes: the same answers as by name, for every name and
    /// every near miss.
    @Test func aKeysBytesFindTheSameFieldAsItsName() {
        var names = Envelope.Field.allCases.map(\.name)
        for name in Envelope.Field.allCases.map(\.name) {
            names += [String(name.dropLast()), name + "_", name.uppercased(), "_" + name.dropFirst(), ""]
        }
        for name in names {
            var key = name
            let byBytes = key.withUTF8 { Envelope.Field($0) }
            #expect(byBytes == Envelope.Field(name), "\(name)")
            #expect((byBytes?.name).map { $0 == name } ?? true)
        }
    }

    /// Keys other producers write with escapes are still the fields they spell; keys that only
    /// look alike stay extra; a repeated key keeps its last value, as before.
    @Test func keysAreReadAsJSONSpellsThem() throws {
        let text = #"{"id":"a","t\u0061sk":"t","\u0071ueue":"q","tas":"x","task\u00e9":"é","queue":"r","attempt":1,"attempt":2}"#
        let envelope = try Envelope.decode(Array(text.utf8))
        #expect(envelope.task == "t")
        #expect(envelope.queue == "r")
        #expect(envelope.attempt == 2)
        #expect(envelope.extra == ["tas": "x", "taské": "é"])
    }

    /// The parser reads an integer's digits itself instead of through `Int(String)`; on random
    /// digit strings of every length up to past `Int`'s range it must agree with it, and fall back
    /// to a double exactly where `Int(String)` would fail.
    @Test func integersAreReadAsIntReadsThem() throws {
        var random = SeededShuffle(state: 20_261_203)
        var texts = ["0", "-0", "7", "-7", "00", "0123", "\(Int.max)", "\(Int.min)", "9223372036854775808",
                     "-9223372036854775809", "99999999999999999999", "-99999999999999999999"]
        for _ in 0..<5_000 {
            let length = Int(random.next(1...22))
            var text = random.next(0...1) == 0 ? "-" : ""
            for _ in 0..<length { text += String(random.next(0...9)) }
            texts.append(text)
        }
        for text in texts {
            let parsed = try JSONParser.parse(Array(text.utf8))
            if let int = Int(text) {
                #expect(parsed == .int(int), "\(text)")
            } else {
                #expect(parsed == .double(Double(text)!), "\(text)")
            }
        }
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
