import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

extension IntegrationScenarios {
    // MARK: 10. Prometheus scraping real workers

    /// The daemon's built-in diagnostic tasks: the only names airlock-workerd registers.
    static let builtInTasks: Set<String> = ["airlock.echo", "airlock.fail", "airlock.ping", "airlock.record", "airlock.sleep"]

    @Test("10. metrics: a real Prometheus scrapes 2 workers: job counters move with real jobs, the sampler's queue gauges, hostile names bounded and escaped, alert rules load",
          .timeLimit(.minutes(5)), .enabled(if: PrometheusTools.shouldRun))
    func prometheusScrapesWorkers() async throws {
        let tools = try PrometheusTools.required()
        try await Scenario.run("metrics") { s in
            let ports = try [RedisServer.freePort(), RedisServer.freePort()]
            var workers: [WorkerProcess] = []
            for (index, port) in ports.enumerated() {
                workers.append(try await s.startWorker(
                    "metrics-\(index + 1)", concurrency: 4,
                    extra: ["--metrics-listen", "127.0.0.1:\(port)", "--metrics-sample-interval", "0.2", "--metrics-max-queues", "3"]))
            }
            for worker in workers { _ = try await s.registeredID(of: worker) }

            // Names no producer could use, written straight into the queue set: never a label.
            let hostileQueue = "evil\"} 1\nairlock_forged_total 7\n#"
            _ = try await s.command("SADD", s.keys.queues, hostileQueue)
            // More valid queues than --metrics-max-queues 3: "zz-*" sort last and are omitted.
            _ = try await s.command("SADD", s.keys.queues, "zz-1", "zz-2")
            // A backlog no worker consumes: the sampler's ready gauge shows it.
            try await s.produceRecords(IntegrationScenarios.tokens("b", 7), queue: "backlog", using: try s.executor(queue: "backlog"))
            // Jobs whose task names are hostile and unregistered: each is counted as task="unknown".
            let head = #"{"v":1,"queue":"default","enqueued_at":1700000000000,"#
            let hostileTasks = [#"x\"} 1\nairlock_forged_total{a=\"b"#, #"a\\b"#, "t\u{7}\u{1b}[2J", String(repeating: "long", count: 500)]
            for (index, task) in hostileTasks.enumerated() {
                let json = head + #""id":"hostile-\#(index)","task":"# + jsonString(task) + "}"
                _ = try await s.redis.send([Array("LPUSH".utf8), Array(s.keys.ready("default").utf8), Array(json.utf8)])
            }
            let firstBatch = IntegrationScenarios.tokens("m", 40)
            try await s.produceRecords(firstBatch, using: try s.executor())
            #expect(try await s.waitForRecords(firstBatch.count, timeout: .seconds(120)), "the workers did not run the jobs")
            #expect(try await eventually(timeout: .seconds(120)) { try await s.llen(s.keys.dead("default")) == hostileTasks.count })

            // Each endpoint's exposition passes promtool's checks and holds no forged line.
            for port in ports {
                var body = ""
                let sampled = try await eventually(timeout: .seconds(120), every: .milliseconds(100)) {
                    body = try await httpGet("http://127.0.0.1:\(port)/metrics").body
                    return body.contains("airlock_jobs_total") && body.contains("airlock_queue_sampler_leader")
                }
                #expect(sampled, "no Airlock metrics on port \(port): \(body.prefix(2000))")
                let check = try await tools.checkMetrics(body)
                #expect(check.status == 0, "promtool check metrics on port \(port): \(check.output)")
                #expect(!body.contains("airlock_forged_total") && !body.contains("evil"), "a hostile name reached the exposition:\n\(body)")
                // Only registered names and "unknown" are task labels, whatever the jobs said.
                let taskLabels = Set(labelValues("task", in: body))
                #expect(taskLabels.isSubset(of: Self.builtInTasks.union([AirlockMetrics.unknownTask])), "task labels: \(taskLabels)")
            }

            // A real Prometheus scrapes both workers and evaluates the example alert rules.
            let prometheus = try await tools.startServer(s, targets: ports.map { "127.0.0.1:\($0)" },
                                                         ruleFile: Integration.packageRoot + "/docs/prometheus/airlock-alerts.yml")
            func value(_ query: String) async throws -> Double? { try await prometheus.scalar(query) }
            func waitFor(_ query: String, _ expected: Double, timeout: Duration = .seconds(120)) async throws -> Bool {
                var last: Double?
                let ok = try await eventually(timeout: timeout, every: .milliseconds(250)) {
                    last = try await value(query)
                    return last == expected
                }
                if !ok { Integration.report("metrics query \(query) = \(last.map { "\($0)" } ?? "no data"), expected \(expected)") }
                return ok
            }
            let succeeded = #"sum(airlock_jobs_total{task="airlock.record",outcome="succeeded"})"#
            #expect(try await waitFor(succeeded, Double(firstBatch.count)), "Prometheus did not see the jobs run")
            #expect(try await waitFor(#"sum(airlock_jobs_total{task="unknown",outcome="dead"})"#, Double(hostileTasks.count)))
            #expect(try await waitFor(#"max(airlock_queue_ready_jobs{queue="backlog"})"#, 7))
            #expect(try await waitFor("sum(airlock_queue_sampler_leader)", 1), "exactly one worker samples")
            #expect(try await waitFor("max(airlock_queue_sampler_omitted_queues)", 2), "the hostile queue and zz-2, beyond the cap of 3")
            #expect(try await waitFor("max(airlock_workers_alive)", 2))
            #expect(try await waitFor(#"count(group by (queue) (airlock_queue_ready_jobs))"#, 3), "backlog, default and zz-1 at most")
            #expect(try await value(#"count({__name__=~"airlock_.*", queue=~".*evil.*"})"#) == nil, "a hostile queue name became a series")
            let taskSeries = try await prometheus.labelValues("task", match: "airlock_jobs_total")
            #expect(Set(taskSeries).isSubset(of: ["airlock.record", AirlockMetrics.unknownTask]), "task label values: \(taskSeries)")
            #expect(try await waitFor(#"sum(airlock_job_run_duration_seconds_count{task="airlock.record"})"#, Double(firstBatch.count)))
            #expect(try await waitFor(#"sum(airlock_job_queue_wait_seconds_count{queue="default"})"#, Double(firstBatch.count)))

            // The counter moves with more real jobs.
            let secondBatch = IntegrationScenarios.tokens("n", 25)
            try await s.produceRecords(secondBatch, using: try s.executor())
            #expect(try await s.waitForRecords(firstBatch.count + secondBatch.count, timeout: .seconds(120)))
            #expect(try await waitFor(succeeded, Double(firstBatch.count + secondBatch.count)), "the counter did not follow the second batch")

            // Queue latency as an operator graphs it: Prometheus's own graph page in a real headless
            // Chromium, once Prometheus holds 15 scrapes of the backlog queue's latency (it grows: no worker consumes it).
            let latency = "max by (queue) (airlock_queue_oldest_ready_age_seconds)"
            #expect(try await waitFor(#"sum(count_over_time(airlock_queue_oldest_ready_age_seconds{queue="backlog"}[1m])) >= bool 15"#, 1),
                    "fifteen seconds of latency samples")
            let backlog = try await prometheus.range(#"max(airlock_queue_oldest_ready_age_seconds{queue="backlog"})"#, lastSeconds: 60, step: 1)
            #expect(backlog.count >= 15 && backlog.last! > backlog.first!, "the backlog's latency grows while nothing consumes it: \(backlog)")
            let jobs = "sum by (task, outcome) (airlock_jobs_total)"
            let shot = try await BrowserTools.prometheusGraph(prometheus.base, name: "prometheus-queue-latency", window: "1m",
                                                              panels: [(latency, #"queue="backlog""#), (jobs, #"outcome="succeeded""#)])
            #expect(shot.contains(#"queue=\"backlog\""#) && shot.contains(#"outcome=\"succeeded\""#), "the graph legends: \(shot)")

            // The rule file loaded and every rule evaluates without error.
            let rules = try await prometheus.ruleHealth()
            #expect(rules.count == 5 && rules.allSatisfy { $0.value == "ok" }, "rules: \(rules)")
            Integration.report("metrics scraped_targets=\(ports.count) jobs=\(firstBatch.count + secondBatch.count) hostile_tasks=\(hostileTasks.count) rules=\(rules.count)")

            for worker in workers { worker.terminate() }
            for worker in workers { #expect(await worker.waitForExit(timeout: .seconds(60)) == 0, "\(worker.label): \(worker.stderrTail())") }
        }
    }

    @Test("11. alert rules: promtool check rules and promtool test rules on docs/prometheus", .enabled(if: PrometheusTools.shouldRun))
    func alertRulesPassPromtool() async throws {
        let tools = try PrometheusTools.required()
        let directory = Integration.packageRoot + "/docs/prometheus"
        let check = try await runTool(tools.promtool, ["check", "rules", "airlock-alerts.yml"], in: directory)
        #expect(check.status == 0 && check.output.contains("SUCCESS: 5 rules found"), "\(check.output)")
        let test = try await runTool(tools.promtool, ["test", "rules", "airlock-alerts.test.yml"], in: directory)
        #expect(test.status == 0 && test.output.contains("SUCCESS"), "\(test.output)")
        let config = try await runTool(tools.promtool, ["check", "config", "prometheus.example.yml"], in: directory)
        #expect(config.status == 0, "\(config.output)")
    }
}

// MARK: - Prometheus and promtool

/// Debian's `prometheus` and `promtool` (scripts/install-prometheus.sh; `make test` runs it).
/// Missing tools fail the tests under `CI=true`; elsewhere the tests are skipped.
struct PrometheusTools {
    let prometheus: String
    let promtool: String

    private static func find(_ name: String) -> String? {
        ["/usr/bin", "/usr/local/bin", "/bin"].map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Installed, or required anyway (CI).
    static var shouldRun: Bool {
        (find("prometheus") != nil && find("promtool") != nil) || ProcessInfo.processInfo.environment["CI"] == "true"
    }

    /// The tools, or an error saying how to install them.
    static func required() throws -> PrometheusTools {
        guard let prometheus = find("prometheus"), let promtool = find("promtool") else {
            throw IntegrationError("prometheus and promtool are required (CI=true); scripts/install-prometheus.sh installs Debian's package")
        }
        return PrometheusTools(prometheus: prometheus, promtool: promtool)
    }

    /// `promtool check metrics` over `exposition`.
    func checkMetrics(_ exposition: String) async throws -> (status: Int32, output: String) {
        let file = NSTemporaryDirectory() + "airlock-exposition-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max)).txt"
        try exposition.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        return try await runTool("/bin/sh", ["-c", "\"$0\" check metrics < \"$1\"", promtool, file], in: NSTemporaryDirectory())
    }

    /// A Prometheus server scraping `targets` every second, in the scenario's log directory;
    /// stopped with the scenario.
    func startServer(_ s: Scenario, targets: [String], ruleFile: String) async throws -> PrometheusServer {
        let port = try RedisServer.freePort()
        let config = """
            global: {scrape_interval: 1s, evaluation_interval: 1s}
            rule_files: ["\(ruleFile)"]
            scrape_configs:
              - job_name: airlock
                static_configs: [{targets: [\(targets.map { "\"\($0)\"" }.joined(separator: ", "))]}]
            """
        let configPath = s.logDirectory + "/prometheus.yml"
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        _ = try await s.startProcess(prometheus, [
            "--config.file=\(configPath)", "--storage.tsdb.path=\(s.logDirectory)/prometheus-data",
            "--web.listen-address=127.0.0.1:\(port)",
        ], label: "prometheus")
        let server = PrometheusServer(base: "http://127.0.0.1:\(port)")
        let ready = try await eventually(timeout: .seconds(120), every: .milliseconds(100)) {
            (try? await httpGet(server.base + "/-/ready").status) == 200
        }
        guard ready else { throw IntegrationError("Prometheus did not become ready on port \(port)") }
        return server
    }
}

/// A running Prometheus server's HTTP API.
struct PrometheusServer {
    let base: String

    private func api(_ path: String, _ query: [(String, String)]) async throws -> [String: Any] {
        var components = URLComponents(string: base + path)!
        components.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) }
        // `+` is a literal in a query item but a space to Prometheus's form decoding.
        let url = components.url!.absoluteString.replacingOccurrences(of: "+", with: "%2B")
        let response = try await httpGet(url)
        guard let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any],
              object["status"] as? String == "success" else {
            throw IntegrationError("Prometheus \(path) \(query): HTTP \(response.status) \(response.body.prefix(500))")
        }
        return object
    }

    /// The value of an instant query with one result; `nil` when it has none.
    func scalar(_ query: String) async throws -> Double? {
        let object = try await api("/api/v1/query", [("query", query)])
        guard let data = object["data"] as? [String: Any], let result = data["result"] as? [[String: Any]], let first = result.first,
              let pair = first["value"] as? [Any], pair.count == 2, let text = pair[1] as? String else { return nil }
        return Double(text)
    }

    /// The values of a range query with one result over the last `lastSeconds`, oldest first.
    func range(_ query: String, lastSeconds: Int, step: Int) async throws -> [Double] {
        let end = Date().timeIntervalSince1970
        let object = try await api("/api/v1/query_range", [
            ("query", query), ("start", String(end - Double(lastSeconds))), ("end", String(end)), ("step", String(step)),
        ])
        guard let data = object["data"] as? [String: Any], let result = data["result"] as? [[String: Any]], let first = result.first,
              let values = first["values"] as? [[Any]] else { return [] }
        return values.compactMap { pair in (pair.last as? String).flatMap(Double.init) }
    }

    /// Every value of `label` on series matching `match`.
    func labelValues(_ label: String, match: String) async throws -> [String] {
        let object = try await api("/api/v1/label/\(label)/values", [("match[]", match)])
        return object["data"] as? [String] ?? []
    }

    /// Each loaded rule's name and health (`ok` once evaluated without error).
    func ruleHealth() async throws -> [String: String] {
        var health: [String: String] = [:]
        _ = try await eventually(timeout: .seconds(120), every: .milliseconds(250)) {
            let object = try await api("/api/v1/rules", [])
            let groups = ((object["data"] as? [String: Any])?["groups"] as? [[String: Any]]) ?? []
            health = [:]
            for group in groups {
                for rule in group["rules"] as? [[String: Any]] ?? [] {
                    if let name = rule["name"] as? String { health[name] = rule["health"] as? String ?? "?" }
                }
            }
            return !health.isEmpty && health.values.allSatisfy { $0 == "ok" }
        }
        return health
    }
}

// MARK: - Headless Chromium

/// Debian's chromium driven by selenium from the venv `scripts/browser-venv.sh` makes
/// (`AIRLOCK_BROWSER_VENV`; integration/run.sh sets it). Missing is a failure, never a skip.
enum BrowserTools {
    static func venv() throws -> String {
        let path = ProcessInfo.processInfo.environment["AIRLOCK_BROWSER_VENV"].flatMap { $0.isEmpty ? nil : $0 }
            ?? Integration.packageRoot + "/.build-browser-venv"
        guard FileManager.default.isExecutableFile(atPath: path + "/bin/python"),
              FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium") else {
            throw IntegrationError("no chromium or no selenium venv at \(path): run scripts/browser-venv.sh (make test does)")
        }
        return path
    }

    /// Where screenshots go: `AIRLOCK_INTEGRATION_ARTIFACTS` (integration/run.sh: `.build/integration-artifacts`).
    static func artifacts() throws -> String {
        let path = ProcessInfo.processInfo.environment["AIRLOCK_INTEGRATION_ARTIFACTS"].flatMap { $0.isEmpty ? nil : $0 }
            ?? Integration.packageRoot + "/.build/integration-artifacts"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Prometheus's graph page with a panel per `(expression, legend)` over the last `window`,
    /// screenshotted once each panel drew a series whose labels contain `legend`
    /// (integration/browser/prometheus_graph.py). Returns the script's report (the legends).
    static func prometheusGraph(_ base: String, name: String, window: String, panels: [(String, String)]) async throws -> String {
        let output = try artifacts() + "/\(name).png"
        let result = try await runTool(try venv() + "/bin/python",
                                       [Integration.packageRoot + "/integration/browser/prometheus_graph.py", base, output, window]
                                           + panels.flatMap { [$0.0, $0.1] },
                                       in: NSTemporaryDirectory())
        guard result.status == 0, FileManager.default.fileExists(atPath: output) else {
            throw IntegrationError("prometheus_graph.py exited \(result.status): \(result.output.suffix(3000))")
        }
        Integration.report("screenshot \(output)")
        return result.output
    }
}

extension Scenario {
    /// Starts another program (Prometheus) whose output goes to the scenario's log directory; it
    /// is killed at cleanup like the workers.
    func startProcess(_ binary: String, _ arguments: [String], label: String) async throws -> WorkerProcess {
        let process = try await WorkerProcess.start(arguments, label: label, logDirectory: logDirectory, binary: binary)
        track(process)
        return process
    }
}

/// The body and status of a plain HTTP GET, through curl (no URLSession on every platform).
func httpGet(_ url: String) async throws -> (status: Int, body: String) {
    let result = try await runTool("/usr/bin/curl", ["-s", "-m", "5", "-w", "\n%{http_code}", url], in: NSTemporaryDirectory())
    guard let newline = result.output.lastIndex(of: "\n") else { return (0, result.output) }
    return (Int(result.output[result.output.index(after: newline)...]) ?? 0, String(result.output[..<newline]))
}

/// Runs a tool to completion in `directory`; stdout and stderr together.
func runTool(_ binary: String, _ arguments: [String], in directory: String) async throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Read on a thread of its own until EOF, so a chatty tool never blocks on a full pipe.
    let output: Data = await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: pipe.fileHandleForReading.readDataToEndOfFile()) }.start()
    }
    while process.isRunning { try await Task.sleep(for: .milliseconds(5)) }
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

/// `text` as a JSON string literal.
func jsonString(_ text: String) -> String {
    let data = try! JSONSerialization.data(withJSONObject: [text], options: [.fragmentsAllowed])
    let array = String(decoding: data, as: UTF8.self)
    return String(array.dropFirst().dropLast())
}

/// The values of `label` in an exposition, unescaped as far as the test needs (`\"` and `\\`).
func labelValues(_ label: String, in exposition: String) -> [String] {
    var values: [String] = []
    for line in exposition.split(separator: "\n") where !line.hasPrefix("#") {
        guard let range = line.range(of: "\(label)=\"") else { continue }
        var value = ""
        var escaped = false
        for character in line[range.upperBound...] {
            if escaped { value.append(character); escaped = false; continue }
            if character == "\\" { escaped = true; continue }
            if character == "\"" { break }
            value.append(character)
        }
        values.append(value)
    }
    return values
}
