import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// What `Airlock.enqueue` inside a scope puts on the wire, read back byte for byte from a real Redis.
@Suite("RedisExecutor envelopes on the wire", .timeLimit(.minutes(5)))
struct ExecutorEnvelopeTests {
    typealias Kit = ExecutorTestKit

    @Test func dynamicIntentCarriesEveryField() async throws {
        let fixture = try await ExecutorFixture.make("env-dyn", origin: "executor-default-origin")
        let expiresAt = Date(timeIntervalSince1970: 4_102_444_800.5)   // 2100-01-01T00:00:00.5Z
        let options = DispatchOptions(
            queue: "mail", expires: .at(expiresAt), maxRetries: 7, priority: 0, idempotencyKey: "welcome-42",
            extra: ["trace_id": "t-1", "tenant": ["id": 5, "region": "eu"]])
        let before = epochMilliseconds()
        let intent = try await fixture.flush {
            try Airlock.enqueue(
                name: "mail.send_welcome", args: [42, "ada@example.com", 1.5, nil, true],
                kwargs: ["template": "welcome", "vars": ["first": "Ada", "n": 3]], options: options, origin: "signup-handler")
        }
        let after = epochMilliseconds()

        let stored = try await fixture.ready("mail")
        try #require(stored.count == 1)
        let object = try Kit.object(stored[0])
        #expect(object["v"] == 1)
        #expect(object["id"] == .string(Kit.wireID(intent)))
        #expect(object["id"]?.stringValue == object["id"]?.stringValue?.lowercased())
        #expect(object["id"]?.stringValue.flatMap(UUID.init(uuidString:)) == intent.id)
        #expect(object["task"] == "mail.send_welcome")
        #expect(object["args"] == [42, "ada@example.com", 1.5, nil, true])
        #expect(object["kwargs"] == ["template": "welcome", "vars": ["first": "Ada", "n": 3]])
        #expect(object["queue"] == "mail")
        let enqueuedAt = try #require(object["enqueued_at"]?.intValue)
        #expect((Int(before)...Int(after)).contains(enqueuedAt), "enqueued_at \(enqueuedAt) not in [\(before), \(after)]")
        #expect(object["eta"] == .null)
        #expect(object["expires"] == .int(Int(epochMilliseconds(expiresAt))))
        #expect(object["expires"] == .int(4_102_444_800_500))
        #expect(object["attempt"] == 0)
        #expect(object["max_retries"] == 7)
        #expect(object["origin"] == "signup-handler", "the intent's own origin wins over the executor's")
        #expect(object["priority"] == 0)
        #expect(object["idempotency_key"] == "welcome-42")
        #expect(object["trace_id"] == "t-1")
        #expect(object["tenant"] == ["id": 5, "region": "eu"])

        let expected = Envelope(
            id: Kit.wireID(intent), task: "mail.send_welcome", args: [42, "ada@example.com", 1.5, nil, true],
            kwargs: ["template": "welcome", "vars": ["first": "Ada", "n": 3]], queue: "mail", enqueuedAt: Int64(enqueuedAt),
            eta: nil, expires: 4_102_444_800_500, attempt: 0, maxRetries: 7, origin: "signup-handler", priority: 0,
            idempotencyKey: "welcome-42", extra: ["trace_id": "t-1", "tenant": ["id": 5, "region": "eu"]])
        #expect(try Envelope.decode(stored[0]) == expected)
    }

