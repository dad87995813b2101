import Airlock
import AirlockWorker
import Foundation
import Testing

/// Native results without a server: what the codec stores, and the engine asking for it on a
/// task's behalf.
@Suite("Native job results")
struct NativeResultTests {
    struct Add: AirlockTask {
        static let name = "math.add"
        let a: Int
        let b: Int
        func run(_ context: TaskContext) async throws {}
    }

    static let codec = NativeCodec(resultKey: { queue, id in "results:\(queue):\(id)" })

    static func decoded(extra: [String: JSONValue] = [:]) -> DecodedJob {
        DecodedJob(envelope: Envelope(id: "j1", task: "t", queue: "q", enqueuedAt: 1, extra: extra))
    }

    @Test func nothingIsStoredUnlessTheJobAsksAndTheCodecKnowsWhere() {
        #expect(Self.codec.result(of: Self.decoded(), .success(1), expiry: .seconds(60)) == nil)
        #expect(NativeCodec().result(of: Self.decoded(extra: [NativeCodec.resultTTLField: 5000]), .success(1), expiry: .seconds(60)) == nil)
    }

    @Test func aSuccessAndAFailureAreStoredWithTheJobsTTL() throws {
        let asked = Self.decoded(extra: [NativeCodec.resultTTLField: 1500])
        let success = try #require(Self.codec.result(of: asked, .success(["sum": 5]), expiry: .seconds(60)))
        #expect(success.key == "results:q:j1" && success.notifyKey == "results:q:j1:done" && success.expirySeconds == 2)
        let record = try #require(try JSONParser.parse(success.value).objectValue)
        #expect(record["status"] == "success" && record["value"] == ["sum": 5] && record["id"] == "j1")

        let failure = try #require(Self.codec.result(of: asked, .failure(reason: "<b>boom</b>", errorType: "Oops"), expiry: .seconds(60)))
        let failed = try #require(try JSONParser.parse(failure.value).objectValue)
        #expect(failed["status"] == "failure" && failed["error"] == "<b>boom</b>" && failed["error_type"] == "Oops")
    }

    @Test func keepingResultWritesTheFieldAtLeastASecond() {
        #expect(DispatchOptions().keepingResult(for: .seconds(120)).extra[NativeCodec.resultTTLField] == 120_000)
        #expect(DispatchOptions().keepingResult(for: .milliseconds(10)).extra[NativeCodec.resultTTLField] == 1000)
    }

    @Test func aTaskThatKeepsItsResultStoresItsTypedValueWithoutBeingAsked() async throws {
        let queues = InMemoryQueues()
        var tasks = TaskRegistry()
        tasks.register(Add.self, returning: Int.self, keepResult: .seconds(60)) { task, _ in task.a + task.b }
        try await Airlock.scope(policy: AllowAll(), executor: queues.executor(), behavior: DefaultScopeBehavior()) {
            try Airlock.enqueue(Add(a: 2, b: 3))
        }
        let id = try #require(queues.ready("default").first.flatMap { DecodedJob.readableID(of: $0) })
        let run = EngineRun(Worker(source: queues.makeSource(codec: Self.codec), configuration: Engine.configuration(), registry: tasks, logger: Engine.quiet))
        try await Engine.eventually("the result stored") { queues.result("results:default:\(id)") != nil }
        try await run.stop()
        let stored = try #require(queues.result("results:default:\(id)"))
        let record = try #require(try JSONParser.parse(stored).objectValue)
        #expect(record["status"] == "success" && record["value"] == 5)
    }
}
