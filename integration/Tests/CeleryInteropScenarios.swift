import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

// Celery interop against real Celery from PyPI (a venv made by scripts/celery-venv.sh): Python
// clients calling Swift workers, and Swift producers feeding a stock `celery worker`.

/// A Python process of the Celery peer (`integration/celery/celery_peer.py`).
enum CeleryPeer {
    static let directory = Integration.packageRoot + "/integration/celery"

    /// The venv with Celery: `AIRLOCK_CELERY_VENV` (integration/run.sh sets it), else the one
    /// `scripts/celery-venv.sh` creates. Missing is a failure, never a skip.
    static func venv() throws -> String {
        let path = ProcessInfo.processInfo.environment["AIRLOCK_CELERY_VENV"].flatMap { $0.isEmpty ? nil : $0 }
            ?? Integration.packageRoot + "/.build-celery-venv"
        guard FileManager.default.isExecutableFile(atPath: path + "/bin/celery") else {
            throw IntegrationError("no Celery venv at \(path): run scripts/celery-venv.sh (make test does)")
        }
        return path
    }

    static func process(_ executable: String, _ arguments: [String], redisURL: String, recordKey: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try venv() + "/bin/" + executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        var environment = ProcessInfo.processInfo.environment
        environment["AIRLOCK_REDIS_URL"] = redisURL
        environment["PEER_RECORD_KEY"] = recordKey
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        return process
    }

    /// Runs the Python client: sends `calls` with `send_task` and reports what `AsyncResult.get()`
    /// returned or raised for each.
    static func call(_ calls: [JSONValue], redisURL: String, timeout: Int = 30) async throws -> [JSONValue] {
        let spec: JSONValue = ["calls": .array(calls), "timeout": .int(timeout)]
        let process = try process("python", ["celery_peer.py", "client", spec.description], redisURL: redisURL, recordKey: "unused")
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        let (status, stdout, stderr) = try await RedisServer.offPool { () -> (Int32, Data, Data) in
            try process.run()
            let out = output.fileHandleForReading.readDataToEndOfFile()
            let err = errors.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, out, err)
        }
        guard status == 0, case .array(let results)? = try? JSONParser.parse(Array(stdout)) else {
            throw IntegrationError("celery client exited \(status): \(String(decoding: stdout, as: UTF8.self)) \(String(decoding: stderr, as: UTF8.self).suffix(2000))")
        }
        return results
    }
}

@Suite(.serialized, .timeLimit(.minutes(5)))
struct CeleryInteropScenarios {
    /// Python `send_task` → a Swift worker speaking Celery's protocol: arguments of every shape,
    /// a 100 KB payload, results, a failure that Python re-raises, an unknown task, a countdown
    /// honoured through Redis, and a malformed message that is dead-lettered while the worker runs on.
    @Test func pythonCallsSwiftWorkers() async throws {
        try await Scenario.run("celery-to-swift") { scenario in
            let worker = try await scenario.startWorker("swift-celery", queues: "swift", extra: ["--protocol", "celery", "--max-retries", "1"])
            _ = try await scenario.registeredID(of: worker)

            let nested: JSONValue = [1, "ünïcødé ☃ 日本", ["deep": [1, 2, ["x": nil]], "emoji": "🚀"], 2.5, true, nil]
            let big = JSONValue.string(String(repeating: "abcdefghij", count: 10_240))
            let results = try await CeleryPeer.call([
                ["task": "airlock.echo", "args": nested, "kwargs": ["k": "v", "n": 3], "queue": "swift"],
                ["task": "airlock.echo", "args": [big], "queue": "swift"],
                ["task": "airlock.fail", "kwargs": ["message": "the provider is down"], "queue": "swift"],
                ["task": "no.such.task", "queue": "swift"],
            ], redisURL: scenario.url)

            #expect(results[0]["ok"] == true)
            #expect(results[0]["value"]?["args"] == nested, "args round-trip through Celery and Swift unchanged")
            #expect(results[0]["value"]?["kwargs"] == ["k": "v", "n": 3])
            #expect(results[1]["value"]?["args"] == [big], "a 100 KB argument survives")
            #expect(results[2]["ok"] == false)
            #expect(results[2]["error_type"] == "DiagnosticFailure", "Python re-raises the Swift error type: \(results[2])")
            #expect(results[2]["error"] == "the provider is down")
            #expect(results[3]["ok"] == false)
            #expect(results[3]["error_type"] == "NotRegistered", "\(results[3])")

            // A countdown: the message sits on the queue with a future eta; the worker parks it in
            // Redis's delayed set (not in memory) and runs it when due.
            let sent = Date()
            let delayed = try await CeleryPeer.call([["task": "airlock.echo", "args": ["later"], "queue": "swift", "countdown": 2]], redisURL: scenario.url)
            let waited = Date().timeIntervalSince(sent)
            #expect(delayed[0]["value"]?["args"] == ["later"])
            #expect(waited >= 1.8, "ran only when due (after \(waited) s)")
            Integration.report("celery-to-swift countdown_2s_ran_after_s=\(String(format: "%.2f", waited))")

            // Malformed Celery messages get the native outcome: a dead letter with the reason.
            for raw in ["{not json", #"{"headers": {}, "body": "W10="}"#, #"{"headers": {"task": "airlock.echo", "id": "m1"}, "body": "!!", "properties": {"body_encoding": "base64"}}"#] {
                _ = try await scenario.command("LPUSH", "swift", raw)
            }
            try await eventually(timeout: .seconds(10)) { try await scenario.llen(scenario.keys.dead("swift")) >= 5 }
            let dead = try await scenario.strings(scenario.keys.dead("swift"))
            #expect(dead.filter { $0.contains("malformed message") }.count == 3, "\(dead)")
            #expect(dead.contains { $0.contains("no task of that name") })
            #expect(worker.isRunning, "hostile messages never stop the worker")
            #expect(try await scenario.stats("swift")["processed"] == 3)
        }
    }

