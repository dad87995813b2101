import Airlock
@testable import AirlockRedis
@testable import AirlockRedisClient
import Testing

/// What needs no server: cluster URLs, the hash-slot function, routing keys out of commands, and
/// the key layout on a Cluster.
@Suite("Redis Cluster: URLs, slots and the key layout")
struct ClusterLayoutTests {
    @Test func clusterURLsNameTheSeedsAndKeepCredentialsOutOfLogs() throws {
        let config = try RedisConfiguration(url: "rediss+cluster://app:s3cret@10.0.0.1:7000,10.0.0.2,[::1]:7002?tls_ca_file=%2Fca.crt")
        let seeds = try #require(config.cluster?.seeds)
        #expect(seeds.map(\.description) == ["10.0.0.1:7000", "10.0.0.2:6379", "[::1]:7002"])
        #expect(config.host == "10.0.0.1" && config.port == 7000)
        #expect(config.username == "app" && config.password == "s3cret")
        #expect(config.tls?.caFile == "/ca.crt")
        #expect(config.redactedURL == "rediss+cluster://app:***@10.0.0.1:7000,10.0.0.2:6379,[::1]:7002?tls_ca_file=%2Fca.crt")
        #expect(!config.endpointDescription.contains("s3cret"))
        #expect(try RedisConfiguration(url: config.redactedURL.replacingOccurrences(of: "***", with: "x")).cluster == config.cluster)
    }

    @Test func aClusterURLRefusesADatabaseAndEmptySeeds() {
        for (url, expected) in [
            ("redis+cluster://127.0.0.1:7000/3", "only database 0"),
            ("redis+cluster://127.0.0.1:7000?db=2", "only database 0"),
            ("redis+cluster://127.0.0.1:7000,,127.0.0.1:7001", "empty"),
            ("redis+cluster://127.0.0.1:99999", "port"),
        ] {
            let error = #expect(throws: RedisError.self) { try RedisConfiguration(url: url) }
            #expect(error?.description.contains(expected) == true, "\(url): \(String(describing: error))")
        }
    }

    /// Redis's own figures (`CLUSTER KEYSLOT`): the examples from the cluster specification.
    @Test func hashSlotsMatchRedis() {
        #expect(RedisHashSlot.of("123456789") == 12739)          // CRC16 XMODEM check value 0x31C3
        #expect(RedisHashSlot.of("foo") == 12182)
        #expect(RedisHashSlot.of("{user1000}.following") == RedisHashSlot.of("user1000"))
        #expect(RedisHashSlot.of("foo{}{bar}") == RedisHashSlot.of("foo{}{bar}".utf8))  // empty tag: whole key
        #expect(RedisHashSlot.of("foo{}{bar}") != RedisHashSlot.of("bar"))
        #expect(RedisHashSlot.of("foo{{bar}}zap") == RedisHashSlot.of("{bar"))
        #expect(RedisHashSlot.of("airlock:{orders}:ready") == RedisHashSlot.of("orders"))
    }

    @Test func commandsAreRoutedByTheirFirstKey() {
        #expect(ClusterRouter.key(of: RedisCommand("LLEN", "k1")) == Array("k1".utf8))
        #expect(ClusterRouter.key(of: RedisScript("return 1").call(keys: [Array("k2".utf8)], arguments: []).evalsha) == Array("k2".utf8))
        #expect(ClusterRouter.key(of: RedisScript("return 1").call(keys: [], arguments: [Array("a".utf8)]).evalsha) == nil)
        #expect(ClusterRouter.key(of: .wait(replicas: 1, timeout: .seconds(1))) == nil)
        #expect(ClusterRouter.key(of: RedisCommand("OBJECT", "ENCODING", "k3")) == Array("k3".utf8))
        #expect(ClusterRouter.key(of: .blmove(Array("src".utf8), Array("dst".utf8), from: .right, to: .left, timeout: .seconds(1))) == Array("src".utf8))
    }

    /// On a Cluster the fleet's keys share the slot of `{<ns>}`; a queue's keys keep the queue's.
    @Test func fleetKeysShareOneSlotOnACluster() throws {
        let single = RedisKeys(namespace: "airlock")
        #expect(single.workers == "airlock:workers" && single.heartbeat("w1") == "airlock:worker:w1:alive")
        let cluster = RedisKeys(namespace: "airlock", for: try RedisConfiguration(url: "redis+cluster://127.0.0.1:7000"))
        let fleet = [cluster.workers, cluster.queues, cluster.heartbeat("w1"), cluster.workerInfo("w1"), cluster.reaped("w1"),
                     cluster.schedules, cluster.batches, cluster.metricsSampler, cluster.outboxRelays, cluster.outboxRelay("r")]
        #expect(Set(fleet.map(RedisHashSlot.of)).count == 1, "\(fleet)")
        #expect(cluster.workers == "airlock:{airlock}:workers")
        #expect(cluster.ready("orders") == single.ready("orders"))
        #expect(RedisHashSlot.of(cluster.ready("orders")) == RedisHashSlot.of("orders"))
        // A namespace with its own tag already puts every key in one slot: nothing is added.
        let tagged = RedisKeys(namespace: "{app}", cluster: true)
        #expect(tagged.workers == "{app}:workers")
        #expect(RedisHashSlot.of(tagged.ready("orders")) == RedisHashSlot.of(tagged.workers))
    }
}
