import AirlockRedis
import Testing

/// The URL forms of docs/OPERATIONS.md "Production Redis": TLS options and their redis-py/Celery
/// aliases, the sentinel forms (ours and kombu's), replicated acknowledgement; no server needed.
@Suite("Production Redis URLs: rediss://, redis+sentinel://, wait_replicas")
struct ProductionURLTests {
    @Test func redissTurnsVerifiedTLSOnAndTakesItsOptions() throws {
        let plain = try RedisConfiguration(url: "rediss://cache.example.com:6380/2")
        #expect(plain.tls == RedisConfiguration.TLS())
        #expect(plain.tls?.verifyPeer == true, "verification is on unless switched off")
        #expect(plain.host == "cache.example.com" && plain.port == 6380 && plain.database == 2)
        #expect(try RedisConfiguration(url: "redis://cache.example.com").tls == nil)

        let full = try RedisConfiguration(url: "rediss://u:p@h/0?tls_ca_file=/etc/ca.pem&tls_cert_file=/etc/c.pem&tls_key_file=/etc/k.pem&tls_server_name=redis.internal")
        #expect(full.tls == RedisConfiguration.TLS(caFile: "/etc/ca.pem", certificateFile: "/etc/c.pem", keyFile: "/etc/k.pem", serverName: "redis.internal"))
        #expect(try RedisConfiguration(url: "rediss://h?tls_insecure=true").tls?.verifyPeer == false)
        #expect(try RedisConfiguration(url: "rediss://h?tls_ca_file=%2Fpath%20with%20space%2Fca.pem").tls?.caFile == "/path with space/ca.pem")

        // The names redis-py and Celery use, so one URL serves both.
        let celery = try RedisConfiguration(url: "rediss://h:6380/0?ssl_cert_reqs=CERT_REQUIRED&ssl_ca_certs=/ca.pem&ssl_certfile=/c.pem&ssl_keyfile=/k.pem")
        #expect(celery.tls == RedisConfiguration.TLS(caFile: "/ca.pem", certificateFile: "/c.pem", keyFile: "/k.pem"))
        #expect(try RedisConfiguration(url: "rediss://h?ssl_cert_reqs=none").tls?.verifyPeer == false)
    }

    @Test func sentinelURLsNameTheSentinelsAndTheMaster() throws {
        let ours = try RedisConfiguration(url: "redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2,[::1]:26380/mymaster/3?sentinel_password=spw&sentinel_username=watcher")
        let sentinel = try #require(ours.sentinel)
        #expect(sentinel.nodes == [.init(host: "10.0.0.1"), .init(host: "10.0.0.2"), .init(host: "::1", port: 26380)])
        #expect(sentinel.masterName == "mymaster")
        #expect(sentinel.password == "spw" && sentinel.username == "watcher")
        #expect(ours.password == "pw", "the URL's own password is the data nodes'")
        #expect(ours.database == 3)
        #expect(ours.tls == nil)
        #expect(try RedisConfiguration(url: "rediss+sentinel://s1/m").tls?.verifyPeer == true)

        // Celery/kombu's form: ';'-separated sentinel:// addresses, the master in master_name.
        let kombu = try RedisConfiguration(url: "sentinel://:pw@10.0.0.1:26379;sentinel://:pw@10.0.0.2:26379;sentinel://10.0.0.3:26379/1?master_name=mymaster&sentinel_password=spw")
        #expect(kombu.sentinel == RedisConfiguration.Sentinel(nodes: [.init(host: "10.0.0.1"), .init(host: "10.0.0.2"), .init(host: "10.0.0.3")], masterName: "mymaster", password: "spw"))
        #expect(kombu.password == "pw" && kombu.database == 1)
    }

