import Airlock
@testable import AirlockRedis
@testable import AirlockRedisClient
import Testing

@Suite("Redis URL parsing and configuration")
struct ConnectionConfigurationTests {
    @Test func defaultsFromBareURL() throws {
        let config = try RedisConfiguration(url: "redis://")
        #expect(config.host == "127.0.0.1")
        #expect(config.port == 6379)
        #expect(config.database == 0)
        #expect(config.username == nil)
        #expect(config.password == nil)
        #expect(config.unixSocketPath == nil)
        #expect(config.connectTimeout == .seconds(2))
        #expect(config.commandTimeout == .seconds(5))
    }

    @Test func hostPortAndDatabase() throws {
        let config = try RedisConfiguration(url: "redis://cache.internal:6390/7")
        #expect(config.host == "cache.internal")
        #expect(config.port == 6390)
        #expect(config.database == 7)
        #expect(config.endpointDescription == "cache.internal:6390")
    }

    @Test func passwordOnlyAndUserPassword() throws {
        let passwordOnly = try RedisConfiguration(url: "redis://:hunter2@localhost")
        #expect(passwordOnly.username == nil)
        #expect(passwordOnly.password == "hunter2")
        #expect(passwordOnly.host == "localhost")
        #expect(passwordOnly.port == 6379)

        let acl = try RedisConfiguration(url: "redis://alice:pw@10.0.0.5:7000/2")
        #expect(acl.username == "alice")
        #expect(acl.password == "pw")
        #expect(acl.host == "10.0.0.5")
        #expect(acl.port == 7000)
        #expect(acl.database == 2)

        let userOnly = try RedisConfiguration(url: "redis://bob@host")
        #expect(userOnly.username == "bob")
        #expect(userOnly.password == nil)
    }

    @Test func percentDecodesCredentials() throws {
        let config = try RedisConfiguration(url: "redis://al%69ce:p%40ss%3Aw%2Ford%25@127.0.0.1:6380/1")
        #expect(config.username == "alice")
        #expect(config.password == "p@ss:w/ord%")
        #expect(config.port == 6380)
        #expect(config.database == 1)
    }

    @Test func ipv6Host() throws {
        let config = try RedisConfiguration(url: "redis://[::1]:6381/0")
        #expect(config.host == "::1")
        #expect(config.port == 6381)
        #expect(config.endpointDescription == "[::1]:6381")
    }

    @Test func unixSocketForms() throws {
        let plain = try RedisConfiguration(url: "unix:///var/run/redis/redis.sock")
        #expect(plain.unixSocketPath == "/var/run/redis/redis.sock")
        #expect(plain.database == 0)

        let full = try RedisConfiguration(url: "unix:///tmp/r.sock?db=4&password=s%20cret&name=worker-1")
        #expect(full.unixSocketPath == "/tmp/r.sock")
        #expect(full.database == 4)
        #expect(full.password == "s cret")
        #expect(full.clientName == "worker-1")
        #expect(full.endpointDescription == "unix:/tmp/r.sock")
    }

    @Test func redactedURLHidesPassword() throws {
        let tcp = try RedisConfiguration(url: "redis://alice:topsecret@db.example:6390/3")
        #expect(tcp.redactedURL == "redis://alice:***@db.example:6390/3")
        #expect(!tcp.redactedURL.contains("topsecret"))

        let unix = try RedisConfiguration(url: "unix:///tmp/r.sock?password=topsecret&db=2")
        #expect(unix.redactedURL == "unix:///tmp/r.sock?password=***&db=2")

        let noPassword = try RedisConfiguration(url: "redis://localhost")
        #expect(noPassword.redactedURL == "redis://localhost:6379/0")
        // A redacted URL is still a valid URL.
        #expect(try RedisConfiguration(url: tcp.redactedURL).host == "db.example")
    }

    @Test(arguments: [
        ("http://localhost", "unsupported scheme 'http'"),
        ("localhost:6379", "missing scheme"),
        ("redis://localhost?tls_ca_file=/ca.pem", "needs TLS: use rediss://"),
        ("redis://localhost:0", "port '0'"),
        ("redis://localhost:70000", "port '70000'"),
        ("redis://localhost:abc", "port 'abc'"),
        ("redis://localhost/x", "database 'x'"),
        ("redis://localhost/-1", "database '-1'"),
        ("redis://:bad%zz@localhost", "percent-escape in the password"),
        ("redis://[::1", "IPv6"),
        ("unix://relative.sock", "absolute path"),
        ("unix:///tmp/r.sock?db=two", "database 'two'"),
        ("redis://localhost?dbb=1", "unknown query parameter 'dbb'"),
    ])
    func rejectsBadURLs(url: String, complaint: String) {
        let error = #expect(throws: RedisError.self) { try RedisConfiguration(url: url) }
        #expect(error?.kind == .invalidURL)
        #expect(error?.isConnectionProblem == false)
        #expect(error?.description.contains(complaint) == true, "\(String(describing: error))")
        #expect(error?.description.contains(RedisURLParser.redacted(url)) == true)
    }

