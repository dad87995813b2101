import Airlock
@testable import AirlockRedis
import Testing

/// The envelope codec on its own, no Redis: what `encoded()` writes and what `decode` accepts.
@Suite("Envelope encoding and decoding")
struct EnvelopeCodecTests {
    typealias Kit = ExecutorTestKit

    static let full = Envelope(
        id: "0f8e2a4c-5b6d-4e7f-8a9b-0c1d2e3f4a5b", task: "billing.charge",
        args: [1, "two", 3.5, nil, true, ["nested", ["deep": 1]]],
        kwargs: ["amount": 1999, "currency": "EUR", "meta": ["a": [1, 2], "b": nil]],
        queue: "billing", enqueuedAt: 1_700_000_000_123, eta: 1_700_000_060_000, expires: 1_700_003_600_000,
        attempt: 2, maxRetries: 5, origin: "checkout/42", priority: 7, idempotencyKey: "charge-42",
        extra: ["trace_id": "abc123", "tenant": ["id": 9, "plan": "pro"], "retry_delays": [1, 2, 4]])

    @Test func encodeDecodeRoundTripKeepsEveryField() throws {
        let decoded = try Envelope.decode(Self.full.encoded())
        #expect(decoded == Self.full)
        #expect(decoded.extra == Self.full.extra)
    }

    @Test func encodedFieldsUseTheWireNames() throws {
        let object = try Kit.object(Self.full.encoded())
        #expect(object["v"] == 1)
        #expect(object["id"] == "0f8e2a4c-5b6d-4e7f-8a9b-0c1d2e3f4a5b")
        #expect(object["task"] == "billing.charge")
        #expect(object["args"] == [1, "two", 3.5, nil, true, ["nested", ["deep": 1]]])
        #expect(object["kwargs"] == ["amount": 1999, "currency": "EUR", "meta": ["a": [1, 2], "b": nil]])
        #expect(object["queue"] == "billing")
        #expect(object["enqueued_at"] == .int(1_700_000_000_123))
        #expect(object["eta"] == .int(1_700_000_060_000))
        #expect(object["expires"] == .int(1_700_003_600_000))
        #expect(object["attempt"] == 2)
        #expect(object["max_retries"] == 5)
        #expect(object["origin"] == "checkout/42")
        #expect(object["priority"] == 7)
        #expect(object["idempotency_key"] == "charge-42")
        // Extra fields travel as top-level fields of the envelope.
        #expect(object["trace_id"] == "abc123")
        #expect(object["tenant"] == ["id": 9, "plan": "pro"])
        #expect(object["retry_delays"] == [1, 2, 4])
        #expect(object.count == 17)
    }

    @Test func optionalFieldsAreNullOrAbsent() throws {
        let minimal = Envelope(id: "id-1", task: "t", queue: "q", enqueuedAt: 5)
        let object = try Kit.object(minimal.encoded())
        // eta, expires, max_retries and origin are always present (null when unset) …
        #expect(object["eta"] == .null)
        #expect(object["expires"] == .null)
        #expect(object["max_retries"] == .null)
        #expect(object["origin"] == .null)
        // … priority and idempotency_key only when set.
        #expect(object["priority"] == nil)
        #expect(object["idempotency_key"] == nil)
        #expect(object["args"] == [])
        #expect(object["kwargs"] == [:])
        #expect(object["attempt"] == 0)
        #expect(try Envelope.decode(minimal.encoded()) == minimal)
    }

    /// The exact bytes, in the documented order, for envelopes without dictionaries (whose
    /// member order is not fixed): other producers' fixtures and byte-exact `LREM`s rely on a
    /// stable form, and hand-written field names and digits must match what the writer wrote.
    @Test func encodedBytesAreStable() throws {
        let minimal = Envelope(id: "id-1", task: "t", queue: "q", enqueuedAt: 5)
        #expect(String(decoding: minimal.encoded(), as: UTF8.self) == #"{"v":1,"id":"id-1","task":"t","args":[],"kwargs":{},"queue":"q","enqueued_at":5,"eta":null,"expires":null,"attempt":0,"max_retries":null,"origin":null}"#)
        let trace = try #require(TraceContext(traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "k=v"))
        let every = Envelope(id: "id-2", task: "a.b", args: [-1, 0, .int(Int.min)], queue: "q\"2", enqueuedAt: 1_700_000_000_123,
                             eta: -5, expires: 1_700_003_600_000, attempt: 12, maxRetries: 0, origin: "o\n", priority: -3,
                             idempotencyKey: "k", trace: trace)
        #expect(String(decoding: every.encoded(), as: UTF8.self) == #"{"v":1,"id":"id-2","task":"a.b","args":[-1,0,-9223372036854775808],"kwargs":{},"queue":"q\"2","enqueued_at":1700000000123,"eta":-5,"expires":1700003600000,"attempt":12,"max_retries":0,"origin":"o\n","priority":-3,"idempotency_key":"k","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tracestate":"k=v"}"#)
    }

