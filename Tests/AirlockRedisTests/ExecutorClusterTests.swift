import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// The enqueue script against a Redis in cluster mode (one node owning every slot), where a
/// script's keys must all hash to one slot.
@Suite("RedisExecutor on Redis Cluster", .timeLimit(.minutes(5)))
struct ExecutorClusterTests {
    typealias Kit = ExecutorTestKit

    /// A single-node cluster that owns all 16384 slots.
    static func clusterServer() async throws -> RedisServer {
        // An explicit bus port: the default (port + 10000) does not exist for ports above 55535.
        var attempts = 0
        let server: RedisServer
        while true {
            attempts += 1
            let config = ["cluster-enabled yes", "cluster-config-file nodes.conf", "cluster-port \(try RedisServer.freePort())"]
            do {
                server = try await RedisServer.start(RedisServer.Options(extraConfig: config))
                break
            } catch where attempts < 3 {
                continue   // the bus port was taken between probing and binding
            }
        }
        let admin = try Kit.client(server.url)
        _ = try await admin.send("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        let ready = try await Kit.eventually(within: .seconds(10)) {
            (try await admin.send("CLUSTER", "INFO").string ?? "").contains("cluster_state:ok")
        }
        try #require(ready, "the single-node cluster did not reach cluster_state:ok")
        return server
    }

    static func enqueueThreeQueues() throws {
        try Airlock.enqueue(name: "a", options: DispatchOptions(queue: "alpha"))
        try Airlock.enqueue(name: "b", options: DispatchOptions(queue: "beta", countdown: .seconds(30)))
        try Airlock.enqueue(name: "c", options: DispatchOptions(queue: "gamma", idempotencyKey: "k"))
    }

    @Test func hashTaggedNamespacePutsAFlushSpanningQueuesInOneSlot() async throws {
        let server = try await Self.clusterServer()
        let namespace = "{\(RedisServer.uniqueNamespace("cluster"))}"
        let executor = try Kit.executor(url: server.url, namespace: namespace)
        try await Kit.flush(to: executor) { try Self.enqueueThreeQueues() }
        let reader = try Kit.client(server.url)
        let keys = RedisKeys(namespace: namespace)
        #expect(try await Kit.list(keys.ready("alpha"), reader).count == 1)
        #expect(try await reader.send("ZCARD", keys.delayed("beta")) == .integer(1))
        #expect(try await Kit.list(keys.ready("gamma"), reader).count == 1)
        #expect(try await reader.send("SCARD", keys.queues) == .integer(3))
    }

    @Test func untaggedNamespaceRefusesAFlushSpanningQueuesAsAWhole() async throws {
        let server = try await Self.clusterServer()
        let namespace = RedisServer.uniqueNamespace("cluster-plain")
        let executor = try Kit.executor(url: server.url, namespace: namespace)
        let failure = await Kit.dispatchFailure { try await Kit.flush(to: executor) { try Self.enqueueThreeQueues() } }
        let (error, underlying) = try #require(failure)
        #expect(underlying.kind == .notWritten, "\(underlying)")
        #expect(underlying.redisError?.serverErrorCode == "CROSSSLOT", "\(underlying)")
        #expect(error.notDispatched.count == 3)
        let reader = try Kit.client(server.url)
        #expect(try await reader.send("DBSIZE") == .integer(0))
    }

    @Test func untaggedNamespaceAcceptsAFlushToOneQueue() async throws {
        // Per RedisKeys, "a script touching one queue's keys touches one slot": every key of one
        // queue carries the `{queue}` hash tag. The enqueue script also always passes
        // `<ns>:queues` (no tag) as KEYS[1], so even a one-queue flush spans two slots.
        let server = try await Self.clusterServer()
        let namespace = RedisServer.uniqueNamespace("cluster-one")
        let executor = try Kit.executor(url: server.url, namespace: namespace)
        try await Kit.flush(to: executor) {
            try Airlock.enqueue(name: "a", options: DispatchOptions(queue: "alpha"))
            try Airlock.enqueue(name: "b", options: DispatchOptions(queue: "alpha", countdown: .seconds(30), idempotencyKey: "k"))
        }
        let reader = try Kit.client(server.url)
        let keys = RedisKeys(namespace: namespace)
        #expect(try await Kit.list(keys.ready("alpha"), reader).count == 1)
        #expect(try await reader.send("ZCARD", keys.delayed("alpha")) == .integer(1))
    }
}
