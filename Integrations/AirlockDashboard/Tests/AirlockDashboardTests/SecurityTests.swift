import Airlock
import AirlockDashboard
import AirlockRedis
import Foundation
import Testing

/// Token, CSRF, read-only, and hostile job content.
@Suite("Dashboard: security", .timeLimit(.minutes(2)))
struct SecurityTests {
    static let token = "0123456789abcdef-test-token"

    @Test func aPostWithoutTheCSRFTokenIsRefused() async throws {
        let h = try await DashboardHarness.start("csrf")
        defer { h.stop() }
        try await h.pushDead("q", [Seeds.deadEntry(id: "x", task: "t", queue: "q", error: "e")])
        let session = try await h.session("/dead")
        let noField = try await h.post("/dead/retry", form: [("ids", "x")], headers: ["Cookie": session.cookie])
        #expect(noField.status == 403)
        let noCookie = try await h.post("/dead/retry", form: [("_csrf", session.csrf), ("ids", "x")])
        #expect(noCookie.status == 403)
        let wrong = try await h.post("/dead/retry", form: [("_csrf", String(repeating: "a", count: 64)), ("ids", "x")], headers: ["Cookie": session.cookie])
        #expect(wrong.status == 403)
        #expect(try await h.list(h.keys.dead("q")).count == 1, "nothing moved")
        #expect(h.audit.entries.filter { $0.message == "dashboard action refused" }.count == 3)
        let ok = try await h.post("/dead/retry", form: [("_csrf", session.csrf), ("ids", "x")], headers: ["Cookie": session.cookie])
        #expect(ok.status == 303)
        #expect(try await h.list(h.keys.dead("q")).isEmpty)
        // The cookie is HttpOnly and SameSite=Strict.
        let first = try await h.get("/")
        let cookie = try #require(first.header("set-cookie"))
        #expect(cookie.contains("HttpOnly"))
        #expect(cookie.contains("SameSite=Strict"))
    }

    @Test func aTokenIsRequiredWhenConfigured() async throws {
        let h = try await DashboardHarness.start("token") { $0.access = try .token(Self.token) }
        defer { h.stop() }
        let none = try await h.get("/")
        #expect(none.status == 401)
        #expect(none.header("www-authenticate")?.hasPrefix("Basic ") == true)
        let wrong = try await h.get("/", headers: ["Authorization": "Bearer nope"])
        #expect(wrong.status == 401)
        let wrongBasic = try await h.get("/", headers: ["Authorization": "Basic " + Data("alice:nope".utf8).base64EncodedString()])
        #expect(wrongBasic.status == 401)
        #expect(try await h.get("/", headers: ["Authorization": "Bearer \(Self.token)"]).status == 200)
        let basic = ["Authorization": "Basic " + Data("alice:\(Self.token)".utf8).base64EncodedString()]
        #expect(try await h.get("/queues", headers: basic).status == 200)
        // The live feed is behind the token; the stylesheet and script (no data in them) are not.
        #expect(try await h.get("/live/overview").status == 401)
        #expect(try await h.get("/assets/dashboard.js").status == 200)

        // An action names who did it.
        try await h.command("SADD", h.keys.queues, "mail")
        let session = try await h.session("/queues", headers: basic)
        var headers = basic
        headers["Cookie"] = session.cookie
        #expect(try await h.post("/queues/pause", form: [("_csrf", session.csrf), ("queue", "mail")], headers: headers).status == 303)
        #expect(h.audit.entries.last?.metadata["who"] == "alice")
        // A POST without the token is 401 before anything else.
        #expect(try await h.post("/queues/resume", form: [("_csrf", session.csrf), ("queue", "mail")], headers: ["Cookie": session.cookie]).status == 401)
        #expect(try await h.command("EXISTS", h.keys.paused("mail")).integer() == 1)
    }

    @Test func readOnlyShowsNoButtonsAndRefusesEveryPost() async throws {
        let h = try await DashboardHarness.start("readonly") { $0.readOnly = true }
        defer { h.stop() }
        try await h.pushDead("q", [Seeds.deadEntry(id: "x", task: "t", queue: "q", error: "e")])
        let page = try await h.get("/dead")
        #expect(page.body.contains("id=\"read-only\""))
        #expect(!page.body.contains("/dead/retry"))
        #expect(!(try await h.get("/queues").body.contains("/queues/pause")))
        let session = try await h.session("/dead")
        let reply = try await h.post("/dead/retry", form: [("_csrf", session.csrf), ("ids", "x")], headers: ["Cookie": session.cookie])
        #expect(reply.status == 403)
        #expect(reply.body.contains("read-only"))
        #expect(try await h.list(h.keys.dead("q")).count == 1)
    }

    @Test func hostileJobContentIsTextOnEveryPage() async throws {
        let h = try await DashboardHarness.start("hostile")
        defer { h.stop() }
        let script = "<script>alert('xss')</script>"
        let queue = "q<b>\"'"
        let id = "id\"><svg onload=alert(1)>"
        let task = "task<img src=x onerror=alert(2)>\u{1b}[31m\u{202e}"
        try await h.pushDead(queue, [Seeds.deadEntry(id: id, task: task, queue: queue, error: "boom \(script) \u{7}")])
        try await h.pushReady(queue, [Seeds.envelope(id: id, task: task, queue: queue)])
        try await h.command("ZADD", h.keys.delayed(queue), String(epochMilliseconds() + 60_000),
                            String(decoding: Seeds.envelope(id: "d" + id, task: task, queue: queue, attempt: 1, extra: ["last_error": .string(script)]), as: UTF8.self))
        try await h.registerWorker("w<script>", host: "host\(script)", queues: [queue])
        let pages = ["/", "/queues", "/workers", "/delayed", "/dead", "/dead?error=\(DashboardHarness.encode(script))",
                     "/dead/show?id=\(DashboardHarness.encode(id))", "/job?id=\(DashboardHarness.encode(id))", "/live/queues", "/live/workers"]
        for path in pages {
            let reply = try await h.get(path)
            #expect(reply.status == 200, "\(path)")
            for raw in ["<script>alert", "<img src=x", "<svg onload", "<b>\"", "\u{1b}", "\u{202e}", "\u{7}"] {
                #expect(!reply.body.contains(raw), "\(path) contains \(raw.debugDescription) raw")
            }
        }
        let dead = try await h.get("/dead")
        #expect(dead.body.contains("boom &lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt; \\x07"))
        #expect(dead.body.contains("task&lt;img src=x onerror=alert(2)&gt;\\x1b[31m\\u{202e}"))
        // The value a form posts back is the id itself, escaped only for the attribute.
        #expect(dead.body.contains("value=\"id&quot;&gt;&lt;svg onload=alert(1)&gt;\""))
        let session = try await h.session("/dead")
        let retried = try await h.post("/dead/retry", form: [("_csrf", session.csrf), ("ids", id)], headers: ["Cookie": session.cookie])
        #expect(retried.status == 303)
        #expect(try await h.list(h.keys.dead(queue)).isEmpty, "the exact id round-trips through the form")
    }
}
