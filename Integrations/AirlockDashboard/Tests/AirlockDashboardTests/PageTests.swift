import Airlock
import AirlockDashboard
import AirlockRedis
import Foundation
import Testing

/// Every page over a real Redis, and the actions that change it (checked in Redis).
@Suite("Dashboard: pages and actions", .timeLimit(.minutes(2)))
struct PageTests {
    @Test func everyPageRendersTheNamespacesFigures() async throws {
        let h = try await DashboardHarness.start("pages")
        defer { h.stop() }
        let now = epochMilliseconds()
        try await h.pushReady("mail", [Seeds.envelope(queue: "mail", enqueuedAt: now - 42_000), Seeds.envelope(queue: "mail")])
        try await h.command("ZADD", h.keys.delayed("mail"), String(now + 600_000), String(decoding: Seeds.envelope(id: "delayed-1", queue: "mail", attempt: 2, extra: ["last_error": "smtp down"]), as: UTF8.self))
        try await h.pushDead("mail", [Seeds.deadEntry(id: "dead-1", task: "mail.send", queue: "mail", error: "550 unavailable")])
        try await h.command("HSET", h.keys.stats("mail"), "processed", "1234", "failed", "7")
        try await h.registerWorker("w-1", host: "box-1", queues: ["mail"])
        // The previous minute: wholly past, and inside the hour, whatever second the page renders at
        // (this minute's second 1 is still in the future when the page renders at second 0).
        let minute = epochMilliseconds() / 60_000 - 1
        try await h.command("HSET", h.keys.series("mail", minute: minute), "p0", "5", "p1", "6", "f1", "2")

        let overview = try await h.get("/")
        #expect(overview.status == 200)
        #expect(overview.header("content-type")?.hasPrefix("text/html") == true)
        #expect(overview.body.contains("id=\"ov-ready\">2<"))
        #expect(overview.body.contains("id=\"ov-dead\">1<"))
        #expect(overview.body.contains("id=\"ov-processed\">1,234<"))
        #expect(overview.body.contains("id=\"ov-workers\">1<"))
        #expect(overview.body.contains("id=\"ov-hour-processed\">11<"), "the series of the last minute")
        #expect(overview.body.contains("id=\"ov-hour-failed\">2<"))
        #expect(overview.body.contains("id=\"ov-latency\">42s<") || overview.body.contains("id=\"ov-latency\">43s<"))
        #expect(overview.body.contains("<svg"), "the charts are inline SVG")
        #expect(overview.body.contains("id=\"recent-processed\""), "the last five minutes, zoomed")
        #expect(overview.body.contains("id=\"outbox-card\""), "the outbox placeholder")
        #expect(overview.header("content-security-policy")?.contains("script-src 'self'") == true)

        let queues = try await h.get("/queues")
        #expect(queues.status == 200)
        #expect(queues.body.contains("id=\"q-mail-ready\">2<"))
        #expect(queues.body.contains("id=\"q-mail-delayed\">1<"))
        #expect(queues.body.contains("id=\"q-mail-dead\">1<"))

        let workers = try await h.get("/workers")
        #expect(workers.body.contains("<code>w-1</code>"))
        #expect(workers.body.contains("box-1"))
        #expect(workers.body.contains("id=\"w-w-1-status\">alive<"))

        let delayed = try await h.get("/delayed")
        #expect(delayed.body.contains("delayed-1"))
        #expect(delayed.body.contains("smtp down"))
        #expect(delayed.body.contains(">retry<"))

        let dead = try await h.get("/dead?error=550")
        #expect(dead.body.contains("dead-1"))
        #expect(dead.body.contains("data-total=\"1\""))
        let none = try await h.get("/dead?task=nothing")
        #expect(none.body.contains("data-total=\"0\""))

        let show = try await h.get("/dead/show?id=dead-1")
        #expect(show.status == 200)
        #expect(show.body.contains("id=\"letter-task\">mail.send<"))
        #expect(show.body.contains("&quot;error&quot;: &quot;550 unavailable&quot;"))
        #expect(show.body.contains("{\n  &quot;v&quot;: 1,\n  &quot;id&quot;: &quot;dead-1&quot;"), "indented, identifying fields first")

        let job = try await h.get("/job?id=dead-1")
        #expect(job.body.contains("<strong>dead</strong> on queue <code>mail</code>"))
        let missing = try await h.get("/job?id=nope")
        #expect(missing.body.contains("id=\"not-found\""))
        let unknown = try await h.get("/dead/show?id=nope")
        #expect(unknown.status == 404)

        let live = try await h.get("/live/overview")
        #expect(live.header("content-type") == "application/json")
        let feed = try JSONParser.parse(Array(live.body.utf8))
        #expect(feed["values"]?["ov-ready"] == "2")
        #expect(feed["chart"]?["processed"]?.arrayValue?.count == 3600)

        #expect(try await h.get("/assets/dashboard.js").body.contains("textContent"))
        #expect(try await h.get("/assets/dashboard.css").status == 200)
    }