    @Test func typedTaskTravelsAsKeywordArguments() async throws {
        let fixture = try await ExecutorFixture.make("env-typed")
        let task = ExecutorOrderPlaced(orderID: 42, customer: "Zoë \"Z\" 🦊", total: 19.99, tags: ["new", "vip"], gift: nil)
        let before = epochMilliseconds()
        let intent = try await fixture.flush {
            try Airlock.enqueue(task, options: DispatchOptions(queue: "orders", maxRetries: 2), origin: "web", name: "label-only")
        }
        let after = epochMilliseconds()

        let stored = try await fixture.ready("orders")
        try #require(stored.count == 1)
        let envelope = try Envelope.decode(stored[0])
        #expect(envelope.id == Kit.wireID(intent))
        #expect(envelope.task == "orders.placed", "the wire carries the task name, not the enqueue label")
        #expect(envelope.args == [])
        #expect(envelope.kwargs["orderID"] == 42)
        #expect(envelope.kwargs["customer"] == "Zoë \"Z\" 🦊")
        #expect(envelope.kwargs["total"] == 19.99)
        #expect(envelope.kwargs["tags"] == ["new", "vip"])
        #expect(envelope.kwargs["gift"] == nil || envelope.kwargs["gift"] == .null)
        #expect(envelope.queue == "orders")
        #expect((before...after).contains(envelope.enqueuedAt))
        #expect(envelope.eta == nil)
        #expect(envelope.expires == nil)
        #expect(envelope.attempt == 0)
        #expect(envelope.maxRetries == 2)
        #expect(envelope.origin == "web")
        #expect(envelope.priority == nil)
        #expect(envelope.idempotencyKey == nil)
        #expect(envelope.extra == [:])
        // The keyword arguments decode back into the task a worker would run.
        #expect(try TaskArguments(args: envelope.args, kwargs: envelope.kwargs).decode(ExecutorOrderPlaced.self) == task)
        #expect(envelope.kwargs == (try intent.arguments()).kwargs)
    }

    @Test func typedTaskDefaultOptionsApplyAndEnqueueOptionsOverrideThem() async throws {
        let fixture = try await ExecutorFixture.make("env-defaults")
        try await fixture.flush {
            try Airlock.enqueue(ExecutorReportTask(reportID: "r-1"))
            try Airlock.enqueue(ExecutorReportTask(reportID: "r-2"), options: DispatchOptions(queue: "urgent-reports", maxRetries: 0))
        }
        let fromDefaults = try #require(try await fixture.readyEnvelopes("reports").first)
        #expect(fromDefaults.kwargs == ["reportID": "r-1"])
        #expect(fromDefaults.queue == "reports")
        #expect(fromDefaults.maxRetries == 3)
        #expect(fromDefaults.priority == 1)
        let overridden = try #require(try await fixture.readyEnvelopes("urgent-reports").first)
        #expect(overridden.kwargs == ["reportID": "r-2"])
        #expect(overridden.queue == "urgent-reports")
        #expect(overridden.maxRetries == 0)
        #expect(overridden.priority == 1, "unset options keep the type's default")
    }

    @Test func unsetOptionsAreNullOrAbsentOnTheWire() async throws {
        let fixture = try await ExecutorFixture.make("env-unset")
        try await fixture.flush { try Airlock.enqueue(name: "plain.task") }
        let stored = try await fixture.ready("default")
        try #require(stored.count == 1)
        let object = try Kit.object(stored[0])
        #expect(object["queue"] == "default")
        #expect(object["args"] == [])
        #expect(object["kwargs"] == [:])
        #expect(object["eta"] == .null)
        #expect(object["expires"] == .null)
        #expect(object["max_retries"] == .null)
        #expect(object["origin"] == .null)
        #expect(object["attempt"] == 0)
        #expect(object["priority"] == nil)
        #expect(object["idempotency_key"] == nil)
        #expect(Set(object.keys) == ["v", "id", "task", "args", "kwargs", "queue", "enqueued_at", "eta", "expires", "attempt", "max_retries", "origin"])
    }

    @Test func executorOriginFillsInForIntentsWithoutOne() async throws {
        let fixture = try await ExecutorFixture.make("env-origin", origin: "billing-service@host-7")
        try await fixture.flush {
            try Airlock.enqueue(name: "a")
            try Airlock.enqueue(name: "b", origin: "explicit")
        }
        let envelopes = try await fixture.readyEnvelopes("default")
        #expect(Dictionary(uniqueKeysWithValues: envelopes.map { ($0.task, $0.origin) }) == ["a": "billing-service@host-7", "b": "explicit"])
    }

