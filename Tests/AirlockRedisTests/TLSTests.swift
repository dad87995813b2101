import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Logging
import Testing

/// `rediss://` against a real redis-server with a TLS port, its CA and certificates made by
/// `openssl` at test time (Tests/Support/TLSRedisServer.swift).
@Suite("TLS: rediss:// against a TLS redis-server", .timeLimit(.minutes(5)))
struct TLSTests {
    private static func client(_ url: String, name: String? = nil, configure: (inout RedisConfiguration) -> Void = { _ in }) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: url)
        configure(&configuration)
        return RedisClient(configuration: configuration, name: name, logger: WorkerKit.quiet)
    }

    @Test func commandsPipelinesScriptsAndLargeValuesRoundTrip() async throws {
        let tls = try await TLSRedisServer.start()
        let client = try Self.client(tls.url())
        let key = RedisServer.uniqueNamespace("tls-big")
        // Larger than a TLS record (16 KiB) and than the read buffer: many records each way.
        let value = (0..<(1 << 20) + 17).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ $0 >> 9) }
        #expect(try await client.send("PING") == .status("PONG"))
        _ = try await client.send([Array("SET".utf8), Array(key.utf8), value])
        #expect(try await client.send([Array("GET".utf8), Array(key.utf8)]).bytes == value)

        let counter = RedisServer.uniqueNamespace("tls-incr")
        let replies = try await client.pipeline(Array(repeating: RedisCommand("INCR", counter), count: 1000))
        #expect(replies.map { $0.int ?? -1 } == Array(1...1000))

        let script = RedisScript("#!lua\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])")
        #expect(try await client.evalScript(script, keys: [Array(counter.utf8)], args: [Array("5".utf8)]) == .integer(1005))

        // What the TLS client wrote is what the plaintext port reads: one server.
        let plain = try Self.client(tls.plaintextURL)
        #expect(try await plain.send("GET", counter).int == 1005)
        await plain.close()
        await client.close()
    }

    @Test func enqueueAndDrainThroughTLS() async throws {
        let tls = try await TLSRedisServer.start()
        let harness = try await WorkerHarness.make("tls-drain", server: tls.server, url: tls.url())
        let tokens = (0..<50).map { "tls-\($0)" }
        try await harness.record(Array(tokens.prefix(25)))
        try await harness.withWorker(try harness.configuration()) { _ in
            try await harness.record(Array(tokens.suffix(25)))
            try await WorkerKit.eventually("50 jobs drained over TLS") { try await harness.recorded().count == 50 }
        }
        #expect(Set(try await harness.recorded()) == Set(tokens))
        #expect(try await harness.stats()["processed"] == 50)
    }

    @Test func aWrongCAIsAClearVerificationErrorAndAWorkerStopsInsteadOfRetrying() async throws {
        let tls = try await TLSRedisServer.start()
        let wrongCA = "rediss://127.0.0.1:\(tls.tlsPort)/0?tls_ca_file=\(tls.certificates.otherCAFile)"
        let client = try Self.client(wrongCA)
        let error = await #expect(throws: RedisError.self) { try await client.connect() }
        #expect(error?.kind == .tls, "\(String(describing: error))")
        #expect(error?.isConfigurationProblem == true)
        #expect(error?.isConnectionProblem == false)
        #expect(error?.mayHaveBeenApplied == false)
        #expect(error?.description.contains("certificate verify failed") == true, "\(String(describing: error))")
        #expect(error?.description.contains("tls_ca_file") == true, "\(String(describing: error))")
        await client.close()

        // A worker treats it as fatal: run() ends with the error instead of reconnecting every 50 ms.
        let before = Self.failedHandshakes(tls)
        let harness = try await WorkerHarness.make("tls-wrong-ca", server: tls.server, url: tls.plaintextURL)
        var setup = try harness.configuration()
        setup.redis = try RedisConfiguration(url: wrongCA)
        let run = WorkerRun(Worker(configuration: setup, registry: TaskRegistry(), logger: WorkerKit.quiet))
        let outcome = try await run.waitForExit(within: .seconds(30))
        let failure = try #require(outcome.failureValue as? RedisError, "\(outcome)")
        #expect(failure.kind == .tls)
        #expect(failure.isConfigurationProblem)
        try await WorkerKit.eventually("the server to log the refused handshake") { Self.failedHandshakes(tls) > before }
        let attempts = Self.failedHandshakes(tls) - before
        print("tls: a worker with the wrong CA stopped after \(attempts) TLS handshake(s) the server logged as failed")
        #expect(attempts < 5, "no retry storm: \(attempts) handshakes")
    }

    @Test func theServerNameIsVerifiedAndTheInsecureSwitchSkipsVerification() async throws {
        let tls = try await TLSRedisServer.start()
        // The certificate names 127.0.0.1 and localhost; anything else is refused...
        let mismatch = try Self.client(tls.url(query: "tls_server_name=redis.example.com"))
        let error = await #expect(throws: RedisError.self) { try await mismatch.connect() }
        #expect(error?.kind == .tls)
        #expect(error?.description.contains("certificate verify failed") == true, "\(String(describing: error))")
        #expect(error?.description.contains("redis.example.com") == true, "\(String(describing: error))")
        await mismatch.close()

        // ...a name the certificate carries is accepted (and sent as SNI)...
        let byName = try Self.client(tls.url(query: "tls_server_name=localhost"))
        #expect(try await byName.send("PING") == .status("PONG"))
        await byName.close()
        let localhost = try Self.client("rediss://localhost:\(tls.tlsPort)/0?tls_ca_file=\(tls.certificates.caFile)")
        #expect(try await localhost.send("PING") == .status("PONG"))
        await localhost.close()

        // ...and tls_insecure=true (tests only) accepts a certificate nothing vouches for.
        let insecure = try Self.client("rediss://127.0.0.1:\(tls.tlsPort)/0?tls_ca_file=\(tls.certificates.otherCAFile)&tls_insecure=true")
        #expect(try await insecure.send("PING") == .status("PONG"))
        await insecure.close()
        // Without a CA file the system's trust store is used, which does not know the test CA.
        let system = try Self.client("rediss://127.0.0.1:\(tls.tlsPort)/0")
        #expect(await #expect(throws: RedisError.self) { try await system.connect() }?.kind == .tls)
        await system.close()
    }

    @Test func mutualTLSNeedsAClientCertificateTheServerTrusts() async throws {
        let tls = try await TLSRedisServer.start(requireClientCertificates: true)
        let mutual = try Self.client(tls.mutualURL())
        #expect(try await mutual.send("PING") == .status("PONG"))
        let key = RedisServer.uniqueNamespace("mtls")
        _ = try await mutual.send("SET", key, "through mutual TLS")
        #expect(try await mutual.send("GET", key).string == "through mutual TLS")
        await mutual.close()

        let anonymous = try Self.client(tls.url())
        let missing = await #expect(throws: RedisError.self) { try await anonymous.connect() }
        #expect(missing?.kind == .tls, "\(String(describing: missing))")
        #expect(missing?.isConfigurationProblem == true)
        #expect(missing?.description.contains("requires a client certificate") == true, "\(String(describing: missing))")
        await anonymous.close()

        let stranger = try Self.client(tls.url(query: "tls_cert_file=\(tls.certificates.otherClientCertificate)&tls_key_file=\(tls.certificates.otherClientKey)"))
        let rejected = await #expect(throws: RedisError.self) { try await stranger.connect() }
        #expect(rejected?.kind == .tls, "\(String(describing: rejected))")
        #expect(rejected?.description.contains("rejected the client certificate") == true, "\(String(describing: rejected))")
        await stranger.close()

        // A key that is not the certificate's is caught before any connection.
        let mismatched = try Self.client(tls.url(query: "tls_cert_file=\(tls.certificates.clientCertificate)&tls_key_file=\(tls.certificates.otherClientKey)"))
        let badKey = await #expect(throws: RedisError.self) { try await mismatched.connect() }
        #expect(badKey?.description.contains("does not belong to the certificate") == true, "\(String(describing: badKey))")
        await mismatched.close()
    }

    @Test func aPlaintextClientAgainstTheTLSPortIsToldToUseRediss() async throws {
        let tls = try await TLSRedisServer.start()
        let client = try Self.client("redis://127.0.0.1:\(tls.tlsPort)/0")
        let error = await #expect(throws: RedisError.self) { try await client.send("SET", "k", "v") }
        #expect(error?.kind == .tls, "\(String(describing: error))")
        #expect(error?.isConfigurationProblem == true)
        #expect(error?.mayHaveBeenApplied == false, "the handshake failed before the SET was written")
        #expect(error?.description.contains("is this a TLS port? use rediss://") == true, "\(String(describing: error))")
        await client.close()
    }

    @Test func aTLSClientAgainstAPlaintextPortIsToldToUseRedis() async throws {
        let tls = try await TLSRedisServer.start()
        let client = try Self.client("rediss://127.0.0.1:\(tls.server.port)/0?tls_ca_file=\(tls.certificates.caFile)")
        let error = await #expect(throws: RedisError.self) { try await client.connect() }
        #expect(error?.kind == .tls, "\(String(describing: error))")
        #expect(error?.description.contains("is this a plaintext port? use redis://") == true, "\(String(describing: error))")
        await client.close()
    }

    @Test func unreadableCertificateFilesAreConfigurationErrors() async throws {
        let tls = try await TLSRedisServer.start()
        for (query, complaint) in [
            ("", "could not load the CA file"),
            ("&tls_cert_file=/nonexistent/client.crt", "could not load the client certificate"),
        ] {
            let ca = query.isEmpty ? "/nonexistent/ca.crt" : tls.certificates.caFile
            let client = try Self.client("rediss://127.0.0.1:\(tls.tlsPort)/0?tls_ca_file=\(ca)\(query)")
            let error = await #expect(throws: RedisError.self) { try await client.connect() }
            #expect(error?.kind == .tls)
            #expect(error?.isConfigurationProblem == true)
            #expect(error?.description.contains(complaint) == true, "\(String(describing: error))")
            await client.close()
        }
    }

    @Test func aDroppedTLSConnectionIsReplacedAndTimeoutsKeepTheirMeaning() async throws {
        let tls = try await TLSRedisServer.start()
        let client = try Self.client(tls.url()) { $0.commandTimeout = .milliseconds(300) }
        let id = try await client.send("CLIENT", "ID").integer()
        let admin = try Self.client(tls.plaintextURL)
        #expect(try await admin.send("CLIENT", "KILL", "ID", String(id)).int == 1)
        // The killed idle connection is noticed before the next command is written (a TLS
        // close, not a session ticket), so nothing is lost and nothing fails.
        #expect(try await client.send("PING") == .status("PONG"))
        #expect(try await client.send("CLIENT", "ID").integer() != id)

        let timedOut = await #expect(throws: RedisError.self) { try await client.send("DEBUG", "SLEEP", "1") }
        #expect(timedOut?.kind == .timedOut)
        #expect(timedOut?.mayHaveBeenApplied == true)
        try await WorkerKit.eventually("the server to finish DEBUG SLEEP") { try await admin.send("PING") == .status("PONG") }
        #expect(try await client.send("PING") == .status("PONG"))
        await admin.close()
        await client.close()
    }

    @Test func theCLIWorksThroughTLS() async throws {
        let tls = try await TLSRedisServer.start(requireClientCertificates: true)
        let harness = try await WorkerHarness.make("tls-cli", server: tls.server, url: tls.mutualURL())
        try await harness.record(["one", "two"])
        try await harness.withWorker(try harness.configuration()) { worker in
            try await harness.waitUntilRegistered(worker)
            try await WorkerKit.eventually("both jobs done") { try await harness.recorded().count == 2 }
            for command in [["stats", "--no-rate"], ["workers"], ["dead", "list"], ["queues"]] {
                let result = try await CLI.run(command + ["--redis", tls.mutualURL(), "--namespace", harness.namespace])
                #expect(result.status == 0, "\(command): \(result)")
                if command == ["stats", "--no-rate"] { #expect(result.stdout.contains("default "), "\(result)") }
                if command == ["workers"] { #expect(result.stdout.contains(worker.id), "\(result)") }
            }
        }
        let enqueued = try await CLI.run(["enqueue", "airlock.ping", "--redis", tls.mutualURL(), "--namespace", harness.namespace])
        #expect(enqueued.status == 0, "\(enqueued)")
        #expect(try await harness.readyCount() == 1)
        // A wrong CA is exit status 3 with the reason, like any Redis configuration problem.
        let wrong = try await CLI.run(["stats", "--redis", "rediss://127.0.0.1:\(tls.tlsPort)/0?tls_ca_file=\(tls.certificates.otherCAFile)"])
        #expect(wrong.status == 3, "\(wrong)")
        #expect(wrong.stderr.contains("certificate verify failed"), "\(wrong)")
    }

    /// Handshakes the server logged as failed ("Error accepting a client connection").
    private static func failedHandshakes(_ tls: TLSRedisServer) -> Int {
        guard let directory = tls.server.directory, let log = try? String(contentsOfFile: directory + "/redis.log", encoding: .utf8) else { return 0 }
        return log.components(separatedBy: "Error accepting a client connection").count - 1
    }
}

extension Result {
    /// The error of a failure, nil for a success.
    var failureValue: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