    @Test(arguments: [
        ("redis://alice:s3cret@localhost:99999", "redis://alice:***@localhost:99999"),
        ("redis://:s3cret@[::1", "redis://:***@[::1"),
        ("unix:///tmp/r.sock?password=s3cret&db=x", "unix:///tmp/r.sock?password=***&db=x"),
        ("rediss://u:s3cret@host/0", "rediss://u:***@host/0"),
        ("s3cret@host", "***@host"),
        ("http://a:s3cret@b:c@host/", "http://a:***@host/"),
        // Found by the fuzzer: an unencoded `/` before the password moved it into the "path".
        ("redis://ali/ce:s3cret@localhost:99999/0", "redis://ali/ce:***@localhost:99999/0"),
    ])
    func invalidURLErrorsNeverShowThePassword(url: String, redacted: String) {
        #expect(RedisURLParser.redacted(url) == redacted)
        let error = RedisError.invalidURL(url, "a test")
        #expect(!error.description.contains("s3cret"), "\(error)")
        #expect(error.description.contains(redacted))
    }

    /// The scrub is the standard library's `replacing` since Foundation went: an empty password
    /// must not be read as a pattern matching between every character of the detail.
    @Test("an empty password leaves the detail as it is")
    func anEmptyPasswordScrubsNothing() {
        let error = RedisError.invalidURL("redis://alice:@localhost:99999", "port '99999' is out of range")
        #expect(error.description.contains("': port '99999' is out of range (expected"), "\(error)")
        #expect(error.description.contains("redis://alice:***@localhost:99999"), "\(error)")
    }

    @Test func everythingBeforeTheLastAtIsUserInfo() throws {
        // An unencoded `/`, `?` or `@` in a password cannot split the URL (nor leak into an error about the host).
        let config = try RedisConfiguration(url: "redis://u:pa/ss?w@rd@host:6380/2?name=worker")
        #expect(config.username == "u")
        #expect(config.password == "pa/ss?w@rd")
        #expect(config.host == "host")
        #expect(config.port == 6380)
        #expect(config.database == 2)
        #expect(config.clientName == "worker")
        let error = #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis://u:se/cret@host:99999") }
        #expect(error?.description.contains("se/cret") == false, "\(String(describing: error))")
        #expect(error?.description.contains("port '99999'") == true)
    }

    @Test func backoffGrowsAndIsCapped() {
        let backoff = Backoff()
        #expect(backoff.delay(attempt: 0) == .milliseconds(50))
        #expect(backoff.delay(attempt: 1) == .milliseconds(100))
        #expect(backoff.delay(attempt: 3) == .milliseconds(400))
        #expect(backoff.delay(attempt: 6) == .seconds(2))
        #expect(backoff.delay(attempt: 10_000) == .seconds(2))
        let flat = Backoff(initial: .milliseconds(10), maximum: .seconds(1), multiplier: 1)
        #expect(flat.delay(attempt: 50) == .milliseconds(10))
    }

    @Test func errorDescriptionsAreActionable() {
        let refused = RedisError.connectionRefused("127.0.0.1:6390")
        #expect(refused.description.hasPrefix("Redis refused the connection at 127.0.0.1:6390"))
        #expect(refused.description.contains("is redis-server running"))
        #expect(refused.isConnectionProblem)

        let auth = RedisError.authenticationFailed(user: nil, serverMessage: "WRONGPASS invalid username-password pair or user is disabled.")
        #expect(auth.description == "Redis authentication failed for user 'default': WRONGPASS invalid username-password pair or user is disabled. (check the user name and password in the Redis URL)")
        #expect(!auth.isConnectionProblem)

        let server = RedisError.server("WRONGTYPE Operation against a key holding the wrong kind of value")
        #expect(server.kind == .server)
        #expect(server.serverErrorCode == "WRONGTYPE")
        #expect(server.message.hasPrefix("WRONGTYPE"))
        #expect(!server.description.contains("\n"))

        #expect(RedisError.notConnected.kind == .notConnected)
        #expect(RedisError.notConnected.isConnectionProblem)
        #expect(RedisError.commandTimedOut("h:1", after: .milliseconds(300)).description.contains("0.3 s"))
        #expect(RedisError.server("ERR a") != RedisError.server("ERR b"))
    }