    /// Swift producers → a stock `celery worker`: the CLI's `enqueue --protocol celery` and the
    /// CeleryExecutor inside an airlock scope, with unicode and nested arguments, a 100 KB payload,
    /// a countdown (eta header) and priority (kombu's priority sub-key).
    @Test func swiftFeedsACeleryWorker() async throws {
        try await Scenario.run("swift-to-celery") { scenario in
            let recordKey = "peer:record"
            // Priority first, with no Celery worker yet, to see where kombu expects the message.
            let priority = try await scenario.cli(["enqueue", "peer.record", "--protocol", "celery", "--args", #"["urgent"]"#, "--priority", "9"])
            #expect(priority.status == 0, "\(priority)")
            #expect(try await scenario.llen("celery\u{06}\u{16}9") == 1, "priority 9 lands on kombu's step-9 sub-key")

            let executor = CeleryExecutor(client: try scenario.client("celery-producer"))
            let big = JSONValue.string(String(repeating: "0123456789", count: 10_240))
            try await Airlock.scope(executor: executor) {
                try Airlock.enqueue(name: "peer.record", args: [1, "ünïcødé ☃", ["nested": [1, ["a": nil]]]], kwargs: ["k": "v"])
                try Airlock.enqueue(name: "peer.record", args: [big])
                try Airlock.enqueue(name: "peer.record", args: ["delayed"], options: DispatchOptions(countdown: .seconds(2)))
            }
            let sentAt = Date().timeIntervalSince1970
            #expect(try await scenario.llen("celery") == 3, "one flush, three messages, all on the queue key")

            let celery = try CeleryPeer.process(
                "celery", ["-A", "celery_peer", "worker", "-Q", "celery", "-P", "solo", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"],
                redisURL: scenario.url, recordKey: recordKey)
            let log = FileHandle(forWritingAtPath: "/dev/null")
            celery.standardOutput = log
            celery.standardError = log
            try celery.run()
            // One process (solo pool), killed outright: nothing of it may outlive the scenario.
            defer {
                kill(celery.processIdentifier, SIGKILL)
                celery.waitUntilExit()
            }

            let arrived = try await eventually(timeout: .seconds(60)) { try await scenario.llen(recordKey) == 4 }
            #expect(arrived, "the Celery worker ran all four tasks")
            let records = try await scenario.strings(recordKey).compactMap { try? JSONParser.parse(Array($0.utf8)) }
            let byFirstArg = Dictionary(records.map { ($0["args"]?.arrayValue?.first ?? .null, $0) }, uniquingKeysWith: { first, _ in first })
            #expect(byFirstArg["urgent"] != nil)
            #expect(byFirstArg[1]?["args"] == [1, "ünïcødé ☃", ["nested": [1, ["a": nil]]]])
            #expect(byFirstArg[1]?["kwargs"] == ["k": "v"])
            #expect(byFirstArg[big] != nil, "a 100 KB argument reaches Python intact")
            let delayedAt = try #require(byFirstArg["delayed"]?["at"]?.doubleValue)
            #expect(delayedAt - sentAt >= 1.5, "the eta header was honoured (ran \(delayedAt - sentAt) s after sending)")
            #expect(byFirstArg["delayed"]?["eta"]?.stringValue?.isEmpty == false)
            Integration.report("swift-to-celery delivered=4 countdown_2s_ran_after_s=\(String(format: "%.2f", delayedAt - sentAt))")
        }
    }
}