    @Test func waitOptionsBecomeTheReplicationRequirement() throws {
        let url = try RedisConfiguration(url: "redis://h/0?wait_replicas=2&wait_timeout=750")
        #expect(url.replication == RedisReplication(replicas: 2, timeout: .milliseconds(750)))
        #expect(try RedisConfiguration(url: "redis://h/0?wait_replicas=1").replication == RedisReplication(replicas: 1, timeout: .milliseconds(500)))
        #expect(try RedisConfiguration(url: "redis://h/0").replication == nil)
        #expect(RedisReplication(replicas: 1, timeout: .milliseconds(500)).command.arguments.map { String(decoding: $0, as: UTF8.self) } == ["WAIT", "1", "500"])
        #expect(RedisReplication.none.isRequired == false)

        // An executor takes it from its client's configuration unless told otherwise.
        let client = RedisClient(configuration: url)
        #expect(RedisExecutor(client: client).replication == RedisReplication(replicas: 2, timeout: .milliseconds(750)))
        #expect(RedisExecutor(client: client, replication: RedisReplication.none).replication.isRequired == false)
        var source = RedisJobSource.Configuration(redis: url)
        #expect(source.settlementReplication.replicas == 2)
        source.replication = RedisReplication(replicas: 1, timeout: .seconds(1))
        #expect(source.settlementReplication == RedisReplication(replicas: 1, timeout: .seconds(1)))
    }

    @Test(arguments: [
        ("redis://h?tls_cert_file=/c.pem", "needs TLS: use rediss://"),
        ("rediss://h?tls_key_file=/k.pem", "tls_key_file needs tls_cert_file"),
        ("rediss://h?tls_insecure=maybe", "tls_insecure must be true or false"),
        ("rediss://h?ssl_cert_reqs=sometimes", "ssl_cert_reqs must be"),
        ("rediss://h?tls_ca_file=", "tls_ca_file is empty"),
        ("redis+sentinel://s1:26379,s2:26379", "names the master"),
        ("redis+sentinel://s1:26379,,s2/m", "a sentinel address is empty"),
        ("redis+sentinel://s1:99999/m", "port '99999'"),
        ("redis+sentinel://s1/m/0/extra", "unexpected path"),
        ("redis://h?sentinel_password=x", "needs a sentinel URL"),
        ("sentinel://s1:26379;sentinel://s2:26379", "needs ?master_name="),
        ("sentinel://s1:26379;redis://s2", "starts with sentinel://"),
        ("redis://h?wait_replicas=-1", "wait_replicas must be"),
        ("redis://h?wait_timeout=100", "wait_timeout needs wait_replicas"),
        ("redis://h?wait_replicas=1&wait_timeout=soon", "wait_timeout must be"),
    ])
    func malformedProductionURLsSayWhatIsWrong(url: String, complaint: String) {
        let error = #expect(throws: RedisError.self) { try RedisConfiguration(url: url) }
        #expect(error?.kind == .invalidURL)
        #expect(error?.description.contains(complaint) == true, "\(String(describing: error))")
    }

    @Test func redactedURLsKeepTheOptionsAndHideEverySecret() throws {
        let tls = try RedisConfiguration(url: "rediss://u:secret@h:6380/1?tls_ca_file=/ca.pem&tls_server_name=r.internal&wait_replicas=1&wait_timeout=250")
        #expect(tls.redactedURL == "rediss://u:***@h:6380/1?tls_ca_file=%2Fca.pem&tls_server_name=r.internal&wait_replicas=1&wait_timeout=250")
        #expect(try RedisConfiguration(url: tls.redactedURL).tls == tls.tls, "a redacted URL parses back")

        let sentinel = try RedisConfiguration(url: "redis+sentinel://:secret@s1:26379,s2:26380/mymaster/2?sentinel_password=also-secret")
        #expect(sentinel.redactedURL == "redis+sentinel://:***@s1:26379,s2:26380/mymaster/2?sentinel_password=***")
        #expect(!sentinel.redactedURL.contains("secret"))
        #expect(sentinel.endpointDescription == "master 'mymaster' via sentinels s1:26379,s2:26380")

        // An error about a malformed URL never quotes the sentinel password either.
        let error = #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis+sentinel://s1/m?sentinel_password=hunter2&bogus=1") }
        #expect(error?.description.contains("hunter2") == false, "\(String(describing: error))")
    }
}
