import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// Sentinel resolution against a fake sentinel the test steers (Tests/Support/FakeSentinel.swift)
/// and real redis-servers: what real sentinels cannot be made to do on cue — name a replica,
/// forget the master, keep a demoted master's clients connected.
@Suite("Sentinel: resolving and following the master", .timeLimit(.minutes(5)))
struct SentinelTests {
    private static func client(_ url: String, configure: (inout RedisConfiguration) -> Void = { _ in }) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: url)
        configuration.reconnectBackoff = Backoff(initial: .milliseconds(10), maximum: .milliseconds(100))
        configure(&configuration)
        return RedisClient(configuration: configuration, logger: WorkerKit.quiet)
    }

    private static func port(of client: RedisClient) async throws -> Int? {
        let reply = try await client.send("CONFIG", "GET", "port")
        return reply.array?.last?.int
    }

    @Test func writesFollowAMasterDemotedUnderTheirFeet() async throws {
        let a = try await RedisServer.start()
        let b = try await RedisServer.start()
        let sentinel = try FakeSentinel(answering: a.port)
        let url = "redis+sentinel://127.0.0.1:\(sentinel.port)/mymaster/0"
        let client = try Self.client(url)
        let blocked = try Self.client(url)
        let key = RedisServer.uniqueNamespace("demoted")
        _ = try await client.send("SET", key + ":before", "on a")
        #expect(try await Self.port(of: client) == a.port)

        // A waits in BLPOP on A when A is demoted; the sentinel already names B.
        async let popped = blocked.send(.blpop([Array((key + ":list").utf8)], timeout: .seconds(20)))
        let direct = try Self.client(a.url)
        try await WorkerKit.eventually("the BLPOP to block on A") {
            let clients = try await direct.send("INFO", "clients").text()
            return clients.contains("blocked_clients:1")
        }
        sentinel.name(port: b.port)
        // REPLICAOF keeps A's clients connected (sentinels also kill them; a partitioned master
        // rejoining late does not): writes get READONLY, the blocked pop UNBLOCKED.
        _ = try await direct.send("REPLICAOF", "127.0.0.1", String(b.port))
        try await WorkerKit.eventually("A to be a replica") { try await direct.send("ROLE").array?.first?.string == "slave" }

        _ = try await client.send("SET", key + ":after", "on b")
        #expect(try await Self.port(of: client) == b.port, "the write went to the new master")
        let onB = try Self.client(b.url)
        #expect(try await onB.send("GET", key + ":after").string == "on b")
        _ = try await onB.send("LPUSH", key + ":list", "released")
        let pop = try await popped
        #expect(pop.array?.last?.string == "released", "the released BLPOP was sent again, to B: \(pop)")
        #expect(sentinel.questions >= 3, "each connect asked the sentinel")
        for c in [client, blocked, direct, onB] { await c.close() }
    }

    @Test func aReplicaTheSentinelNamesIsRefusedUntilItNamesTheMaster() async throws {
        let master = try await RedisServer.start()
        let replica = try await RedisServer.start(.init(extraConfig: ["replicaof 127.0.0.1 \(master.port)"]))
        let sentinel = try FakeSentinel(answering: replica.port)
        let client = try Self.client("redis+sentinel://127.0.0.1:\(sentinel.port)/mymaster/0")
        let error = await #expect(throws: RedisError.self) { try await client.send("SET", "k", "v") }
        #expect(error?.kind == .notMaster, "\(String(describing: error))")
        #expect(error?.isConnectionProblem == true, "a failover under way: retried, not fatal")
        #expect(error?.mayHaveBeenApplied == false)
        #expect(error?.description.contains("mymaster") == true)

        sentinel.name(port: master.port)
        #expect(try await client.send("SET", RedisServer.uniqueNamespace("named"), "v") == .status("OK"))
        #expect(try await Self.port(of: client) == master.port)
        await client.close()
    }

    @Test func aMasterNoSentinelKnowsIsAConfigurationProblem() async throws {
        let sentinel = try FakeSentinel(answering: nil)
        let client = try Self.client("redis+sentinel://127.0.0.1:\(sentinel.port)/mymaster")
        let error = await #expect(throws: RedisError.self) { try await client.connect() }
        #expect(error?.kind == .unknownMaster, "\(String(describing: error))")
        #expect(error?.isConfigurationProblem == true)
        #expect(error?.description.contains("'mymaster'") == true)
        await client.close()

        let wrongName = try Self.client("redis+sentinel://127.0.0.1:\(sentinel.port)/othermaster")
        #expect(await #expect(throws: RedisError.self) { try await wrongName.connect() }?.kind == .unknownMaster)
        await wrongName.close()
    }

    @Test func sentinelsAreAskedInTurnAndTheirPasswordIsChecked() async throws {
        let master = try await RedisServer.start()
        let guarded = try FakeSentinel(answering: master.port, password: "sentinel-secret")
        let dead = try RedisServer.closedPort()
        // The first sentinel is down; the second answers once authenticated.
        let base = "redis+sentinel://127.0.0.1:\(dead),127.0.0.1:\(guarded.port)/mymaster/0"
        let good = try Self.client(base + "?sentinel_password=sentinel-secret")
        #expect(try await good.send("PING") == .status("PONG"))
        #expect(try await Self.port(of: good) == master.port)
        await good.close()

        for query in ["", "?sentinel_password=wrong"] {
            let client = try Self.client(base + query)
            let error = await #expect(throws: RedisError.self) { try await client.connect() }
            #expect(error?.kind == .authenticationFailed, "\(query): \(String(describing: error))")
            #expect(error?.isConfigurationProblem == true)
            #expect(error?.description.contains("sentinel_password") == true, "\(String(describing: error))")
            await client.close()
        }

        let nobody = try Self.client("redis+sentinel://127.0.0.1:\(dead),127.0.0.1:\(try RedisServer.closedPort())/mymaster")
        let unreachable = await #expect(throws: RedisError.self) { try await nobody.connect() }
        #expect(unreachable?.kind == .connectionRefused, "\(String(describing: unreachable))")
        #expect(unreachable?.isConnectionProblem == true)
        #expect(unreachable?.description.contains("Could not ask any sentinel") == true, "\(String(describing: unreachable))")
        await nobody.close()
    }
}