    @Test func unknownFieldsFromAnotherProducerSurviveDecodeAndReencode() throws {
        let foreign = #"""
            {"v":1,"id":"py-1","task":"proj.add","args":[2,2],"kwargs":{},"queue":"default","enqueued_at":1700000000000,
             "eta":null,"expires":null,"attempt":0,"max_retries":null,"origin":"celery-shim",
             "x_python":{"lang":"py","version":[3,12]},"headers":{"a":"b"},"note":"é ☃ 😀"}
            """#
        let decoded = try Envelope.decode(Array(foreign.utf8))
        #expect(decoded.extra == ["x_python": ["lang": "py", "version": [3, 12]], "headers": ["a": "b"], "note": "é ☃ 😀"])
        var retried = decoded
        retried.attempt += 1
        let again = try Envelope.decode(retried.encoded())
        #expect(again.extra == decoded.extra)
        #expect(again.attempt == 1)
        #expect(again.args == [2, 2])
        #expect(again.origin == "celery-shim")
    }

    @Test func extraCannotShadowAKnownField() throws {
        var envelope = Envelope(id: "real-id", task: "real.task", queue: "q", enqueuedAt: 1)
        envelope.extra = ["id": "forged", "task": "forged", "attempt": 99, "v": 2, "fine": 1]
        let bytes = envelope.encoded()
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.components(separatedBy: #""id":"#).count == 2, "one id field only: \(text)")
        #expect(text.components(separatedBy: #""task":"#).count == 2, "one task field only: \(text)")
        let decoded = try Envelope.decode(bytes)
        #expect(decoded.id == "real-id")
        #expect(decoded.task == "real.task")
        #expect(decoded.attempt == 0)
        #expect(decoded.version == 1)
        #expect(decoded.extra == ["fine": 1])
    }

    @Test func minimalForeignEnvelopeGetsDefaults() throws {
        let decoded = try Envelope.decode(Array(#"{"id":"x","task":"t","queue":"q"}"#.utf8))
        #expect(decoded == Envelope(id: "x", task: "t", queue: "q", enqueuedAt: 0))
        let nulls = try Envelope.decode(Array(#"{"v":1,"id":"x","task":"t","queue":"q","args":null,"kwargs":null,"attempt":null}"#.utf8))
        #expect(nulls.args == [])
        #expect(nulls.kwargs == [:])
        #expect(nulls.attempt == 0)
    }

    @Test func integralDoublesAreAcceptedForIntegerFields() throws {
        // Some JSON libraries write every number as a double.
        let decoded = try Envelope.decode(Array(#"{"id":"x","task":"t","queue":"q","enqueued_at":1700000000000.0,"attempt":1.0}"#.utf8))
        #expect(decoded.enqueuedAt == 1_700_000_000_000)
        #expect(decoded.attempt == 1)
    }

    @Test(arguments: [
        (#""#, "empty"),
        (#"{"id":"#, "malformed JSON"),
        (#"[1,2]"#, "not a JSON object"),
        (#"{"v":2,"id":"x","task":"t","queue":"q"}"#, "version"),
        (#"{"task":"t","queue":"q"}"#, "'id'"),
        (#"{"id":"","task":"t","queue":"q"}"#, "'id'"),
        (#"{"id":7,"task":"t","queue":"q"}"#, "'id'"),
        (#"{"id":"x","queue":"q"}"#, "'task'"),
        (#"{"id":"x","task":"t"}"#, "'queue'"),
        (#"{"id":"x","task":"t","queue":"q","args":{"a":1}}"#, "'args'"),
        (#"{"id":"x","task":"t","queue":"q","kwargs":[1]}"#, "'kwargs'"),
        (#"{"id":"x","task":"t","queue":"q","eta":"soon"}"#, "'eta'"),
        (#"{"id":"x","task":"t","queue":"q","expires":1.5}"#, "'expires'"),
        (#"{"id":"x","task":"t","queue":"q","attempt":-1}"#, "'attempt'"),
        (#"{"id":"x","task":"t","queue":"q","max_retries":"3"}"#, "'max_retries'"),
        (#"{"id":"x","task":"t","queue":"q","origin":5}"#, "'origin'"),
        (#"{"id":"x","task":"t","queue":"q","priority":"high"}"#, "'priority'"),
        (#"{"id":"x","task":"t","queue":"q","idempotency_key":false}"#, "'idempotency_key'"),
    ])
    func invalidEnvelopesNameTheProblem(json: String, mentions: String) {
        do {
            let envelope = try Envelope.decode(Array(json.utf8))
            Issue.record("decoded \(json) as \(envelope)")
        } catch {
            #expect(error.description.contains(mentions), "\(json) → \(error.description)")
        }
    }

    @Test func stringsSurviveByteExact() throws {
        let tricky = ExecutorUnicodeSamples.all
        let envelope = Envelope(
            id: "u", task: "unicode.✓", args: tricky.map { .string($0) },
            kwargs: Dictionary(uniqueKeysWithValues: tricky.enumerated().map { ("k\($0.offset)\($0.element)", .string($0.element)) }),
            queue: "q-ü", enqueuedAt: 1, origin: "origin \"quoted\" \\ back", extra: ["x-😀": "ß"])
        let bytes = envelope.encoded()
        let decoded = try Envelope.decode(bytes)
        #expect(decoded == envelope)
        for (index, sample) in tricky.enumerated() {
            // Compare the UTF-8, not just String equality (which ignores normalisation differences).
            #expect(Array(decoded.args[index].stringValue?.utf8 ?? "".utf8) == Array(sample.utf8))
        }
        // Non-ASCII is written as raw UTF-8, control characters as escapes.
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("😀"))
        #expect(text.contains("漢字"))
        #expect(text.contains(#"nul\u0000byte"#))
        #expect(!bytes.contains(0))
    }

    @Test func escapedUnicodeFromOtherProducersDecodes() throws {
        let json = #"{"id":"x","task":"t","queue":"q","args":["\u00e9","\ud83d\ude00","\u0000","a\"b\\c\/d","\t\n\r\b\f"]}"#
        let decoded = try Envelope.decode(Array(json.utf8))
        #expect(decoded.args == ["é", "😀", "\u{0}", "a\"b\\c/d", "\t\n\r\u{8}\u{C}"])
        #expect(try Envelope.decode(decoded.encoded()) == decoded)
    }

    @Test func numbersKeepTheirKind() throws {
        let values: [JSONValue] = [0, -1, .int(Int.max), .int(Int.min), 1.0, -0.5, 0.1, 1e300, 2.5e-8, 123_456_789.125]
        let decoded = try Envelope.decode(Envelope(id: "n", task: "t", args: values, queue: "q", enqueuedAt: 1).encoded())
        #expect(decoded.args == values)
        if case .double = decoded.args[4] {} else { Issue.record("1.0 came back as \(decoded.args[4]), not a double") }
    }

    @Test func invalidUTF8IsRejected() {
        var bytes = Array(#"{"id":"x","task":"t","queue":"q","args":[""]}"#.utf8)
        bytes.insert(0xFF, at: bytes.count - 3)
        #expect(throws: EnvelopeError.self) { try Envelope.decode(bytes) }
    }
}

/// Strings that break naive JSON writers or readers.
enum ExecutorUnicodeSamples {
    static let all: [String] = [
        "plain ascii",
        "emoji 😀🎉👩‍👩‍👧‍👦 flags 🇫🇷🇯🇵",
        "CJK 漢字かなカナ 한국어",
        "combining e\u{301} a\u{30A} n\u{303} (not precomposed)",
        "precomposed é å ñ",
        "nul\u{0}byte",
        "controls \u{1}\u{8}\u{B}\u{C}\u{1F}\u{7F}",
        #"quotes " and backslashes \ \\ \" and slash /"#,
        "newlines\nand\r\ntabs\t",
        "RTL עברית العربية",
        "astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𐍈",
        "zero width \u{200B}\u{200D}\u{FEFF}",
        "line separators \u{2028}\u{2029}",
        "",
    ]
}