    @Test func sha1MatchesKnownVectors() {
        #expect(RedisScript("").sha1 == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(RedisScript("abc").sha1 == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(RedisScript("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").sha1
            == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        #expect(RedisScript(String(repeating: "a", count: 1_000_000)).sha1 == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    @Test func blockingCommandsCarryTheirTimeoutAndGetLongerReadTimeouts() {
        let normal = Duration.seconds(5)
        let blmove = RedisCommand.blmove(Array("a".utf8), Array("b".utf8), from: .right, to: .left, timeout: .milliseconds(1500))
        #expect(blmove.arguments.map { String(decoding: $0, as: UTF8.self) } == ["BLMOVE", "a", "b", "RIGHT", "LEFT", "1.500"])
        #expect(blmove.blocking == .upTo(.milliseconds(1500)))
        let forever = RedisCommand.blpop([Array("k".utf8)], timeout: .zero)
        #expect(forever.arguments.last == Array("0.000".utf8))
        #expect(forever.blocking == .forever)
        let wait = RedisCommand.wait(replicas: 2, timeout: .milliseconds(250))
        #expect(wait.arguments.map { String(decoding: $0, as: UTF8.self) } == ["WAIT", "2", "250"])
        #expect(RedisCommand("GET", "k").blocking == .no)

        #expect(ConnectionOwner.readTimeout(for: [RedisCommand("GET", "k")], commandTimeout: normal) == normal)
        #expect(ConnectionOwner.readTimeout(for: [.blpop([Array("k".utf8)], timeout: .seconds(10))], commandTimeout: normal) == .seconds(11))
        #expect(ConnectionOwner.readTimeout(for: [blmove], commandTimeout: .milliseconds(300)) == .milliseconds(2500))
        #expect(ConnectionOwner.readTimeout(for: [RedisCommand("GET", "k"), forever], commandTimeout: normal) == nil)
        #expect(ConnectionOwner.readTimeout(for: [blmove], commandTimeout: nil) == nil)
    }

    @Test func commandsReadLikeTheirArguments() {
        let command = RedisCommand("HINCRBY", "key", "field", 42)
        #expect(command.name == "HINCRBY")
        #expect(command.arguments == [Array("HINCRBY".utf8), Array("key".utf8), Array("field".utf8), Array("42".utf8)])
        #expect(command.description == "HINCRBY key field 42")
        let long = RedisCommand("SET", "k", String(repeating: "x", count: 100))
        #expect(long.description.hasSuffix("…"), "payloads are shortened in messages")
    }

    @Test func typedReplyAccessorsThrowOnAShapeMismatch() throws {
        #expect(try RedisReply.integer(3).integer() == 3)
        #expect(try RedisReply.bulk(Array("7".utf8)).decimal() == 7)
        #expect(try RedisReply.null.optionalBulk() == nil)
        #expect(try RedisReply.array([.bulk(Array("a".utf8))]).strings() == ["a"])
        #expect(try RedisReply.array([.bulk(Array("f".utf8)), .bulk(Array("v".utf8))]).fields() == ["f": "v"])
        for (reply, read) in [
            (RedisReply.status("OK"), { (r: RedisReply) throws(RedisError) in _ = try r.integer() }),
            (.null, { (r: RedisReply) throws(RedisError) in _ = try r.bulk() }),
            (.integer(1), { (r: RedisReply) throws(RedisError) in _ = try r.elements() }),
            (.array([.integer(1)]), { (r: RedisReply) throws(RedisError) in _ = try r.bulks() }),
            (.array([.integer(1)]), { (r: RedisReply) throws(RedisError) in _ = try r.fields() }),
        ] as [(RedisReply, (RedisReply) throws(RedisError) -> Void)] {
            let error = #expect(throws: RedisError.self) { try read(reply) }
            #expect(error?.kind == .protocolError, "\(reply)")
            #expect(error?.description.contains("expected") == true)
        }
    }

    @Test func aHostThatDoesNotResolveIsUnreachableNotRefused() async throws {
        let client = RedisClient(configuration: try RedisConfiguration(url: "redis://no-such-host.invalid:6379"))
        let error = await #expect(throws: RedisError.self) { try await client.connect() }
        #expect(error?.kind == .unreachable, "\(String(describing: error))")
        #expect(error?.isConnectionProblem == true)
        await client.close()
    }
}
