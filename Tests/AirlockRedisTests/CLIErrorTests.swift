import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// Failures of the real binary: one `airlock-workerd: error: …` line and the documented status.
@Suite("CLI: errors and exit codes", .timeLimit(.minutes(5)))
struct CLIErrorTests {
    /// Exactly one stderr line, the program's error prefix, nothing on stdout.
    private func expectOneErrorLine(_ result: CLIResult, status: Int32, mentioning words: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == status, "\(result)", sourceLocation: sourceLocation)
        #expect(result.stdout.isEmpty, "\(result)", sourceLocation: sourceLocation)
        #expect(result.stderrLines.count == 1, "\(result)", sourceLocation: sourceLocation)
        #expect(result.stderr.hasPrefix("airlock-workerd: error: "), "\(result)", sourceLocation: sourceLocation)
        for word in words { #expect(result.stderr.contains(word), "\(result)", sourceLocation: sourceLocation) }
    }

    @Test(arguments: [["stats"], ["workers"], ["queues"], ["dead", "list"], ["enqueue", "airlock.ping"], ["pause", "q"]])
    func unreachableRedisFailsFastWithStatus3(_ command: [String]) async throws {
        let port = try RedisServer.closedPort()
        let result = try await CLI.run(command + ["--redis", "redis://127.0.0.1:\(port)/0"])
        expectOneErrorLine(result, status: 3, mentioning: ["127.0.0.1:\(port)", "refused"])
    }

    @Test func wrongPasswordIsStatus3() async throws {
        let server = try await RedisServer.start(RedisServer.Options(password: "s3cret"))
        let result = try await CLI.run(["stats", "--redis", server.url(password: "wrong")])
        expectOneErrorLine(result, status: 3, mentioning: ["authentication"])
        #expect(!result.stderr.contains("wrong"))
        let ok = try await CLI.run(["queues", "--redis", server.url(password: "s3cret")])
        #expect(ok.status == 0, "\(ok)")
    }

    @Test func badArgsJSONIsStatus1AndEnqueuesNothing() async throws {
        let f = try await AdminFixture.make("cli-bad-json")
        let result = try await CLI.run(["enqueue", "airlock.ping", "--args", "[1,"], on: f)
        expectOneErrorLine(result, status: 1, mentioning: ["--args", "not valid JSON"])
        let wrongType = try await CLI.run(["enqueue", "airlock.ping", "--kwargs", "[1]"], on: f)
        expectOneErrorLine(wrongType, status: 1, mentioning: ["--kwargs", "JSON object"])
        #expect(try await f.admin.queueNames().isEmpty)

        // Checked before connecting: bad JSON is reported even when Redis is unreachable.
        let port = try RedisServer.closedPort()
        let offline = try await CLI.run(["enqueue", "t", "--kwargs", "{oops", "--redis", "redis://127.0.0.1:\(port)/0"])
        expectOneErrorLine(offline, status: 1, mentioning: ["--kwargs"])
    }

    @Test func unknownDeadIdIsStatus1() async throws {
        let f = try await AdminFixture.make("cli-unknown-dead")
        try await f.addQueues("a")
        for command in [["dead", "show", "nope"], ["dead", "retry", "nope"], ["dead", "purge", "nope"]] {
            let result = try await CLI.run(command, on: f)
            expectOneErrorLine(result, status: 1, mentioning: ["'nope'"])
        }
    }

    @Test func unknownQueueIsStatus1() async throws {
        let f = try await AdminFixture.make("cli-unknown-queue")
        try await f.addQueues("real")
        for command in [["pause", "typo"], ["resume", "typo"], ["stats", "--queue", "typo"], ["dead", "list", "--queue", "typo"], ["dead", "purge", "--all", "--queue", "typo"]] {
            let result = try await CLI.run(command, on: f)
            expectOneErrorLine(result, status: 1, mentioning: ["'typo'", "real"])
        }
    }

    @Test func usageErrorsAreStatus2() async throws {
        for command in [["stats", "--bogus"], ["enqueue"], ["dead", "retry"], ["dead", "retry", "x", "--all"], ["stats", "--count", "2"],
                        ["enqueue", "t", "--countdown", "5", "--eta", "2030-01-01T00:00:00Z"], ["stats", "--redis", "http://nope"]] {
            let result = try await CLI.run(command)
            #expect(result.status == 2, "\(command): \(result)")
            #expect(result.stdout.isEmpty, "\(command): \(result)")
            #expect(!result.stderr.isEmpty, "\(command): \(result)")
        }
        let badEta = try await CLI.run(["enqueue", "t", "--eta", "tomorrow", "--redis", "redis://127.0.0.1:1/0"])
        expectOneErrorLine(badEta, status: 1, mentioning: ["--eta", "ISO 8601"])
        // Celery's transport cannot use a Cluster: refused before any connection is tried.
        let celeryOnCluster = try await CLI.run(["run", "--protocol", "celery", "--queues", "celery", "--redis", "redis+cluster://127.0.0.1:1,127.0.0.1:2"])
        #expect(celeryOnCluster.status == 2, "\(celeryOnCluster)")
        #expect(celeryOnCluster.stderr.contains("--protocol celery needs a single Redis or Sentinel"), "\(celeryOnCluster)")
    }
}
