import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// The payload cap: an envelope over `maxPayloadBytes` fails the flush before anything is sent.
@Suite("RedisExecutor payload size limit", .timeLimit(.minutes(5)))
struct ExecutorPayloadTests {
    typealias Kit = ExecutorTestKit

    static func padding(_ count: Int) -> String { String(repeating: "p", count: count) }

    @Test func oversizedEnvelopeFailsTheWholeFlushAndSaysWhy() async throws {
        let fixture = try await ExecutorFixture.make("payload-over", maxPayloadBytes: 1024)
        let scope = try Scope(policy: AllowAll(), executor: fixture.executor, behavior: DefaultScopeBehavior())
        let failure = await Kit.dispatchFailure {
            try await Airlock.scope(scope) {
                try Airlock.enqueue(name: "small", options: DispatchOptions(queue: "q1"))
                try Airlock.enqueue(name: "delayed.small", options: DispatchOptions(countdown: .seconds(30)))
                try Airlock.enqueue(name: "huge.upload", args: [.string(Self.padding(2_000))])
            }
        }
        let (error, underlying) = try #require(failure)
        #expect(underlying.kind == .payloadTooLarge)
        #expect(error.dispatched.isEmpty)
        #expect(error.notDispatched.map(\.id) == scope.intents.map(\.id))
        let message = underlying.description
        #expect(message.contains("huge.upload"), "names the task: \(message)")
        #expect(message.contains("1024"), "names the limit: \(message)")
        let size = try #require(message.split(separator: " ").compactMap { Int($0) }.first { $0 > 2_000 }, "names the size: \(message)")
        #expect(size > 2_000 && size < 2_400)
        #expect(message.contains("bytes"))
        #expect(try await fixture.allKeys() == [], "nothing may be written")
    }

    @Test func envelopeExactlyAtTheLimitIsAcceptedAndOneByteMoreIsNot() async throws {
        let limit = 1024
        let fixture = try await ExecutorFixture.make("payload-edge", maxPayloadBytes: limit)
        // Measure the envelope overhead with a small probe (ids and timestamps have fixed widths).
        let probe = try await fixture.flush { try Airlock.enqueue(name: "edge", args: [.string(Self.padding(10))], options: DispatchOptions(queue: "probe")) }
        let probeBytes = try #require(try await fixture.ready("probe").first).count
        let overhead = probeBytes - 10
        #expect(try await fixture.readyEnvelopes("probe").first?.id == Kit.wireID(probe))

        try await fixture.flush { try Airlock.enqueue(name: "edge", args: [.string(Self.padding(limit - overhead))], options: DispatchOptions(queue: "probe")) }
        let stored = try await fixture.ready("probe")
        #expect(stored.first?.count == limit, "the envelope should be exactly \(limit) bytes")

        let failure = await Kit.dispatchFailure {
            try await fixture.flush { try Airlock.enqueue(name: "edge", args: [.string(Self.padding(limit - overhead + 1))], options: DispatchOptions(queue: "probe")) }
        }
        #expect(failure?.1.kind == .payloadTooLarge)
        #expect(failure?.1.description.contains("\(limit + 1) bytes") == true, "\(failure?.1.description ?? "")")
        #expect(try await fixture.ready("probe").count == 2)
    }

    @Test func multiByteCharactersCountAsBytes() async throws {
        // 300 × "😀" is 300 characters but 1200 bytes of UTF-8.
        let fixture = try await ExecutorFixture.make("payload-utf8", maxPayloadBytes: 1024)
        let failure = await Kit.dispatchFailure {
            try await fixture.flush { try Airlock.enqueue(ExecutorTextTask(text: String(repeating: "😀", count: 300))) }
        }
        #expect(failure?.1.kind == .payloadTooLarge)
        #expect(try await fixture.allKeys() == [])
    }

    @Test func typedTaskOverTheLimitIsRejected() async throws {
        let fixture = try await ExecutorFixture.make("payload-typed", maxPayloadBytes: 1024)
        let failure = await Kit.dispatchFailure {
            try await fixture.flush { try Airlock.enqueue(ExecutorTextTask(text: Self.padding(1_100))) }
        }
        #expect(failure?.1.kind == .payloadTooLarge)
        #expect(failure?.1.description.contains("text.echo") == true)
        #expect(try await fixture.allKeys() == [])
    }

    @Test func fourHundredKiBWorksWithTheDefaultLimit() async throws {
        let fixture = try await ExecutorFixture.make("payload-400k")
        #expect(fixture.executor.maxPayloadBytes == 512 * 1024)
        // Varied content, so a truncation or a shifted byte would show.
        let blob = String((0..<(400 * 1024)).map { index in Character(Unicode.Scalar(UInt8(0x21 + index % 90))) })
        let multi = String(repeating: "漢字😀é", count: 1_000)
        try await fixture.flush { try Airlock.enqueue(name: "big", args: [.string(blob)], kwargs: ["multi": .string(multi)]) }
        let stored = try await fixture.ready("default")
        try #require(stored.count == 1)
        #expect(stored[0].count > 400 * 1024)
        let envelope = try Envelope.decode(stored[0])
        #expect(envelope.args.first?.stringValue.map { Array($0.utf8) } == Array(blob.utf8))
        #expect(envelope.kwargs["multi"]?.stringValue.map { Array($0.utf8) } == Array(multi.utf8))
    }

    @Test func overTheDefaultLimitIsRejected() async throws {
        let fixture = try await ExecutorFixture.make("payload-600k")
        let failure = await Kit.dispatchFailure {
            try await fixture.flush { try Airlock.enqueue(name: "too.big", args: [.string(Self.padding(600 * 1024))]) }
        }
        #expect(failure?.1.kind == .payloadTooLarge)
        #expect(failure?.1.description.contains("\(512 * 1024)") == true)
        #expect(try await fixture.allKeys() == [])
    }
}