    @Test func relativeExpiryIsCountedFromEnqueueTime() async throws {
        let fixture = try await ExecutorFixture.make("env-expiry")
        try await fixture.flush { try Airlock.enqueue(name: "short.lived", options: DispatchOptions(expires: .after(.seconds(90)))) }
        let envelope = try #require(try await fixture.readyEnvelopes("default").first)
        let expires = try #require(envelope.expires)
        #expect(abs(expires - (envelope.enqueuedAt + 90_000)) <= 1)
        #expect(envelope.eta == nil)
    }

    @Test func extraOptionsBecomeTopLevelFieldsButCannotOverrideKnownOnes() async throws {
        let fixture = try await ExecutorFixture.make("env-extra")
        let intent = try await fixture.flush {
            try Airlock.enqueue(
                name: "with.extra",
                options: DispatchOptions(queue: "x", extra: ["correlation": "c-9", "flags": [true, false], "id": "forged", "queue": "forged", "attempt": 5]))
        }
        let stored = try await fixture.ready("x")
        try #require(stored.count == 1)
        let envelope = try Envelope.decode(stored[0])
        #expect(envelope.id == Kit.wireID(intent))
        #expect(envelope.queue == "x")
        #expect(envelope.attempt == 0)
        #expect(envelope.extra == ["correlation": "c-9", "flags": [true, false]])
        let text = String(decoding: stored[0], as: UTF8.self)
        #expect(text.components(separatedBy: #""id":"#).count == 2, "a single id field: \(text)")
    }

    @Test func unicodeArgumentsSurviveByteExact() async throws {
        let fixture = try await ExecutorFixture.make("env-unicode")
        let samples = ExecutorUnicodeSamples.all
        let kwargs = Dictionary(uniqueKeysWithValues: samples.enumerated().map { ("key \($0.offset) \($0.element)", JSONValue.string($0.element)) })
        try await fixture.flush {
            try Airlock.enqueue(name: "unicode.dyn ✓", args: samples.map { .string($0) }, kwargs: kwargs, options: DispatchOptions(queue: "ü-queue"))
            for sample in samples { try Airlock.enqueue(ExecutorTextTask(text: sample), options: DispatchOptions(queue: "ü-queue")) }
        }
        let envelopes = try await fixture.readyEnvelopes("ü-queue").reversed().map { $0 }
        try #require(envelopes.count == 1 + samples.count)

        let dynamic = envelopes[0]
        #expect(dynamic.task == "unicode.dyn ✓")
        #expect(dynamic.queue == "ü-queue")
        #expect(dynamic.args == samples.map { .string($0) })
        #expect(dynamic.kwargs == kwargs)
        for (index, sample) in samples.enumerated() {
            #expect(Array((dynamic.args[index].stringValue ?? "").utf8) == Array(sample.utf8), "sample \(index) changed bytes")
            let typed = try TaskArguments(args: envelopes[index + 1].args, kwargs: envelopes[index + 1].kwargs).decode(ExecutorTextTask.self)
            #expect(Array(typed.text.utf8) == Array(sample.utf8), "typed sample \(index) changed bytes")
        }
        let keysBytes = Set(dynamic.kwargs.keys.map { Array($0.utf8) })
        #expect(keysBytes == Set(kwargs.keys.map { Array($0.utf8) }))
    }

    @Test func largeArgumentListsRoundTrip() async throws {
        let fixture = try await ExecutorFixture.make("env-many")
        let args: [JSONValue] = (0..<10_000).map { $0 % 3 == 0 ? .int($0) : ($0 % 3 == 1 ? .string("s\($0)") : .double(Double($0) + 0.25)) }
        let nested = (0..<100).reduce(JSONValue.string("core")) { inner, level in ["level": .int(level), "inner": inner] }
        try await fixture.flush { try Airlock.enqueue(name: "bulk", args: args, kwargs: ["tree": nested]) }
        let envelope = try #require(try await fixture.readyEnvelopes("default").first)
        #expect(envelope.args == args)
        #expect(envelope.kwargs["tree"] == nested)
    }
}
