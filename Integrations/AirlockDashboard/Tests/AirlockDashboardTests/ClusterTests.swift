import Airlock
import AirlockDashboard
import AirlockRedis
import Foundation
import Testing

/// The dashboard over a real Redis Cluster (three primaries, three replicas, started by
/// `scripts/test.sh`): the same pages and actions as on one server, with the queues' keys on three
/// nodes and the fleet's (workers, the queue set) in the namespace's own slot.
@Suite("Dashboard on a Redis Cluster")
struct ClusterTests {
    /// One queue in each primary's slot range (the ranges `redis-cli --cluster create` assigns to
    /// three primaries).
    static func onePerPrimary(_ keys: RedisKeys) -> [String] {
        let ranges = [0...5460, 5461...10922, 10923...16383]
        return ranges.map { range in
            (0..<500).lazy.map { "cl\($0)" }.first { range.contains(RedisHashSlot.of(keys.ready($0))) }!
        }
    }

    @Test func pagesAndARetryReadAndWriteEachQueueOnItsOwnNode() async throws {
        let h = try await DashboardHarness.start("cluster", url: try TestRedis.clusterURL())
        defer { h.stop() }
        #expect(h.keys.workers.hasPrefix("\(h.namespace):{\(h.namespace)}:"), "the fleet's keys in the namespace's slot")
        let queues = Self.onePerPrimary(h.keys)
        #expect(Set(queues.map { RedisHashSlot.of(h.keys.ready($0)) / 5461 }).count == 3)
        // A producer's flush across the three primaries (the cross-slot commit record): two ready
        // jobs and one delayed per queue.
        let executor = RedisExecutor(client: h.raw, namespace: h.namespace)
        let intents = queues.flatMap { queue in
            [DispatchOptions(queue: queue), DispatchOptions(queue: queue), DispatchOptions(queue: queue, countdown: .seconds(600))].map {
                Intent(taskName: "mail.send", payload: .dynamic(TaskArguments(kwargs: ["to": .string("<b>\(queue)</b>")])), options: $0)
            }
        }
        #expect(try await executor.enqueue(intents) == Array(repeating: .queued, count: 9))
        for queue in queues {
            try await h.pushDead(queue, [Seeds.deadEntry(id: "dead-\(queue)", task: "mail.send", queue: queue, error: "550 <script>\(queue)</script>")])
        }
        try await h.registerWorker("w-1", host: "box-1", queues: queues)

        let overview = try await h.get("/")
        #expect(overview.status == 200)
        #expect(overview.body.contains("id=\"ov-ready\">6<"), "ready jobs summed over three nodes")
        #expect(overview.body.contains("id=\"ov-dead\">3<"))
        #expect(overview.body.contains("id=\"ov-workers\">1<"))

        let page = try await h.get("/queues")
        for queue in queues {
            #expect(page.body.contains("id=\"q-\(queue)-ready\">2<"), "\(queue)")
            #expect(page.body.contains("id=\"q-\(queue)-delayed\">1<"), "\(queue)")
            #expect(page.body.contains("id=\"q-\(queue)-dead\">1<"), "\(queue)")
        }
        #expect(try await h.get("/workers").body.contains("id=\"w-w-1-status\">alive<"))

        let dead = try await h.get("/dead")
        #expect(dead.body.contains("data-total=\"3\""))
        #expect(!dead.body.contains("<script>cl"), "a job's error is escaped")
        #expect(dead.body.contains("&lt;script&gt;"))
        let job = try await h.get("/job?id=dead-\(queues[2])")
        #expect(job.body.contains("<strong>dead</strong> on queue <code>\(queues[2])</code>"))

        // A retry moves the dead letter back onto its own queue, on its own node.
        let session = try await h.session("/dead")
        let reply = try await h.post("/dead/retry", form: [("_csrf", session.csrf), ("ids", "dead-\(queues[1])")], headers: ["Cookie": session.cookie])
        #expect(reply.status == 303)
        #expect(reply.header("location")?.contains("done=retried&n=1") == true)
        let ready = try await h.list(h.keys.ready(queues[1]))
        #expect(ready.count == 3)
        #expect(try ready.map { try Envelope.decode($0).id }.contains("dead-\(queues[1])"))
        #expect(try await h.list(h.keys.dead(queues[1])).isEmpty)
        #expect(try await h.list(h.keys.dead(queues[0])).count == 1, "the other nodes' dead letters stay")
        let after = try await h.get("/queues")
        #expect(after.body.contains("id=\"q-\(queues[1])-ready\">3<"))
    }
}
