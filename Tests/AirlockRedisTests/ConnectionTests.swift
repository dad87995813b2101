import AirlockRedis
import AirlockTestSupport
import Testing

/// Small helpers for the Connection* suites (namespaced: other suites share this module).
enum ConnectionTestKit {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    static func client(_ url: String, name: String? = nil, configure: (inout RedisConfiguration) -> Void = { _ in }) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: url)
        configure(&configuration)
        return RedisClient(configuration: configuration, name: name)
    }
}

@Suite("RedisClient against the shared redis-server")
struct ConnectionTests {
    typealias Kit = ConnectionTestKit

    @Test func setGetIsBinarySafe() async throws {
        let server = try await RedisServer.shared()
        let client = try Kit.client(server.url)
        let key = Kit.bytes(RedisServer.uniqueNamespace("binary") + ":k")
        let value: [UInt8] = [0x00, 0xFF, 0xFE, 0x00, 0xC3, 0x28, 0x0D, 0x0A, 0x24, 0x2D, 0x00]

        #expect(try await client.send([Kit.bytes("SET"), key, value]) == .status("OK"))
        let reply = try await client.send([Kit.bytes("GET"), key])
        #expect(reply == .bulk(value))
        #expect(reply.bytes == value)
        #expect(try await client.send([Kit.bytes("STRLEN"), key]).int == value.count)
        #expect(try await client.send([Kit.bytes("GET"), key + [0x00]]).isNull)
        await client.close()
    }

    @Test func oneMebibyteValueRoundTrips() async throws {
        let server = try await RedisServer.shared()
        let client = try Kit.client(server.url)
        let key = Kit.bytes(RedisServer.uniqueNamespace("big"))
        let value = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }

        _ = try await client.send([Kit.bytes("SET"), key, value])
        let reply = try await client.send([Kit.bytes("GET"), key])
        #expect(reply.bytes?.count == 1 << 20)
        #expect(reply.bytes == value)
        await client.close()
    }

    @Test func pipelinesAThousandIncrements() async throws {
        let server = try await RedisServer.shared()
        let client = try Kit.client(server.url)
        let key = Kit.bytes(RedisServer.uniqueNamespace("incr"))
        let commands = Array(repeating: [Kit.bytes("INCR"), key], count: 1000)

        let replies = try await client.pipeline(commands)
        #expect(replies.count == 1000)
        #expect(replies.first == .integer(1))
        #expect(replies.last == .integer(1000))
        #expect(replies.map { $0.int ?? -1 } == Array(1...1000))
        #expect(try await client.send([Kit.bytes("GET"), key]).int == 1000)
        #expect(try await client.pipeline([RedisCommand]()).isEmpty)
        await client.close()
    }

    @Test func multiExecRepliesComeBackInPlace() async throws {
        let server = try await RedisServer.shared()
        let client = try Kit.client(server.url)
        let ns = RedisServer.uniqueNamespace("multi")
        let list = Kit.bytes(ns + ":list")
        let string = Kit.bytes(ns + ":string")
        _ = try await client.send([Kit.bytes("SET"), string, Kit.bytes("x")])

        let replies = try await client.pipeline([
            [Kit.bytes("MULTI")],
            [Kit.bytes("RPUSH"), list, Kit.bytes("a"), Kit.bytes("b")],
            [Kit.bytes("LPUSH"), string, Kit.bytes("oops")], // WRONGTYPE at EXEC time
            [Kit.bytes("LRANGE"), list, Kit.bytes("0"), Kit.bytes("-1")],
            [Kit.bytes("EXEC")],
        ])
        #expect(replies[0] == .status("OK"))
        #expect(replies[1...3].allSatisfy { $0 == .status("QUEUED") })
        let exec = try #require(replies[4].array)
        #expect(exec.count == 3)
        #expect(exec[0] == .integer(2))
        #expect(exec[1].errorMessage?.hasPrefix("WRONGTYPE") == true)
        #expect(exec[2] == .array([.bulk(Kit.bytes("a")), .bulk(Kit.bytes("b"))]))

        // A syntax error inside a pipeline is returned in place, not thrown.
        let mixed = try await client.pipeline([[Kit.bytes("PING")], [Kit.bytes("NOPE")], [Kit.bytes("PING")]])
        #expect(mixed[0] == .status("PONG"))
        #expect(mixed[1].errorMessage?.hasPrefix("ERR unknown command") == true)
        #expect(mixed[2] == .status("PONG"))
        await client.close()
    }

    @Test func serverErrorsAreThrownWithRedisText() async throws {
        let server = try await RedisServer.shared()
        let client = try Kit.client(server.url)
        let unknown = await #expect(throws: RedisError.self) { try await client.send("NOPE", "x") }
        #expect(unknown?.kind == .server)
        #expect(unknown?.message.hasPrefix("ERR unknown command 'NOPE'") == true)
        #expect(unknown?.serverErrorCode == "ERR")
        #expect(unknown?.isConnectionProblem == false)

        let key = RedisServer.uniqueNamespace("wrongtype")
        _ = try await client.send("SET", key, "v")
        let wrongType = await #expect(throws: RedisError.self) { try await client.send("LPUSH", key, "x") }
        #expect(wrongType?.serverErrorCode == "WRONGTYPE")
        // The connection is still fine after an error reply.
        #expect(try await client.send("PING") == .status("PONG"))

        // A malformed request is refused before anything is written, so later replies stay aligned.
        let empty = await #expect(throws: RedisError.self) { try await client.pipeline([[Kit.bytes("SET"), Kit.bytes(key), Kit.bytes("w")], []]) }
        #expect(empty?.kind == .protocolError)
        #expect(try await client.send("GET", key).string == "v")
        await client.close()
    }

    @Test func scriptsReloadAfterScriptFlush() async throws {
        // SCRIPT FLUSH is server-wide: on the shared server it would pull scripts from under other suites.
        let server = try await RedisServer.start()
        let client = try Kit.client(server.url)
        let ns = RedisServer.uniqueNamespace("script")
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1]) -- \(ns)")

        _ = try await client.send("SCRIPT", "FLUSH")
        #expect(try await client.send("SCRIPT", "EXISTS", script.sha1) == .array([.integer(0)]))
        #expect(try await client.evalScript(script, keys: [Kit.bytes(ns)], args: [Kit.bytes("5")]) == .integer(5))
        #expect(try await client.send("SCRIPT", "EXISTS", script.sha1) == .array([.integer(1)]))

        _ = try await client.send("SCRIPT", "FLUSH")
        #expect(try await client.evalScript(script, keys: [Kit.bytes(ns)], args: [Kit.bytes("2")]) == .integer(7))

        let failing = RedisScript("return redis.error_reply('BOOM custom failure')")
        let error = await #expect(throws: RedisError.self) { try await client.evalScript(failing, keys: [], args: []) }
        #expect(error?.kind == .server)
        #expect(error?.message.contains("BOOM custom failure") == true)
        await client.close()
    }

    @Test(arguments: [0, 1, 55, 56, 63, 64, 65, 119, 1000])
    func sha1MatchesScriptLoad(length: Int) async throws {
        let server = try await RedisServer.shared()
        let client = try Kit.client(server.url)
        let prefix = "return 1 --"
        // Lengths straddle SHA-1's 55/56/64-byte padding boundaries; the longest is non-ASCII.
        let body = prefix + String(repeating: "x", count: max(0, length - prefix.utf8.count)) + (length == 1000 ? " é✓" : "")
        let script = RedisScript(body)
        let reply = try await client.send("SCRIPT", "LOAD", body)
        #expect(reply.string == script.sha1)
        #expect(script.sha1.count == 40)
        await client.close()
    }

    @Test func selectsDatabaseFromURL() async throws {
        let server = try await RedisServer.shared()
        let db3 = try Kit.client(server.url(database: 3))
        let db3Observer = try Kit.client(server.url(database: 3))
        let db0 = try Kit.client(server.url(database: 0))
        let key = RedisServer.uniqueNamespace("select")

        _ = try await db3.send("SET", key, "in-three")
        #expect(try await db3Observer.send("GET", key).string == "in-three")
        #expect(try await db0.send("EXISTS", key) == .integer(0))
        for client in [db3, db3Observer, db0] { await client.close() }
    }

    @Test func clientNameIsVisibleInClientList() async throws {
        let server = try await RedisServer.shared()
        let name = RedisServer.uniqueNamespace("named")
        let client = try Kit.client(server.url, name: name)
        #expect(try await client.send("CLIENT", "GETNAME").string == name)
        let list = try #require(try await client.send("CLIENT", "LIST").string)
        #expect(list.contains("name=\(name) "))

        let configured = try Kit.client(server.url + "?name=\(name)-cfg", name: "ignored")
        #expect(try await configured.send("CLIENT", "GETNAME").string == "\(name)-cfg")
        for client in [client, configured] { await client.close() }
    }

    @Test func connectsOverUnixSocket() async throws {
        // A server of its own: the shared one may be an external TCP-only server (AIRLOCK_TEST_REDIS_URL).
        let server = try await RedisServer.start()
        let path = try #require(server.unixSocketPath, "a test server listens on a unix socket")
        let client = try Kit.client("unix://\(path)?db=2")
        let key = RedisServer.uniqueNamespace("unix")
        _ = try await client.send("SET", key, "via-socket")
        let tcp = try Kit.client(server.url(database: 2))
        #expect(try await tcp.send("GET", key).string == "via-socket")
        for client in [client, tcp] { await client.close() }
    }

    @Test func scriptCallsGoInOneRoundTripAndAForgottenScriptIsReloadedOnce() async throws {
        let server = try await RedisServer.start()   // SCRIPT FLUSH must not disturb other suites
        let client = try Kit.client(server.url)
        let key = Kit.bytes(RedisServer.uniqueNamespace("scripts"))
        let add = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        let echo = RedisScript("return ARGV[1]")
        let calls = [add.call(keys: [key], arguments: [Kit.bytes("1")]), echo.call(keys: [], arguments: [Kit.bytes("hi")]),
                     add.call(keys: [key], arguments: [Kit.bytes("10")])]
        #expect(try await client.evaluate(calls) == [.integer(1), .bulk(Kit.bytes("hi")), .integer(11)], "NOSCRIPT at first: loaded and sent again")
        _ = try await client.send("SCRIPT", "FLUSH")
        #expect(try await client.evaluate(calls) == [.integer(12), .bulk(Kit.bytes("hi")), .integer(22)], "each call ran exactly once")
        // An error reply stays in place, the other calls' replies are kept.
        let failing = RedisScript("return redis.error_reply('no luck')")
        let mixed = try await client.evaluate([failing.call(keys: [], arguments: []), echo.call(keys: [], arguments: [Kit.bytes("ok")])])
        #expect(mixed[0].errorMessage == "no luck")
        #expect(mixed[1] == .bulk(Kit.bytes("ok")))
        let thrown = await #expect(throws: RedisError.self) { try await client.evalScript(failing, keys: [], args: []) }
        #expect(thrown?.kind == .server)
        await client.close()
    }

    @Test func closeThenSendIsNotConnected() async throws {
        let server = try await RedisServer.shared()
        let client = try Kit.client(server.url)
        try await client.connect()
        #expect(try await client.send("PING") == .status("PONG"))
        await client.close()
        await client.close() // idempotent

        let error = await #expect(throws: RedisError.self) { try await client.send("PING") }
        #expect(error?.kind == .notConnected)
        #expect(error?.isConnectionProblem == true)
        let pipelineError = await #expect(throws: RedisError.self) { try await client.pipeline([[Kit.bytes("PING")]]) }
        #expect(pipelineError?.kind == .notConnected)
        let scriptError = await #expect(throws: RedisError.self) {
            try await client.evaluate([RedisScript("return 1").call(keys: [], arguments: [])])
        }
        #expect(scriptError?.kind == .notConnected)
    }
}
