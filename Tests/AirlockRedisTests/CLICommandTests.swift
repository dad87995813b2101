import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// Output of the real binary's subcommands against a real Redis.
@Suite("CLI: subcommand output", .timeLimit(.minutes(5)))
struct CLICommandTests {
    typealias Kit = AdminTestKit

    private func expectSuccess(_ result: CLIResult, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == 0, "\(result)", sourceLocation: sourceLocation)
    }

    @Test func statsTableShowsEveryQueueTotalsAndWorkers() async throws {
        let f = try await AdminFixture.make("cli-stats")
        let seeded = epochMilliseconds()
        try await f.pushReady("mail", [Kit.envelope(queue: "mail", enqueuedAt: seeded - 90_000), Kit.envelope(queue: "mail")])
        try await f.command("HSET", f.keys.stats("mail"), "processed", "12", "failed", "3")
        try await f.command("SET", f.keys.paused("mail"), "1")
        try await f.addQueues("default")
        try await f.registerWorker("w1", alive: true, queues: ["default"])
        try await f.registerWorker("w2", alive: false, queues: ["default"])

        let result = try await CLI.run(["stats", "--no-rate"], on: f)
        expectSuccess(result)
        let lines = result.stdoutLines
        #expect(lines.first?.hasPrefix("QUEUE") == true, "\(result)")
        let mail = try #require(lines.first { $0.hasPrefix("mail ") }, "\(result)")
        let cells = mail.split(separator: " ").map(String.init)
        #expect(cells.count == 12, "\(mail)")
        #expect(Array(cells.prefix(6)) == ["mail", "2", "0", "0", "0", "yes"], "\(mail)")
        // Waited 90 s plus however long the test took to get here, shown as minutes and seconds.
        let waited = cells.count > 6 ? Self.minutesAndSeconds(cells[6]) : nil
        let upper = 90 + Int((epochMilliseconds() - seeded) / 1000) + 1
        #expect(waited.map { (90...upper).contains($0) } == true, "\(mail): expected 90…\(upper) s")
        #expect(Array(cells.suffix(5)) == ["12", "3", "0", "0", "-"], "\(mail)")
        #expect(lines.contains { $0.hasPrefix("default ") })
        #expect(lines.contains { $0.hasPrefix("TOTAL ") })
        #expect(result.stdout.contains("workers: 1 alive, 1 dead (awaiting recovery)"), "\(result)")

        let rated = try await CLI.run(["stats", "--interval", "0.2", "--queue", "mail"], on: f)
        expectSuccess(rated)
        #expect(rated.stdout.contains("rate over"), "\(rated)")
        #expect(!rated.stdout.contains("default "), "\(rated)")
    }

    @Test func statsJSONIsOneObjectInTheDocumentedSchema() async throws {
        let f = try await AdminFixture.make("cli-stats-json")
        try await f.pushReady("a", [Kit.envelope(queue: "a")])
        try await f.addQueues("b")
        let result = try await CLI.run(["stats", "--json", "--interval", "0.1", "--queue", "a,b"], on: f)
        expectSuccess(result)
        #expect(result.stdoutLines.count == 1)
        let json = try Kit.object(result.stdout)
        #expect(Kit.keyPaths(.object(json)) == Kit.keyPaths(.object(try Kit.documentedExample("airlock.stats/1"))))
        #expect(json["schema"] == "airlock.stats/1")
        #expect(json["namespace"]?.stringValue == f.namespace)
        #expect(json["queues"]?.arrayValue?.map { $0["name"] } == ["a", "b"])
        #expect(json["totals"]?["ready"] == 1)
        #expect(json["interval_seconds"]?.doubleValue != nil)
    }

    @Test func statsWatchPrintsOneSamplePerPeriodWhenNotATerminal() async throws {
        let f = try await AdminFixture.make("cli-watch")
        try await f.addQueues("a")
        let json = try await CLI.run(["stats", "--watch", "0.2", "--count", "3", "--json", "--no-rate"], on: f)
        expectSuccess(json)
        #expect(json.stdoutLines.count == 3, "\(json)")
        for line in json.stdoutLines { #expect(try Kit.object(line)["schema"] == "airlock.stats/1") }
        #expect(!json.stdout.contains("\u{1B}["))

        // A bare --watch takes the default period; the table is printed once per sample.
        let table = try await CLI.run(["stats", "--watch", "--count", "2", "--interval", "0.1"], on: f)
        expectSuccess(table)
        #expect(table.stdoutLines.filter { $0.hasPrefix("QUEUE") }.count == 2, "\(table)")
        #expect(!table.stdout.contains("\u{1B}["))
        // The second sample's rate spans the time since the first, as the command measured it: the
        // default 2 s period, not --interval's 0.1 s.
        let spans = table.stdoutLines.compactMap { line -> Double? in
            guard let range = line.range(of: "rate over ") else { return nil }
            return Double(line[range.upperBound...].prefix { $0.isNumber || $0 == "." })
        }
        #expect(spans.count == 2 && spans[1] >= 2.0, "\(table)")
    }

    /// On a terminal, --watch redraws in place (clear screen, cursor home) like `top`.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script"), "needs util-linux script(1) for a pseudo-terminal"))
    func statsWatchRedrawsInPlaceOnATerminal() async throws {
        let f = try await AdminFixture.make("cli-watch-tty")
        try await f.addQueues("a")
        let command = [CLI.binary.path, "stats", "--watch", "0.2", "--count", "2", "--no-rate", "--redis", f.url, "--namespace", f.namespace]
        let result = try await CLI.run(["-qec", command.joined(separator: " "), "/dev/null"], executable: URL(fileURLWithPath: "/usr/bin/script"))
        expectSuccess(result)
        #expect(result.stdout.components(separatedBy: "\u{1B}[H\u{1B}[2J").count == 3, "\(result)")
        #expect(result.stdout.contains("Ctrl-C to stop"))
    }

    @Test func workersShowsDeadOnesAwaitingRecovery() async throws {
        let f = try await AdminFixture.make("cli-workers")
        try await f.addQueues("a")
        try await f.registerWorker("w-alive", alive: true, queues: ["a"])
        try await f.registerWorker("w-dead", alive: false, queues: ["a"])
        let result = try await CLI.run(["workers"], on: f)
        expectSuccess(result)
        let alive = try #require(result.stdoutLines.first { $0.hasPrefix("w-alive") }, "\(result)")
        #expect(alive.contains(" alive "))
        #expect(alive.contains("host-w-alive"))
        #expect(alive.contains("4242"))
        let dead = try #require(result.stdoutLines.first { $0.hasPrefix("w-dead") }, "\(result)")
        #expect(dead.contains("dead (awaiting recovery)"))

        let json = try await CLI.run(["workers", "--json"], on: f)
        expectSuccess(json)
        let object = try Kit.object(json.stdout)
        #expect(Kit.keyPaths(.object(object)) == Kit.keyPaths(.object(try Kit.documentedExample("airlock.workers/1"))))
    }

    @Test func queuesListsNamesAsLinesOrAJSONArray() async throws {
        let f = try await AdminFixture.make("cli-queues")
        let empty = try await CLI.run(["queues"], on: f)
        expectSuccess(empty)
        #expect(empty.stdout.isEmpty)
        #expect(try await CLI.run(["queues", "--json"], on: f).stdout == "[]\n")
        try await f.addQueues("reports", "default", "mail")
        let lines = try await CLI.run(["queues"], on: f)
        expectSuccess(lines)
        #expect(lines.stdout == "default\nmail\nreports\n")
        let json = try await CLI.run(["queues", "--json"], on: f)
        #expect(try JSONParser.parse(Array(json.stdout.utf8)) == ["default", "mail", "reports"])
    }

    @Test func pauseAndResumeChangeTheKey() async throws {
        let f = try await AdminFixture.make("cli-pause")
        try await f.addQueues("mail")
        let paused = try await CLI.run(["pause", "mail"], on: f)
        expectSuccess(paused)
        #expect(paused.stdout.contains("paused queue 'mail'"))
        #expect(try await f.command("GET", f.keys.paused("mail")).string == "1")
        let stats = try await CLI.run(["stats", "--json", "--no-rate"], on: f)
        #expect(try Kit.object(stats.stdout)["queues"]?.arrayValue?.first?["paused"] == true)

        let resumed = try await CLI.run(["resume", "mail"], on: f)
        expectSuccess(resumed)
        #expect(resumed.stdout.contains("resumed queue 'mail'"))
        #expect(try await !f.exists(f.keys.paused("mail")))

        let created = try await CLI.run(["pause", "brand-new", "--create"], on: f)
        expectSuccess(created)
        #expect(try await f.exists(f.keys.paused("brand-new")))
        #expect(try await f.admin.queueNames() == ["brand-new", "mail"])
    }

    @Test func enqueuePrintsTheJobIdAndTheEnvelopeIsInRedis() async throws {
        let f = try await AdminFixture.make("cli-enqueue")
        let result = try await CLI.run([
            "enqueue", "airlock.sleep", "--queue", "slow", "--args", "[1, \"two\"]", "--kwargs", #"{"seconds": 0.5}"#,
            "--expires", "600", "--max-retries", "2", "--priority", "0",
        ], on: f)
        expectSuccess(result)
        let id = result.stdout.trimmingCharacters(in: .newlines)
        #expect(CLI.isJobID(id), "\(result)")
        let envelope = try Envelope.decode(try #require(try await f.list(f.keys.ready("slow")).first))
        #expect(envelope.id == id)
        #expect(envelope.task == "airlock.sleep")
        #expect(envelope.args == [1, "two"])
        #expect(envelope.kwargs == ["seconds": 0.5])
        #expect(envelope.maxRetries == 2)
        #expect((envelope.expires ?? 0) > epochMilliseconds() + 500_000)

        let delayed = try await CLI.run(["enqueue", "later", "--countdown", "120"], on: f)
        expectSuccess(delayed)
        #expect(CLI.isJobID(delayed.stdout.trimmingCharacters(in: .newlines)))
        #expect(delayed.stderr.contains("delayed until"))
        #expect(try await f.command("ZCARD", f.keys.delayed("default")).int == 1)

        let eta = try await CLI.run(["enqueue", "later", "--eta", "2099-01-01T00:00:00+02:00"], on: f)
        expectSuccess(eta)
        let due = try #require(ISO8601DateFormatter().date(from: "2098-12-31T22:00:00Z"))
        let scores = (try await f.command("ZRANGE", f.keys.delayed("default"), "0", "-1", "WITHSCORES").array ?? []).compactMap(\.string)
        #expect(scores.contains(String(Int64(due.timeIntervalSince1970 * 1000))), "\(scores)")
    }

    @Test func enqueueWithAUsedIdempotencyKeyPrintsDuplicateAndSucceeds() async throws {
        let f = try await AdminFixture.make("cli-idem")
        let first = try await CLI.run(["enqueue", "t", "--idempotency-key", "order-42"], on: f)
        expectSuccess(first)
        let id = first.stdout.trimmingCharacters(in: .newlines)
        let second = try await CLI.run(["enqueue", "t", "--idempotency-key", "order-42"], on: f)
        expectSuccess(second)
        #expect(second.stdout == "duplicate of \(id)\n")
        #expect(second.stderr.contains("note:"))
        #expect(try await f.list(f.keys.ready("default")).count == 1)
    }

    @Test func deadListShowRetryAndPurge() async throws {
        let f = try await AdminFixture.make("cli-dead")
        let t = epochMilliseconds()
        try await f.pushDead("mail", [
            Kit.deadEntry(id: "11111111-1111-4111-8111-111111111111", task: "send.mail", queue: "mail", error: "smtp timeout\nline two", failedAt: t - 2000, extra: ["trace": "t-1"]),
            Kit.malformedEntry(id: "22222222-2222-4222-8222-222222222222", queue: "mail", raw: Array("garbage".utf8), failedAt: t - 1000),
        ])

        let list = try await CLI.run(["dead", "list"], on: f)
        expectSuccess(list)
        let rows = list.stdoutLines
        #expect(rows.first?.hasPrefix("FAILED AT") == true, "\(list)")
        #expect(rows[1].contains("22222222-2222-4222-8222-222222222222") && rows[1].contains("(malformed)"), "\(list)")
        #expect(rows[2].contains("send.mail") && rows[2].contains("smtp timeout line two"), "\(list)")
        #expect(list.stdout.contains("2 dead letters"))
        let listJSON = try await CLI.run(["dead", "list", "--json", "--limit", "1"], on: f)
        let page = try Kit.object(listJSON.stdout)
        #expect(page["total"] == 2)
        #expect(page["entries"]?.arrayValue?.count == 1)

        let show = try await CLI.run(["dead", "show", "11111111-1111-4111-8111-111111111111"], on: f)
        expectSuccess(show)
        let shown = try Kit.object(show.stdout)
        #expect(shown["error"] == "smtp timeout\nline two")
        #expect(shown["trace"] == "t-1")
        #expect(show.stdout.contains("\n  \"id\": "))

        let retry = try await CLI.run(["dead", "retry", "11111111-1111-4111-8111-111111111111"], on: f)
        expectSuccess(retry)
        #expect(retry.stdout.contains("requeued 11111111-1111-4111-8111-111111111111"), "\(retry)")
        let envelope = try Envelope.decode(try #require(try await f.list(f.keys.ready("mail")).first))
        #expect(envelope.id == "11111111-1111-4111-8111-111111111111")
        #expect(envelope.attempt == 0)
        #expect(envelope.extra == ["trace": "t-1"])

        let raw = try await CLI.run(["dead", "retry", "22222222-2222-4222-8222-222222222222"], on: f)
        expectSuccess(raw)
        #expect(raw.stdout.contains("raw bytes"), "\(raw)")
        #expect(try await f.list(f.keys.ready("mail")).first == Array("garbage".utf8))

        try await f.pushDead("mail", (0..<3).map { Kit.deadEntry(id: "p\($0)", queue: "mail") })
        let refused = try await CLI.run(["dead", "purge", "--queue", "mail"], on: f)
        #expect(refused.status == 2, "deleting everything needs --all: \(refused)")
        #expect(refused.stderr.contains("--all"))
        #expect(try await f.list(f.keys.dead("mail")).count == 3, "nothing was deleted")
        let purge = try await CLI.run(["dead", "purge", "--all", "--queue", "mail"], on: f)
        expectSuccess(purge)
        #expect(purge.stdout.hasPrefix("removed 3 dead letters"), "\(purge)")
        let again = try await CLI.run(["dead", "purge", "--all"], on: f)
        #expect(again.stdout.hasPrefix("removed 0 dead letters"), "\(again)")
        #expect(try await CLI.run(["dead", "list"], on: f).stdout == "no dead letters\n")
    }

    @Test func deadRetryAllReportsEachJob() async throws {
        let f = try await AdminFixture.make("cli-dead-all")
        try await f.pushDead("a", [Kit.deadEntry(id: "a1", queue: "a"), Kit.deadEntry(id: "a2", queue: "a")])
        try await f.pushDead("b", [Kit.deadEntry(id: "b1", queue: "b")])
        let result = try await CLI.run(["dead", "retry", "--all", "--queue", "a"], on: f)
        expectSuccess(result)
        #expect(result.stdoutLines.filter { $0.hasPrefix("requeued") }.count == 2, "\(result)")
        #expect(result.stdout.contains("2 dead letters moved back"))
        #expect(try await f.list(f.keys.ready("a")).count == 2)
        #expect(try await f.list(f.keys.dead("b")).count == 1)
    }

    /// `1m30s` → 90; nil for anything else (the stats table's age column under an hour).
    static func minutesAndSeconds(_ cell: String) -> Int? {
        let parts = cell.split(separator: "m")
        guard parts.count == 2, parts[1].hasSuffix("s"), let minutes = Int(parts[0]), let seconds = Int(parts[1].dropLast()) else { return nil }
        return minutes * 60 + seconds
    }
}
