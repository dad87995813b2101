import AirlockRedis
import AirlockTestSupport
import Testing

@Suite("RedisClient threading")
struct ConnectionConcurrencyTests {
    typealias Kit = ConnectionTestKit

    /// The reason each client owns a thread: blocking commands must not occupy the (2-thread)
    /// cooperative pool. Four clients block in Redis with no timeout; were they blocking pool
    /// threads, nothing else could run until they returned — and they only return when the test
    /// task itself pushes to their key. The test finishing at all is the proof; no clock involved.
    @Test(.timeLimit(.minutes(5))) func blockingCommandsDoNotStarveTheCooperativePool() async throws {
        let server = try await RedisServer.start() // own server, so blocked_clients is exact
        let monitor = try Kit.client(server.url)
        let blockers = try (0..<4).map { try Kit.client(server.url, name: "blocker-\($0)") }
        let key = RedisServer.uniqueNamespace("filled-by-the-test")

        try await withThrowingTaskGroup(of: RedisReply.self) { group in
            for blocker in blockers {
                group.addTask { try await blocker.send(.blpop([Array(key.utf8)], timeout: .zero)) }
            }
            // Real condition: all four are blocked inside Redis right now.
            var blocked = 0
            while blocked < 4 {
                let info = try await monitor.send("INFO", "clients").string ?? ""
                blocked = Self.field("blocked_clients", in: info) ?? 0
                if blocked < 4 { try await Task.sleep(for: .milliseconds(5)) }
            }
            // While they block: timers fire and other tasks run on the pool.
            try await Task.sleep(for: .milliseconds(50))
            let sums = await withTaskGroup(of: Int.self) { work in
                for n in 1...8 { work.addTask { (1...n * 1000).reduce(0, +) } }
                return await work.reduce(0, +)
            }
            #expect(sums == (1...8).reduce(0) { $0 + ($1 * 1000) * ($1 * 1000 + 1) / 2 })
            _ = try await monitor.send("RPUSH", key, "a", "b", "c", "d")
            var results: [RedisReply] = []
            for try await result in group { results.append(result) }
            #expect(results.count == 4)
            #expect(Set(results.compactMap { $0.array?.last?.string }) == ["a", "b", "c", "d"], "each blocker got one element")
        }
        for client in blockers + [monitor] { await client.close() }
    }

    @Test func concurrentCallsOnOneClientAllComplete() async throws {
        let server = try await RedisServer.shared()
        let client = try Kit.client(server.url)
        let key = RedisServer.uniqueNamespace("concurrent")
        let values = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<200 {
                group.addTask { try await client.send("INCR", key).int ?? -1 }
            }
            var values: [Int] = []
            for try await value in group { values.append(value) }
            return values
        }
        #expect(values.sorted() == Array(1...200))
        await client.close()
    }

    @Test func aCancelledCallersBlockingCommandFinishesAndTheClientStaysUsable() async throws {
        let server = try await RedisServer.shared()
        let key = RedisServer.uniqueNamespace("cancel")
        let client = try Kit.client(server.url, name: key)
        let task = Task { try await client.send(.blpop([Array(key.utf8)], timeout: .milliseconds(300))) }
        let monitor = try Kit.client(server.url)
        #expect(try await Self.waitUntilBlocked(name: key, monitor: monitor))
        task.cancel()
        // hiredis cannot interrupt a sent command: it ends by its own timeout, its reply intact.
        #expect(try await task.value.isNull)
        #expect(try await client.send("PING") == .status("PONG"))
        for client in [client, monitor] { await client.close() }
    }

    @Test func closeWaitsForQueuedWorkAndRejectsLaterCalls() async throws {
        let server = try await RedisServer.shared()
        let key = RedisServer.uniqueNamespace("close")
        let client = try Kit.client(server.url, name: key)
        async let queued = client.send("BLPOP", key, "0.3")
        // close() must come after the BLPOP was queued: wait until Redis sees it blocking.
        let monitor = try Kit.client(server.url)
        #expect(try await Self.waitUntilBlocked(name: key, monitor: monitor))
        await client.close()
        #expect(try await queued.isNull)
        let error = await #expect(throws: RedisError.self) { try await client.send("PING") }
        #expect(error?.kind == .notConnected)
        await monitor.close()
    }

    /// Polls CLIENT LIST (bounded) until the client called `name` is inside a BLPOP.
    private static func waitUntilBlocked(name: String, monitor: RedisClient) async throws -> Bool {
        for _ in 0..<400 {
            let list = try await monitor.send("CLIENT", "LIST").string ?? ""
            let line = list.split(whereSeparator: \.isNewline).first { $0.contains(" name=\(name) ") }
            if let line, line.contains(" cmd=blpop ") { return true }
            try await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

    private static func field(_ name: String, in info: String) -> Int? {
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix(name + ":") {
            return Int(line.dropFirst(name.count + 1))
        }
        return nil
    }
}
