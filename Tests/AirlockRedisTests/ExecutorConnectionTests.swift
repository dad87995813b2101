import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// The executor's connection: authentication, surviving a Redis restart, and not connecting at all
/// when there is nothing to send.
@Suite("RedisExecutor connection handling", .timeLimit(.minutes(5)))
struct ExecutorConnectionTests {
    typealias Kit = ExecutorTestKit

    // MARK: Authentication

    @Test func authenticatedFlushSucceeds() async throws {
        let password = "s3cret p@ss:/word"
        let server = try await RedisServer.start(RedisServer.Options(password: password))
        let fixture = try await ExecutorFixture.make("conn-auth", server: server, password: password)
        let intent = try await fixture.flush { try Airlock.enqueue(name: "secured") }
        #expect(try await fixture.readyEnvelopes("default").map(\.id) == [Kit.wireID(intent)])

        // The URL initializer carries the password too.
        let fromURL = try Kit.executor(url: server.url(password: password), namespace: fixture.namespace)
        try await Kit.flush(to: fromURL) { try Airlock.enqueue(name: "secured.2") }
        #expect(try await fixture.readyEnvelopes("default").count == 2)
    }

    @Test(arguments: ["wrong-password", nil] as [String?])
    func wrongOrMissingPasswordIsAnAuthenticationFailure(password: String?) async throws {
        let server = try await RedisServer.start(RedisServer.Options(password: "right-password"))
        let url = password.map { server.url(password: $0) } ?? server.url
        let executor = try Kit.executor(url: url, namespace: RedisServer.uniqueNamespace("conn-badauth"))
        let failure = await Kit.dispatchFailure {
            try await Kit.flush(to: executor) { try Airlock.enqueue(name: "denied") }
        }
        let (error, underlying) = try #require(failure)
        #expect(underlying.kind == .notWritten, "\(underlying)")
        #expect(underlying.redisError?.kind == .authenticationFailed, "\(underlying)")
        #expect(error.notDispatched.map(\.taskName) == ["denied"])
        #expect(!error.description.contains("right-password"))
        let reader = try Kit.client(server.url(password: "right-password"))
        #expect(try await reader.send("DBSIZE") == .integer(0))
    }

    @Test func serverThatNeverAnswersTheHandshakeIsNotWritten() async throws {
        // The connection opens but the handshake (CLIENT SETNAME) never gets a reply, so the
        // enqueue script was never sent: the batch was certainly not written. Reporting
        // `.outcomeUnknown` here would make callers treat a clean failure as possibly applied.
        let listener = try ExecutorSilentListener()
        var configuration = RedisConfiguration(port: listener.port)
        configuration.connectTimeout = .milliseconds(300)
        configuration.commandTimeout = .milliseconds(300)
        let client = RedisClient(configuration: configuration, name: "executor-under-test", logger: Kit.quiet)
        let executor = RedisExecutor(client: client, namespace: "t-silent", logger: Kit.quiet)
        let failure = await Kit.dispatchFailure { try await Kit.flush(to: executor) { try Airlock.enqueue(name: "never.sent") } }
        let (error, underlying) = try #require(failure)
        #expect(underlying.redisError?.kind == .timedOut, "\(underlying)")
        #expect(underlying.kind == .notWritten, "nothing was sent, so nothing can have been written: \(underlying)")
        #expect(error.notDispatched.map(\.taskName) == ["never.sent"])
    }

    // MARK: Restart

    @Test func sameExecutorWorksAgainAfterARedisRestart() async throws {
        let server = try await RedisServer.start()
        let fixture = try await ExecutorFixture.make("conn-restart", server: server)
        try await fixture.flush { try Airlock.enqueue(name: "before.restart") }
        #expect(try await fixture.ready("default").count == 1)

        try await RedisServer.offPool { try server.restart() }

        // The old connection is dead: the first flush may fail with a connection error (never with
        // anything else), a later one goes through on a fresh connection with the same executor.
        // The idempotency key makes the retries safe even when an outcome is unknown.
        var failures: [RedisExecutorError] = []
        var queued: Intent?
        for _ in 0..<20 {
            do {
                queued = try await fixture.flush {
                    try Airlock.enqueue(name: "after.restart", options: DispatchOptions(idempotencyKey: "after-restart"))
                }
                break
            } catch let error as DispatchError {
                let underlying = try #require(error.underlying as? RedisExecutorError, "\(error)")
                #expect(underlying.kind == .outcomeUnknown || underlying.kind == .notWritten, "\(underlying)")
                #expect(underlying.redisError?.isConnectionProblem == true, "\(underlying)")
                failures.append(underlying)
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let intent = try #require(queued, "no flush succeeded after the restart; failures: \(failures)")
        #expect(failures.count <= 2, "reconnecting should take at most one failed attempt or two: \(failures)")
        // The restarted server does not persist, so only the post-restart job is there. (The
        // fixture's reader lost its connection in the restart too; read with a fresh one.)
        let reader = try Kit.client(server.url)
        let stored = try await Kit.list(fixture.keys.ready("default"), reader).map { try Envelope.decode($0) }
        #expect(stored.map(\.task) == ["after.restart"])
        #expect(stored.first?.id == Kit.wireID(intent))
    }

    @Test func flushAfterScriptCacheIsFlushedReloadsTheScript() async throws {
        let server = try await RedisServer.start()
        let fixture = try await ExecutorFixture.make("conn-noscript", server: server)
        try await fixture.flush { try Airlock.enqueue(name: "one") }
        try await fixture.command("SCRIPT", "FLUSH")
        try await fixture.flush { try Airlock.enqueue(name: "two") }
        #expect(try await fixture.readyEnvelopes("default").map(\.task) == ["two", "one"])
    }

    // MARK: Nothing to send

    @Test func emptyScopeNeverTouchesRedis() async throws {
        // Pointing at a port nobody listens on: any Redis call would fail the flush.
        let executor = try Kit.executor(url: "redis://127.0.0.1:\(try Kit.deadPort())/0", namespace: "t-empty")
        try await Kit.flush(to: executor) {}
        #expect(try await executor.enqueue([]) == [])
        try await executor.dispatch([])
        // A scope whose every intent a policy drops sends nothing either.
        try await Airlock.scope(policy: DropAll(), executor: executor, behavior: DefaultScopeBehavior()) {
            _ = try Airlock.enqueue(name: "dropped")
        }
        // A scope whose body fails discards its intents.
        struct BodyFailed: Error {}
        await #expect(throws: BodyFailed.self) {
            try await Kit.flush(to: executor) {
                try Airlock.enqueue(name: "discarded")
                throw BodyFailed()
            }
        }
    }

    @Test func emptyScopeMakesNoCommandOnARealServer() async throws {
        let server = try await RedisServer.start()
        let fixture = try await ExecutorFixture.make("conn-empty", server: server)
        try await fixture.command("CONFIG", "RESETSTAT")
        try await fixture.flush {}
        _ = try await fixture.executor.enqueue([])
        let stats = try #require(try await fixture.command("INFO", "commandstats").string)
        #expect(!stats.contains("cmdstat_evalsha"), "\(stats)")
        #expect(!stats.contains("cmdstat_eval:"), "\(stats)")
        #expect(try await fixture.command("DBSIZE") == .integer(0))
        // The executor's client never even connected.
        let clients = try #require(try await fixture.command("CLIENT", "LIST").string)
        #expect(!clients.contains("name=executor-under-test"), "\(clients)")
    }
}