    @Test func retryingADeadLetterPutsItBackOnItsQueue() async throws {
        let h = try await DashboardHarness.start("retry")
        defer { h.stop() }
        try await h.pushDead("billing", [Seeds.deadEntry(id: "job-9", task: "billing.charge", queue: "billing", error: "card declined"),
                                         Seeds.deadEntry(id: "job-10", task: "billing.charge", queue: "billing", error: "other")])
        let session = try await h.session("/dead")
        let reply = try await h.post("/dead/retry", form: [("_csrf", session.csrf), ("ids", "job-9")], headers: ["Cookie": session.cookie])
        #expect(reply.status == 303)
        #expect(reply.header("location")?.contains("done=retried&n=1") == true)
        let ready = try await h.list(h.keys.ready("billing"))
        #expect(ready.count == 1)
        #expect(try Envelope.decode(ready[0]).id == "job-9")
        #expect(try Envelope.decode(ready[0]).attempt == 0)
        #expect(try await h.list(h.keys.dead("billing")).count == 1)
        let entry = try #require(h.audit.entries.last)
        #expect(entry.metadata["action"] == "dead.retry")
        #expect(entry.metadata["jobs"] == "1")
        #expect(entry.metadata["who"]?.hasPrefix("anonymous") == true)
        #expect(entry.metadata["queue"] == "billing")

        // The page it redirects to says what happened.
        let after = try await h.get(try #require(reply.header("location")))
        #expect(after.body.contains("1 dead letter moved back to its queue"))
    }

    @Test func retryAndDeleteEverythingASearchMatches() async throws {
        let h = try await DashboardHarness.start("bulk")
        defer { h.stop() }
        try await h.pushDead("mail", (0..<30).map { Seeds.deadEntry(id: "m\($0)", task: $0 % 3 == 0 ? "mail.digest" : "mail.send", queue: "mail", error: "e\($0)") })
        let session = try await h.session("/dead")
        let retried = try await h.post("/dead/retry", form: [("_csrf", session.csrf), ("scope", "matching"), ("task", "digest")], headers: ["Cookie": session.cookie])
        #expect(retried.status == 303)
        #expect(try await h.list(h.keys.ready("mail")).count == 10)
        #expect(h.audit.entries.last?.metadata["action"] == "dead.retry_matching")
        #expect(h.audit.entries.last?.metadata["jobs"] == "10")
        let deleted = try await h.post("/dead/delete", form: [("_csrf", session.csrf), ("scope", "matching"), ("queue", "mail"), ("error", "e1")], headers: ["Cookie": session.cookie])
        #expect(deleted.status == 303)
        // e1, e10..e19 minus the digest ones already retried (e12, e15, e18) → 8 left to delete.
        #expect(h.audit.entries.last?.metadata["jobs"] == "8")
        #expect(try await h.list(h.keys.dead("mail")).count == 12)
        // A selection.
        let two = try await h.post("/dead/delete", form: [("_csrf", session.csrf), ("ids", "m2"), ("ids", "m4")], headers: ["Cookie": session.cookie])
        #expect(two.status == 303)
        #expect(try await h.list(h.keys.dead("mail")).count == 10)
    }

    @Test func delayedJobsRunNowAndDelete() async throws {
        let h = try await DashboardHarness.start("delayed")
        defer { h.stop() }
        let due = epochMilliseconds() + 3_600_000
        try await h.command("SADD", h.keys.queues, "reports")
        for id in ["r1", "r2", "r3"] {
            try await h.command("ZADD", h.keys.delayed("reports"), String(due), String(decoding: Seeds.envelope(id: id, queue: "reports"), as: UTF8.self))
        }
        let session = try await h.session("/delayed")
        let page = try await h.get("/delayed", headers: ["Cookie": session.cookie])
        #expect(page.body.contains("value=\"7:reportsr1\""))
        let run = try await h.post("/delayed/run", form: [("_csrf", session.csrf), ("jobs", "7:reportsr1")], headers: ["Cookie": session.cookie])
        #expect(run.status == 303)
        #expect(try await h.list(h.keys.ready("reports")).count == 1)
        let drop = try await h.post("/delayed/delete", form: [("_csrf", session.csrf), ("jobs", "7:reportsr2"), ("jobs", "7:reportsr3")], headers: ["Cookie": session.cookie])
        #expect(drop.status == 303)
        #expect(try await h.command("ZCARD", h.keys.delayed("reports")).integer() == 0)
        #expect(h.audit.entries.last?.metadata["action"] == "delayed.delete")
        #expect(h.audit.entries.last?.metadata["jobs"] == "2")
    }

    @Test func aJobIsCancelledFromItsPage() async throws {
        let h = try await DashboardHarness.start("cancel")
        defer { h.stop() }
        try await h.command("SADD", h.keys.queues, "reports")
        try await h.command("ZADD", h.keys.delayed("reports"), String(epochMilliseconds() + 3_600_000),
                            String(decoding: Seeds.envelope(id: "c1", queue: "reports"), as: UTF8.self))
        let session = try await h.session("/job?id=c1")
        let page = try await h.get("/job?id=c1", headers: ["Cookie": session.cookie])
        #expect(page.body.contains("id=\"job-cancel\""))
        // Without the CSRF field: refused, nothing cancelled.
        #expect(try await h.post("/job/cancel", form: [("id", "c1")], headers: ["Cookie": session.cookie]).status == 403)
        #expect(try await h.command("ZCARD", h.keys.delayed("reports")).integer() == 1)

        let cancel = try await h.post("/job/cancel", form: [("_csrf", session.csrf), ("id", "c1")], headers: ["Cookie": session.cookie])
        #expect(cancel.status == 303)
        #expect(cancel.header("location")?.contains("done=cancelled") == true)
        #expect(try await h.command("ZCARD", h.keys.delayed("reports")).integer() == 0)
        #expect(try await h.command("HGET", h.keys.stats("reports"), "cancelled").string == "1")
        #expect(h.audit.entries.last?.metadata["action"] == "job.cancel")
        #expect(h.audit.entries.last?.metadata["jobs"] == "1")
        let after = try await h.get("/job?id=c1&done=cancelled&n=1", headers: ["Cookie": session.cookie])
        #expect(after.body.contains("id=\"notice\"") && after.body.contains("id=\"not-found\"") && !after.body.contains("id=\"job-cancel\""))
    }

    @Test func periodicJobsAreListedWithTheirTicksAndHostileTextIsEscaped() async throws {
        let h = try await DashboardHarness.start("schedules")
        defer { h.stop() }
        let empty = try await h.get("/schedules")
        #expect(empty.status == 200 && empty.body.contains("No periodic job is published"))
        // As a worker publishes a schedule, and its tick record in the queue's slot.
        try await h.command("HSET", h.keys.schedules, "nightly",
                            #"{"name":"nightly","task":"reports.nightly","queue":"reports","timing":{"cron":"0 3 * * *","time_zone":"Europe/Paris"},"missed":"catch_up","catch_up":1,"declared_by":"w1","seen_at":1796119641000}"#)
        try await h.command("SET", h.keys.scheduleTick("reports", schedule: "nightly"), "1796086800000")
        try await h.command("HSET", h.keys.schedules, "evil<script>",
                            #"{"task":"<img src=x onerror=alert(1)>","queue":"q","timing":{"every_ms":1000,"offset_ms":0},"declared_by":"\u001b[31mw2"}"#)
        let page = try await h.get("/schedules")
        #expect(page.status == 200)
        #expect(page.body.contains("cron 0 3 * * * Europe/Paris") && page.body.contains("reports.nightly") && page.body.contains("catch up 1"))
        #expect(page.body.contains("2026-12-01"), "the last tick's date")
        #expect(page.body.contains("every 1s"))
        #expect(page.body.contains("evil&lt;script&gt;") && !page.body.contains("evil<script>"))
        #expect(page.body.contains("&lt;img src=x onerror=alert(1)&gt;") && !page.body.contains("<img src=x"))
        #expect(!page.body.contains("\u{1b}"))
    }

    @Test func pauseAndResumeAQueue() async throws {
        let h = try await DashboardHarness.start("pause")
        defer { h.stop() }
        try await h.command("SADD", h.keys.queues, "mail")
        let session = try await h.session("/queues")
        #expect(try await h.post("/queues/pause", form: [("_csrf", session.csrf), ("queue", "mail")], headers: ["Cookie": session.cookie]).status == 303)
        #expect(try await h.command("EXISTS", h.keys.paused("mail")).integer() == 1)
        let page = try await h.get("/queues", headers: ["Cookie": session.cookie])
        #expect(page.body.contains("id=\"q-mail-paused\">paused<"))
        #expect(page.body.contains(">Resume<"))
        #expect(try await h.post("/queues/resume", form: [("_csrf", session.csrf), ("queue", "mail")], headers: ["Cookie": session.cookie]).status == 303)
        #expect(try await h.command("EXISTS", h.keys.paused("mail")).integer() == 0)
        #expect(h.audit.entries.map { $0.metadata["action"] } == ["pause", "resume"])
        // An unknown queue is a page saying so, not a crash.
        let unknown = try await h.post("/queues/pause", form: [("_csrf", session.csrf), ("queue", "nope")], headers: ["Cookie": session.cookie])
        #expect(unknown.status == 400)
        #expect(unknown.body.contains("unknown queue"))
    }

    @Test func mountsUnderAPath() async throws {
        // The router group an application mounts: links and the cookie path carry the prefix.
        let h = try await DashboardHarness.start("mounted", mountedAt: "/ops/airlock")
        defer { h.stop() }
        let page = try await h.get("/ops/airlock/queues")
        #expect(page.status == 200)
        #expect(page.body.contains("href=\"/ops/airlock/workers\""))
        #expect(page.header("set-cookie")?.contains("Path=/ops/airlock") == true)
        #expect(try await h.get("/queues").status == 404)
    }
}
