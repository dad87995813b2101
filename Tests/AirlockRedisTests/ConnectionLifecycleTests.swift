import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Failure and recovery paths; each test that disturbs its server gets its own.
@Suite("RedisClient connection lifecycle")
struct ConnectionLifecycleTests {
    typealias Kit = ConnectionTestKit

    @Test func refusedConnectionFailsFast() async throws {
        let port = try RedisServer.closedPort()
        let client = try Kit.client("redis://127.0.0.1:\(port)")
        // Refused (ECONNREFUSED at once), not timed out: nothing waited for the connect timeout.
        let error = await #expect(throws: RedisError.self) { try await client.connect() }
        #expect(error?.kind == .connectionRefused)
        #expect(error?.mayHaveBeenApplied == false)
        #expect(error?.isConnectionProblem == true)
        #expect(error?.description.contains("127.0.0.1:\(port)") == true)
        #expect(error?.description.contains("is redis-server running") == true)

        // A command also reports the refusal (after backoff), it does not hang.
        let again = await #expect(throws: RedisError.self) { try await client.send("PING") }
        #expect(again?.kind == .connectionRefused)
        await client.close()
    }

    @Test func missingUnixSocketIsRefused() async throws {
        let client = try Kit.client("unix:///tmp/airlock-no-such-\(RedisServer.uniqueNamespace("sock")).sock")
        let error = await #expect(throws: RedisError.self) { try await client.send("PING") }
        #expect(error?.kind == .connectionRefused)
        await client.close()
    }

    @Test func nonRedisPeerIsAProtocolError() async throws {
        let fake = try FakePeer(reply: Array("HTTP/1.1 400 Bad Request\r\n\r\n".utf8))
        let client = try Kit.client("redis://127.0.0.1:\(fake.port)")
        let error = await #expect(throws: RedisError.self) { try await client.connect() }
        #expect(error?.kind == .protocolError)
        #expect(error?.description.contains("really a Redis server") == true, "\(String(describing: error))")
        await client.close()
    }

    @Test func silentPeerTimesOutInTheHandshakeBeforeAnythingIsSent() async throws {
        let silent = try FakePeer(reply: nil)
        let client = try Kit.client("redis://127.0.0.1:\(silent.port)") { $0.commandTimeout = .milliseconds(300) }
        let error = await #expect(throws: RedisError.self) { try await client.send("SET", "k", "v") }
        #expect(error?.kind == .timedOut)
        #expect(error?.mayHaveBeenApplied == false, "the SET was never written: \(String(describing: error))")
        await client.close()
    }

    @Test func requirepassAcceptsRightPasswordAndRejectsWrongOne() async throws {
        let password = "s3cret p@ss:/%"
        let server = try await RedisServer.start(.init(password: password))

        let good = try Kit.client(server.url(password: password))
        try await good.connect()
        #expect(try await good.send("PING") == .status("PONG"))

        let wrong = try Kit.client(server.url(password: "nope"))
        let error = await #expect(throws: RedisError.self) { try await wrong.connect() }
        #expect(error?.kind == .authenticationFailed)
        #expect(error?.isConnectionProblem == false)
        #expect(error?.description.contains("WRONGPASS") == true)
        #expect(error?.description.contains("user 'default'") == true)
        #expect(error?.description.contains("nope") == false)
        // Reported again on the next call, not retried forever and not masked.
        let second = await #expect(throws: RedisError.self) { try await wrong.send("PING") }
        #expect(second?.kind == .authenticationFailed)

        let missing = try Kit.client(server.url)
        let noAuth = await #expect(throws: RedisError.self) { try await missing.send("PING") }
        #expect(noAuth?.kind == .authenticationFailed)
        #expect(noAuth?.description.contains("NOAUTH") == true)
        for client in [good, wrong, missing] { await client.close() }
    }

    @Test func aclUserAndPasswordWork() async throws {
        let server = try await RedisServer.start(.init(extraConfig: ["user alice on >alice-pw ~* &* +@all"]))
        let alice = try Kit.client(server.url(username: "alice", password: "alice-pw", database: 1))
        #expect(try await alice.send("ACL", "WHOAMI").string == "alice")

        let impostor = try Kit.client(server.url(username: "alice", password: "bad"))
        let error = await #expect(throws: RedisError.self) { try await impostor.connect() }
        #expect(error?.kind == .authenticationFailed)
        #expect(error?.description.contains("user 'alice'") == true)
        for client in [alice, impostor] { await client.close() }
    }

    @Test func reconnectsAfterServerRestart() async throws {
        let server = try await RedisServer.start()
        let client = try Kit.client(server.url)
        _ = try await client.send("SET", "before", "1")

        try await RedisServer.offPool { try server.restart() }

        // The old socket is dead, which the client notices before writing to it, so even
        // the first command goes through on a fresh connection of the same client.
        #expect(try await client.send("PING") == .status("PONG"))
        #expect(try await client.send("CLIENT", "ID").int != nil)
        #expect(try await client.send("SET", "after", "2") == .status("OK"))
        await client.close()
    }

    @Test func connectionKilledMidCommandIsReportedNotResent() async throws {
        let server = try await RedisServer.shared()
        let key = RedisServer.uniqueNamespace("killed")
        let victim = try Kit.client(server.url, name: key)
        let killer = try Kit.client(server.url)
        try await victim.connect()

        // The victim blocks in BLPOP; killing its connection breaks an in-flight command.
        async let blocked = Self.outcome { () async throws(RedisError) -> RedisReply in try await victim.send("BLPOP", key, "5") }
        var killed = 0
        for _ in 0..<400 where killed == 0 {
            let list = try await killer.send("CLIENT", "LIST").string ?? ""
            if list.split(whereSeparator: \.isNewline).contains(where: { $0.contains(" name=\(key) ") && $0.contains(" cmd=blpop ") }) {
                killed = try await killer.send("CLIENT", "KILL", "ID",
                                                String(Self.clientID(named: key, in: list) ?? -1)).int ?? 0
            } else {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        #expect(killed == 1)
        let outcome = await blocked
        guard case .failure(let error) = outcome else {
            Issue.record("BLPOP on a killed connection returned \(outcome)")
            return
        }
        #expect(error.kind == RedisError.Kind.connectionClosed, "\(error)")
        #expect(error.mayHaveBeenApplied)
        // Nothing was re-sent behind our back, and the next call reconnects.
        #expect(try await victim.send("PING") == .status("PONG"))
        for client in [victim, killer] { await client.close() }
    }

    private static func outcome(_ body: () async throws(RedisError) -> RedisReply) async -> Result<RedisReply, RedisError> {
        do { return .success(try await body()) } catch { return .failure(error) }
    }

    private static func clientID(named name: String, in list: String) -> Int? {
        for line in list.split(whereSeparator: \.isNewline) where line.contains(" name=\(name) ") {
            for field in line.split(separator: " ") where field.hasPrefix("id=") {
                return Int(field.dropFirst(3))
            }
        }
        return nil
    }

    @Test func recoversWhenServerComesBackAfterOutage() async throws {
        let server = try await RedisServer.start()
        let client = try Kit.client(server.url)
        #expect(try await client.send("PING") == .status("PONG"))

        try await RedisServer.offPool { server.kill9() }
        var failures: [RedisError] = []
        for _ in 0..<2 {
            do { _ = try await client.send("PING") } catch { failures.append(error) }
        }
        #expect(failures.count == 2)
        #expect(failures.allSatisfy { $0.isConnectionProblem }, "\(failures)")
        #expect(failures.last?.kind == .connectionRefused)

        try await RedisServer.offPool { try server.restart() }
        #expect(try await client.send("PING") == .status("PONG"))
        await client.close()
    }

    @Test func commandTimeoutDropsConnectionAndNextCommandRecovers() async throws {
        let server = try await RedisServer.start()
        let client = try Kit.client(server.url) { $0.commandTimeout = .milliseconds(300) }
        try await client.connect()

        // The reply (after 2 s) never arrives within the 300 ms timeout: timed out, not answered.
        let error = await #expect(throws: RedisError.self) { try await client.send("DEBUG", "SLEEP", "2") }
        #expect(error?.kind == .timedOut)
        #expect(error?.mayHaveBeenApplied == true)
        #expect(error?.description.contains("0.3 s") == true)

        // The server is still asleep, so reconnect attempts may time out too; the same
        // client must get through once it wakes up (bounded, real condition).
        var reply: RedisReply?
        var attempts = 0
        while reply == nil && attempts < 40 {
            attempts += 1
            do {
                reply = try await client.send("PING")
            } catch {
                #expect(error.isConnectionProblem, "\(error)")
            }
        }
        #expect(reply == .status("PONG"))
        await client.close()
    }

    @Test func perCallAndBlockingTimeoutsOutlastCommandTimeout() async throws {
        let server = try await RedisServer.start()
        let client = try Kit.client(server.url) { $0.commandTimeout = .milliseconds(200) }
        #expect(try await client.send(RedisCommand("DEBUG", "SLEEP", "0.5"), timeout: .seconds(3)) == .status("OK"))

        // The server answers nil only once its 1 s BLPOP timeout has passed, five times the 200 ms
        // command timeout; had that one applied, the client would have dropped the connection
        // (and the next call would arrive on a new one, with a new CLIENT ID).
        let before = try await client.send("CLIENT", "ID").int
        let popped = try await client.send(.blpop([Array(RedisServer.uniqueNamespace("empty").utf8)], timeout: .seconds(1)))
        #expect(popped.isNull)
        #expect(try await client.send("CLIENT", "ID").int == before, "the same connection: no client-side timeout fired")
        // After the long calls the normal timeout is back in force.
        let error = await #expect(throws: RedisError.self) { try await client.send("DEBUG", "SLEEP", "0.6") }
        #expect(error?.kind == .timedOut)
        await client.close()
    }
}

/// A loopback peer that is not Redis: it answers the first request with `reply`
/// (e.g. HTTP), or with nothing at all when `reply` is nil.
private final class FakePeer: Sendable {
    let port: Int
    private let listener: Int32

    init(reply: [UInt8]?) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        listener = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 4) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        try #require(ok, "could not listen on loopback")
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread {
            let connection = accept(fd, nil, nil)
            guard connection >= 0 else { return }
            var buffer = [UInt8](repeating: 0, count: 256)
            _ = recv(connection, &buffer, buffer.count, 0)
            if let reply {
                _ = send(connection, reply, reply.count, Int32(MSG_NOSIGNAL))
            } else {
                while recv(connection, &buffer, buffer.count, 0) > 0 {} // silent until the client hangs up
            }
            close(connection)
        }.start()
    }

    deinit {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
}
