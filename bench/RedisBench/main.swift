// AirlockBench: the Swift half of `make bench` (bench/run.sh drives it against a private redis-server).
//
//   AirlockBench run …          the stock worker command line (AirlockCommand) plus the `bench.stamp` task
//   AirlockBench worker …       same as `run …` (AIRLOCK_BENCH_TRACING=1: with an in-memory tracer bootstrapped)
//   AirlockBench enqueue …      enqueue throughput through Airlock.scope + RedisExecutor, flush latency per scope
//   AirlockBench fill …         pre-enqueue jobs quickly (scopes of up to 1000) for a drain measurement
//   AirlockBench seed …         write many ready, delayed or dead-letter envelopes straight into Redis
//                               (variadic LPUSH/ZADD, pipelined): the scaling section's 1M-job backlogs
//   AirlockBench watch …        time a drain: first job taken → ready list empty and stats `processed` reached
//   AirlockBench latency …      enqueue→start latency (paced single-intent scopes of bench.stamp), at low
//                               load or beside a background producer (--background-rate)
//   AirlockBench lateness …     delayed jobs: start − due, for jobs with due times spread over a few seconds
//   AirlockBench decode …       the envelope decoder alone, no Redis: ns per envelope of the drain's
//                               `airlock.ping` message (what a worker does to every job it fetches)
//   AirlockBench roundtrip …    the client alone: sequential PINGs from one task (each a hop to the
//                               connection's thread and back), then pipelines of 100; CPU per call
//
// Every measuring subcommand prints a human line and a last line `result: key=value …` that run.sh collects.
// Arguments are parsed by hand (ArgumentParser is a dependency of AirlockDaemon, not of this target).
import Airlock
import AirlockDaemon
import AirlockRedis
import AirlockTracingTestSupport
import Foundation
import Tracing

// MARK: - Small helpers

/// Microseconds since the epoch, CLOCK_REALTIME (comparable across processes on this machine).
func realtimeMicros() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1_000
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var micros: Double { seconds * 1e6 }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Nearest-rank percentile of sorted samples.
func percentile(_ sorted: [Double], _ q: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let rank = Int((q * Double(sorted.count)).rounded(.up))
    return sorted[min(max(rank, 1), sorted.count) - 1]
}

/// CPU time (user + system) this process has used, in seconds.
func processCPUSeconds() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

func fmt(_ value: Double, _ decimals: Int = 1) -> String { String(format: "%.\(decimals)f", value) }

/// `--payload-bytes B`: a kwarg `pad` of B bytes ("x" repeated) in every job, so the envelope is
/// ≈ B + 200 bytes (the bench reports the envelope's measured size). nil when B is 0 or absent.
func padding(_ options: Options) throws -> JSONValue? {
    let bytes = try options.int("payload-bytes", 0)
    guard bytes >= 0 else { throw BenchError("--payload-bytes must not be negative") }
    return bytes > 0 ? .string(String(repeating: "x", count: bytes)) : nil
}

/// The byte length of the element at `index` of a list (LINDEX), or -1 when there is none.
func listElementBytes(_ client: RedisClient, _ key: [UInt8], index: Int = 0) async throws -> Int {
    try await client.send([Array("LINDEX".utf8), key, Array(String(index).utf8)]).bytes?.count ?? -1
}

/// `--name value` options after the subcommand.
struct Options {
    private var values: [String: String] = [:]
    private var flags: Set<String> = []

    init(_ arguments: ArraySlice<String>) throws {
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            guard argument.hasPrefix("--") else { throw BenchError("unexpected argument '\(argument)'") }
            let name = String(argument.dropFirst(2))
            if let eq = name.firstIndex(of: "=") {
                values[String(name[..<eq])] = String(name[name.index(after: eq)...])
                continue
            }
            if Self.flagNames.contains(name) { flags.insert(name); continue }
            guard let value = iterator.next() else { throw BenchError("--\(name) needs a value") }
            values[name] = value
        }
    }

    static let flagNames: Set<String> = ["typed", "shared", "batched"]

    func string(_ name: String, _ fallback: String? = nil) throws -> String {
        if let value = values[name] ?? fallback { return value }
        throw BenchError("--\(name) is required")
    }
    func int(_ name: String, _ fallback: Int? = nil) throws -> Int {
        if let text = values[name] {
            guard let value = Int(text.replacingOccurrences(of: "_", with: "")) else { throw BenchError("--\(name) must be an integer") }
            return value
        }
        if let fallback { return fallback }
        throw BenchError("--\(name) is required")
    }
    func double(_ name: String, _ fallback: Double) throws -> Double {
        guard let text = values[name] else { return fallback }
        guard let value = Double(text) else { throw BenchError("--\(name) must be a number") }
        return value
    }
    func flag(_ name: String) -> Bool { flags.contains(name) }

    var redisURL: String {
        values["redis"] ?? ProcessInfo.processInfo.environment["AIRLOCK_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"
    }
    var namespace: String {
        values["namespace"] ?? ProcessInfo.processInfo.environment["AIRLOCK_NAMESPACE"] ?? "airlock"
    }
}

/// Prints the machine-readable line run.sh collects.
func emit(_ prefix: String, _ fields: KeyValuePairs<String, String>) {
    let body = fields.map { "\(prefix)\($0.key)=\($0.value)" }.joined(separator: " ")
    print("result: \(body)")
}

func command(_ parts: String...) -> [[UInt8]] { parts.map { Array($0.utf8) } }

// MARK: - The bench.stamp task (registered in the worker this binary runs)

/// Typed form of the enqueue benchmark's task; runs as `airlock.ping` (which ignores its arguments).
struct BenchPing: AirlockTask {
    static let name = "airlock.ping"
    let n: Int
    func run(_ context: TaskContext) async throws {}
}

/// The connection `bench.stamp` writes through, made on first use from the worker's own `--redis`.
let stampClient: RedisClient? = {
    let arguments = CommandLine.arguments
    var url = ProcessInfo.processInfo.environment["AIRLOCK_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"
    if let index = arguments.firstIndex(of: "--redis"), index + 1 < arguments.count { url = arguments[index + 1] }
    for argument in arguments where argument.hasPrefix("--redis=") { url = String(argument.dropFirst("--redis=".count)) }
    guard let configuration = try? RedisConfiguration(url: url) else { return nil }
    return RedisClient(configuration: configuration, name: "airlock-bench-stamp")
}()

/// `bench.stamp`: kwargs `t` (µs since the epoch, CLOCK_REALTIME: the enqueue time or the due time) and
/// `list`; RPUSHes `now − t` in µs to `list`. The subtraction happens first thing in the task body.
func benchTasks() -> TaskRegistry {
    var tasks = TaskRegistry()
    tasks.register("bench.stamp", maxRetries: 0) { arguments, _ in
        let now = realtimeMicros()
        guard let t = arguments.kwargs["t"]?.intValue, let list = arguments.kwargs["list"]?.stringValue else {
            throw PermanentFailure("bench.stamp needs kwargs {\"t\": µs, \"list\": key}")
        }
        guard let client = stampClient else { throw PermanentFailure("bench.stamp: no Redis URL") }
        _ = try await client.send([Array("RPUSH".utf8), Array(list.utf8), Array(String(now - Int64(t)).utf8)])
    }
    return tasks
}

// MARK: - enqueue

/// Enqueue throughput: `--producers` concurrent tasks (each with its own RedisExecutor, i.e. its own
/// connection, unless --shared), each enqueueing `--count / producers` intents in scopes of `--scope`.
/// Reports intents/s over the whole run and the flush latency (one `Airlock.scope` call) percentiles.
func enqueueBench(_ options: Options) async throws {
    let total = try options.int("count")
    let scopeSize = try options.int("scope", 1)
    let producers = try options.int("producers", 1)
    let queue = try options.string("queue", "bench-enqueue")
    let typed = options.flag("typed")
    let shared = options.flag("shared")
    let url = options.redisURL
    let namespace = options.namespace
    let warmup = try options.int("warmup", 1000)
    let pad = try padding(options)
    if typed && pad != nil { throw BenchError("--payload-bytes is for jobs by name, not --typed") }

    let sharedExecutor = try RedisExecutor(url: url, namespace: namespace, defaultQueue: queue)
    let executors = try (0..<producers).map { _ in
        shared ? sharedExecutor : try RedisExecutor(url: url, namespace: namespace, defaultQueue: queue)
    }
    let dispatchOptions = DispatchOptions(queue: queue)

    @Sendable func oneScope(_ executor: RedisExecutor, base: Int) async throws {
        try await Airlock.scope(executor: executor) {
            for i in 0..<scopeSize {
                if typed {
                    try Airlock.enqueue(BenchPing(n: base + i), options: dispatchOptions)
                } else {
                    var kwargs: [String: JSONValue] = ["n": .int(base + i)]
                    if let pad { kwargs["pad"] = pad }
                    try Airlock.enqueue(name: "airlock.ping", kwargs: kwargs, options: dispatchOptions)
                }
            }
        }
    }

    // Warm-up: connect every executor and load the script.
    for executor in executors {
        for w in 0..<max(1, warmup / max(scopeSize, 1) / producers) { try await oneScope(executor, base: -w - 1) }
    }
    let ready = Array(RedisKeys(namespace: namespace).ready(queue).utf8)
    _ = try await sharedExecutor.client.send([Array("DEL".utf8), ready])

    let scopesPerProducer = max(1, total / scopeSize / producers)
    let clock = ContinuousClock()
    let cpuStart = processCPUSeconds()
    let start = clock.now
    let samples = try await withThrowingTaskGroup(of: [Double].self) { group in
        for (p, executor) in executors.enumerated() {
            group.addTask {
                var latencies: [Double] = []
                latencies.reserveCapacity(scopesPerProducer)
                let base = p * scopesPerProducer * scopeSize
                for s in 0..<scopesPerProducer {
                    let t0 = clock.now
                    try await oneScope(executor, base: base + s * scopeSize)
                    latencies.append((clock.now - t0).micros)
                }
                return latencies
            }
        }
        var all: [Double] = []
        for try await part in group { all += part }
        return all
    }
    let elapsed = (clock.now - start).seconds
    let cpu = processCPUSeconds() - cpuStart
    let intents = scopesPerProducer * producers * scopeSize
    let queued = try await sharedExecutor.client.send([Array("LLEN".utf8), ready]).int ?? -1
    guard queued == intents else { throw BenchError("expected \(intents) jobs in \(queue), found \(queued)") }
    let envelopeBytes = try await listElementBytes(sharedExecutor.client, ready)
    _ = try await sharedExecutor.client.send([Array("DEL".utf8), ready])
    let sorted = samples.sorted()
    let rate = Double(intents) / elapsed
    let p50 = percentile(sorted, 0.50), p99 = percentile(sorted, 0.99), p999 = percentile(sorted, 0.999)
    print("enqueue: \(intents) intents in scopes of \(scopeSize), \(producers) producer(s)\(shared ? " sharing one connection" : ""), "
          + "\(typed ? "typed" : "by name"): \(fmt(elapsed, 3)) s, \(fmt(rate, 0)) intents/s, "
          + "flush p50 \(fmt(p50)) µs p99 \(fmt(p99)) µs p99.9 \(fmt(p999)) µs; producer CPU \(fmt(cpu * 1e6 / Double(intents), 2)) µs/intent; "
          + "envelope \(envelopeBytes) B")
    emit("", ["intents": "\(intents)", "seconds": fmt(elapsed, 4), "per_s": fmt(rate, 0), "cpu_us_per_intent": fmt(cpu * 1e6 / Double(intents), 2),
              "flush_p50_us": fmt(p50), "flush_p99_us": fmt(p99), "flush_p999_us": fmt(p999), "envelope_bytes": "\(envelopeBytes)"])
    await sharedExecutor.client.close()
    if !shared { for executor in executors { await executor.client.close() } }
}

// MARK: - fill

/// Pre-enqueues `--count` `airlock.ping` jobs in scopes of up to 1000 (fewer for large `--payload-bytes`,
/// so one flush stays near 4 MiB), two connections in parallel. Prints `result: jobs=… envelope_bytes=…`.
func fill(_ options: Options) async throws {
    let total = try options.int("count")
    let queue = try options.string("queue")
    let task = try options.string("task", "airlock.ping")
    let pad = try padding(options)
    let padBytes = try options.int("payload-bytes", 0)
    let batched = options.flag("batched")
    let scopeSize = max(1, min(1000, (4 << 20) / max(padBytes + 200, 1)))
    let url = options.redisURL, namespace = options.namespace
    let clock = ContinuousClock()
    let start = clock.now
    let lanes = 2
    try await withThrowingTaskGroup(of: Void.self) { group in
        for lane in 0..<lanes {
            let executor = try RedisExecutor(url: url, namespace: namespace, defaultQueue: queue)
            group.addTask {
                var done = lane * scopeSize
                while done < total {
                    let n = min(scopeSize, total - done)
                    let body = {
                        for i in 0..<n {
                            if let pad {
                                try Airlock.enqueue(name: task, args: [.int(done + i)], kwargs: ["pad": pad])
                            } else {
                                try Airlock.enqueue(name: task, args: [.int(done + i)])
                            }
                        }
                    }
                    // --batched: each scope is a batch (its jobs counted by the settle script).
                    if batched {
                        try await executor.batch(Batch(onComplete: Intent(taskName: "airlock.ping", payload: .dynamic(TaskArguments()))), body)
                    } else {
                        try await Airlock.scope(executor: executor, body)
                    }
                    done += scopeSize * lanes
                }
                await executor.client.close()
            }
        }
        try await group.waitForAll()
    }
    let client = RedisClient(configuration: try RedisConfiguration(url: url), name: "airlock-bench-fill")
    let readyKey = Array(RedisKeys(namespace: namespace).ready(queue).utf8)
    // A partitioned queue's jobs are spread over its partitions (--partitions K).
    var queued = 0
    for name in QueuePartitions.names(queue, count: try options.int("partitions", 1)) {
        queued += try await client.send([Array("LLEN".utf8), Array(RedisKeys(namespace: namespace).ready(name).utf8)]).int ?? 0
    }
    let envelopeBytes = try await listElementBytes(client, readyKey)
    await client.close()
    guard queued >= total else { throw BenchError("fill: expected \(total) jobs in \(queue), found \(queued)") }
    print("fill: \(total) jobs in \(queue) in \(fmt((clock.now - start).seconds, 2)) s (envelope \(envelopeBytes) B, scopes of \(scopeSize))")
    emit("", ["jobs": "\(total)", "envelope_bytes": "\(envelopeBytes)"])
}

// MARK: - seed (bulk backlogs straight into Redis)

/// Writes `--count` envelopes for `--queue` straight into Redis — variadic `LPUSH`/`ZADD` of 1000 members
/// each (fewer for large `--payload-bytes`), 8 commands per pipeline — so a 1M-job backlog takes seconds,
/// not one flush per job. `--kind`:
///   ready    `airlock.ping` envelopes on the ready list (pause the queue first if nothing should run them)
///   delayed  envelopes in the delayed set, due `--due-in-ms` from now (default 30 days; the wake list is
///            not rung, as a producer that wrote them long ago would not)
///   dead     dead letters (`error`, `failed_at`, `attempts` added), newest at the left, not trimmed
/// The envelopes are what `RedisExecutor` writes (same fields, same order), with ids unique to this run.
/// Also `SADD <ns>:queues Q`. Prints `result: jobs=… seconds=… per_s=… envelope_bytes=…`.
func seed(_ options: Options) async throws {
    let total = try options.int("count")
    let queue = try options.string("queue")
    let kind = try options.string("kind", "ready")
    let dueIn = try options.int("due-in-ms", 30 * 24 * 3600 * 1000)
    let padBytes = try options.int("payload-bytes", 0)
    guard ["ready", "delayed", "dead"].contains(kind) else { throw BenchError("--kind must be ready, delayed or dead") }
    if let problem = QueueName.problem(with: queue) { throw BenchError("--queue: \(problem)") }
    let keys = RedisKeys(namespace: options.namespace)
    let key: [UInt8] = Array((kind == "ready" ? keys.ready(queue) : kind == "delayed" ? keys.delayed(queue) : keys.dead(queue)).utf8)
    let url = options.redisURL
    let client = RedisClient(configuration: try RedisConfiguration(url: url), name: "airlock-bench-seed")
    let now = Int(realtimeMicros() / 1000)
    let due = now + dueIn
    let runTag = UInt32.random(in: 0...UInt32.max)
    let perCommand = max(1, min(1000, (4 << 20) / (padBytes + 300)))
    let perPipeline = 8
    // The envelope's bytes, built by hand (String(format:) per job would cost more than Redis does).
    let hexDigits = Array("0123456789abcdef".utf8)
    @Sendable func hex(_ value: UInt64, digits: Int, into out: inout [UInt8]) {
        for shift in stride(from: (digits - 1) * 4, through: 0, by: -4) { out.append(hexDigits[Int((value >> UInt64(shift)) & 0xf)]) }
    }
    let prefix = Array("{\"v\":1,\"id\":\"".utf8)
    let pad: [UInt8] = padBytes > 0 ? Array((",\"pad\":\"" + String(repeating: "x", count: padBytes) + "\"").utf8) : []
    let common = "\"queue\":\"\(queue)\",\"enqueued_at\":\(now),"
    let tail: [UInt8] = Array((common + (kind == "delayed"
        ? "\"eta\":\(due),\"expires\":null,\"attempt\":0,\"max_retries\":null,\"origin\":\"airlock-bench-seed\"}"
        : kind == "dead"
        ? "\"eta\":null,\"expires\":null,\"attempt\":3,\"max_retries\":3,\"origin\":\"airlock-bench-seed\",\"error\":\"bench: seeded dead letter (RuntimeError: the task failed 4 times)\",\"failed_at\":\(now),\"attempts\":4}"
        : "\"eta\":null,\"expires\":null,\"attempt\":0,\"max_retries\":null,\"origin\":\"airlock-bench-seed\"}")).utf8)
    @Sendable func envelope(_ i: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(prefix.count + 48 + pad.count + tail.count + 80)
        out += prefix
        let n = UInt64(i)
        hex(UInt64(runTag), digits: 8, into: &out); out.append(UInt8(ascii: "-"))
        hex(n >> 48, digits: 4, into: &out); out += Array("-4".utf8)
        hex(n >> 36, digits: 3, into: &out); out += Array("-8".utf8)
        hex(n >> 24, digits: 3, into: &out); out.append(UInt8(ascii: "-"))
        hex(n, digits: 12, into: &out)
        out += Array("\",\"task\":\"airlock.ping\",\"args\":[\(i)],\"kwargs\":{\"n\":\(i)".utf8)
        out += pad
        out += Array("},".utf8)
        out += tail
        return out
    }
    let verb: [UInt8] = Array((kind == "delayed" ? "ZADD" : "LPUSH").utf8)
    let score = Array(String(due).utf8)
    let count: [UInt8] = Array((kind == "delayed" ? "ZCARD" : "LLEN").utf8)
    let before = try await client.send([count, key]).int ?? 0
    let clock = ContinuousClock()
    let start = clock.now
    // Two connections, each writing every other chunk of `perCommand × perPipeline` envelopes.
    let chunk = perCommand * perPipeline
    let lanes = 2
    try await withThrowingTaskGroup(of: Void.self) { group in
        for lane in 0..<lanes {
            let laneClient = RedisClient(configuration: try RedisConfiguration(url: url), name: "airlock-bench-seed-\(lane)")
            group.addTask {
                var first = lane * chunk
                while first < total {
                    var pipeline: [[[UInt8]]] = []
                    var i = first
                    let end = min(first + chunk, total)
                    while i < end {
                        let n = min(perCommand, end - i)
                        var command: [[UInt8]] = [verb, key]
                        command.reserveCapacity(2 + n * 2)
                        for j in i..<(i + n) {
                            if kind == "delayed" { command.append(score) }
                            command.append(envelope(j))
                        }
                        pipeline.append(command)
                        i += n
                    }
                    for reply in try await laneClient.pipeline(pipeline) {
                        if let error = reply.errorMessage { throw BenchError("seed: \(error)") }
                    }
                    first += chunk * lanes
                }
                await laneClient.close()
            }
        }
        try await group.waitForAll()
    }
    let elapsed = (clock.now - start).seconds
    let envelopeBytes = envelope(total - 1).count
    _ = try await client.send([Array("SADD".utf8), Array(keys.queues.utf8), Array(queue.utf8)])
    let after = try await client.send([count, key]).int ?? 0
    await client.close()
    let keyName = String(decoding: key, as: UTF8.self)
    guard after - before == total else { throw BenchError("seed: expected \(total) more entries in \(keyName), found \(after - before)") }
    print("seed: \(total) \(kind) envelopes (\(envelopeBytes) B each) in \(keyName) in \(fmt(elapsed, 2)) s = \(fmt(Double(total) / elapsed, 0))/s")
    emit("", ["jobs": "\(total)", "seconds": fmt(elapsed, 3), "per_s": fmt(Double(total) / elapsed, 0), "envelope_bytes": "\(envelopeBytes)"])
}

// MARK: - watch (drain timing)

/// Waits for the drain of `--count` jobs from `--queue` (every partition of it with `--partitions K`): t0 = the first poll that sees the ready list
/// shorter than it was at start (the first job taken), t1 = the first poll that sees the ready list
/// empty and stats `processed` ≥ start + count. Polls every `--poll-us` (default 500) on its own connection.
/// Touches `--ready-file` once it has read the starting state, so the caller can start workers after.
func watch(_ options: Options) async throws {
    let count = try options.int("count")
    let queue = try options.string("queue")
    let pollMicros = try options.int("poll-us", 500)
    let timeout = try options.double("timeout", 600)
    // A partitioned queue (--partitions K) is watched as the sum of its partitions.
    let partitions = QueuePartitions.names(queue, count: try options.int("partitions", 1))
    let configuration = try RedisConfiguration(url: options.redisURL)
    let keys = RedisKeys(namespace: options.namespace, for: configuration)
    let client = RedisClient(configuration: configuration, name: "airlock-bench-watch")
    let poll: [[[UInt8]]] = partitions.flatMap { name in
        [[Array("LLEN".utf8), Array(keys.ready(name).utf8)], [Array("HGET".utf8), Array(keys.stats(name).utf8), Array("processed".utf8)]]
    }

    func read() async throws -> (ready: Int, processed: Int) {
        let replies = try await client.pipeline(poll)
        var ready = 0, processed = 0
        for index in stride(from: 0, to: replies.count, by: 2) {
            ready += replies[index].int ?? 0
            processed += replies[index + 1].string.flatMap(Int.init) ?? 0
        }
        return (ready, processed)
    }
    let initial = try await read()
    let target = initial.processed + count
    if let readyFile = try? options.string("ready-file") {
        _ = FileManager.default.createFile(atPath: readyFile, contents: Data())
    }
    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(timeout)
    let interval = Duration.microseconds(pollMicros)
    var started: ContinuousClock.Instant?
    var last = initial
    let rssPid = try? options.int("rss-pid")
    // Jobs held by workers (sum of the queue's in-flight lists), sampled every 20 polls: it should
    // stay within the workers' concurrency + prefetch.
    // (KEYS asks one node: on a Cluster the in-flight lists are counted by the worker ids instead.)
    func inflightLength() async throws -> Int {
        var held = 0
        if configuration.cluster != nil {
            let workers = try await client.send([Array("SMEMBERS".utf8), Array(keys.workers.utf8)]).array?.compactMap(\.string) ?? []
            let lengths = try await client.pipeline(workers.flatMap { worker in
                partitions.map { [Array("LLEN".utf8), Array(keys.inflight($0, worker: worker).utf8)] }
            })
            for length in lengths { held += length.int ?? 0 }
            return held
        }
        let inflightPattern = Array("\(options.namespace):{\(queue)}:inflight:*".utf8)
        for key in try await client.send([Array("KEYS".utf8), inflightPattern]).array ?? [] {
            if let name = key.bytes { held += try await client.send([Array("LLEN".utf8), name]).int ?? 0 }
        }
        return held
    }
    var polls = 0
    var heldMax = 0
    var rssMid: Double?
    while true {
        last = try await read()
        let now = clock.now
        if started == nil, last.ready < initial.ready || last.processed > initial.processed { started = now }
        if let rssPid, rssMid == nil, last.processed - initial.processed >= count / 2 { rssMid = residentMB(pid: rssPid) }
        polls += 1
        if polls % 20 == 0 { heldMax = max(heldMax, try await inflightLength()) }
        if last.ready == 0, last.processed >= target { break }
        if now > deadline {
            throw BenchError("watch: timed out; ready=\(last.ready) processed=\(last.processed - initial.processed)/\(count)")
        }
        try await Task.sleep(for: interval)
    }
    let end = clock.now
    let elapsed = (end - (started ?? end)).seconds
    // In-flight lists must be empty too (every processed job was removed from one first).
    let held = try await inflightLength()
    await client.close()
    guard held == 0 else { throw BenchError("watch: \(held) jobs still in flight after processed reached \(count)") }
    let rate = Double(count) / elapsed
    print("drain: \(count) jobs from \(queue) in \(fmt(elapsed, 3)) s = \(fmt(rate, 0)) jobs/s; "
          + "at most \(heldMax) jobs held in flight (poll every \(pollMicros) µs)")
    if let rssMid {
        emit("", ["jobs": "\(count)", "seconds": fmt(elapsed, 4), "per_s": fmt(rate, 0), "inflight_max": "\(heldMax)", "rss_mid_mb": fmt(rssMid)])
    } else {
        emit("", ["jobs": "\(count)", "seconds": fmt(elapsed, 4), "per_s": fmt(rate, 0), "inflight_max": "\(heldMax)"])
    }
}

/// VmRSS of a process in MiB (from /proc/<pid>/status), or NaN.
func residentMB(pid: Int) -> Double {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return .nan }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kb = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Double($0) }
        return (kb ?? .nan) / 1024
    }
    return .nan
}

// MARK: - latency / lateness

/// Reads `count` samples (µs) pushed by bench.stamp to `list`, waiting up to `timeout` seconds.
func collect(_ client: RedisClient, list: String, count: Int, timeout: Double) async throws -> [Double] {
    let key = Array(list.utf8)
    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(timeout)
    while try await client.send([Array("LLEN".utf8), key]).int ?? 0 < count {
        if clock.now > deadline {
            let have = try await client.send([Array("LLEN".utf8), key]).int ?? 0
            throw BenchError("only \(have) of \(count) bench.stamp samples arrived in \(list) within \(timeout) s")
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    let reply = try await client.send([Array("LRANGE".utf8), key, Array("0".utf8), Array("-1".utf8)])
    _ = try await client.send([Array("DEL".utf8), key])
    return (reply.array ?? []).compactMap { $0.string.flatMap(Double.init) }.sorted()
}

/// One job at a time (a scope of one `bench.stamp` intent), `--interval-us` apart; the worker records
/// start − enqueue. The enqueue stamp is taken just before the scope is entered, so flush time counts.
///
/// `--background-rate R` (jobs/s, default 0 = none): meanwhile a second task with its own connection keeps
/// `airlock.ping` jobs flowing into the same queue at R/s (every `--background-tick-us`, default 2000, a
/// scope of the jobs due by then, at most 1000), starting 0.5 s before the first sample, so the stamps queue
/// behind real work. Reports the rate it reached and the longest ready list it saw (sampled every 50 ticks).
func latency(_ options: Options) async throws {
    let count = try options.int("count")
    let queue = try options.string("queue", "bench-latency")
    let interval = try options.int("interval-us", 1000)
    let backgroundRate = try options.double("background-rate", 0)
    let backgroundTick = try options.int("background-tick-us", 2000)
    let list = "\(options.namespace):bench:latency"
    let url = options.redisURL, namespace = options.namespace
    let executor = try RedisExecutor(url: url, namespace: namespace, defaultQueue: queue)
    _ = try await executor.client.send([Array("DEL".utf8), Array(list.utf8)])

    let background: Task<(sent: Int, seconds: Double, backlogMax: Int, behind: Int), any Error>?
    if backgroundRate > 0 {
        let producer = try RedisExecutor(url: url, namespace: namespace, defaultQueue: queue)
        let readyKey = Array(RedisKeys(namespace: namespace).ready(queue).utf8)
        background = Task {
            let clock = ContinuousClock()
            let start = clock.now
            var sent = 0, ticks = 0, backlogMax = 0, behind = 0
            while !Task.isCancelled {
                let due = Int(backgroundRate * (clock.now - start).seconds)
                let n = min(due - sent, 1000)
                if due - sent > 1000 { behind += 1 }
                if n > 0 {
                    let first = sent
                    try await Airlock.scope(executor: producer) {
                        for i in 0..<n { try Airlock.enqueue(name: "airlock.ping", kwargs: ["n": .int(first + i)]) }
                    }
                    sent += n
                }
                ticks += 1
                if ticks % 50 == 0 { backlogMax = max(backlogMax, try await producer.client.send([Array("LLEN".utf8), readyKey]).int ?? 0) }
                do { try await Task.sleep(for: .microseconds(backgroundTick)) } catch { break }
            }
            let seconds = (clock.now - start).seconds
            await producer.client.close()
            return (sent, seconds, backlogMax, behind)
        }
        try await Task.sleep(for: .milliseconds(500))
    } else {
        background = nil
    }

    let warm = 50
    let clock = ContinuousClock()
    var next = clock.now
    for i in 0..<(warm + count) {
        let t = realtimeMicros()
        try await Airlock.scope(executor: executor) {
            try Airlock.enqueue(name: "bench.stamp", kwargs: ["t": .int(Int(t)), "list": .string(i < warm ? list + ":warm" : list), "i": .int(i)])
        }
        next = next + .microseconds(interval)
        if next > clock.now { try await Task.sleep(until: next, clock: clock) } else { next = clock.now }
    }
    background?.cancel()
    let backgroundResult = try await background?.value
    let sorted = try await collect(executor.client, list: list, count: count, timeout: 30)
    _ = try await executor.client.send([Array("DEL".utf8), Array((list + ":warm").utf8)])
    await executor.client.close()
    let p50 = percentile(sorted, 0.5), p99 = percentile(sorted, 0.99), p999 = percentile(sorted, 0.999)
    var line = "latency: \(count) jobs, one every \(interval) µs: enqueue→start p50 \(fmt(p50)) µs, p99 \(fmt(p99)) µs, "
        + "p99.9 \(fmt(p999)) µs, max \(fmt(sorted.last ?? .nan)) µs"
    var fields: [(String, String)] = [("jobs", "\(count)"), ("p50_us", fmt(p50)), ("p99_us", fmt(p99)), ("p999_us", fmt(p999)),
                                      ("max_us", fmt(sorted.last ?? .nan))]
    if let bg = backgroundResult {
        let rate = Double(bg.sent) / bg.seconds
        line += "; background \(bg.sent) airlock.ping at \(fmt(rate, 0))/s (target \(fmt(backgroundRate, 0))/s), "
            + "ready list ≤ \(bg.backlogMax) sampled, \(bg.behind) ticks more than 1000 jobs behind"
        fields += [("bg_target_per_s", fmt(backgroundRate, 0)), ("bg_per_s", fmt(rate, 0)), ("bg_jobs", "\(bg.sent)"),
                   ("bg_backlog_max", "\(bg.backlogMax)"), ("bg_behind_ticks", "\(bg.behind)")]
    }
    print(line)
    print("result: " + fields.map { "\($0.0)=\($0.1)" }.joined(separator: " "))
}

/// `--count` delayed `bench.stamp` jobs with due times spread evenly over `--spread-ms`, starting
/// `--lead-ms` from now, enqueued in shuffled order (so later-enqueued jobs are often due earlier and
/// must wake the promoter). Each job's eta is a whole millisecond and its kwargs `t` is that due time,
/// so the worker records start − due.
func lateness(_ options: Options) async throws {
    let count = try options.int("count")
    let queue = try options.string("queue", "bench-lateness")
    let spread = try options.int("spread-ms", 3000)
    let lead = try options.int("lead-ms", 300)
    let list = "\(options.namespace):bench:lateness"
    let executor = try RedisExecutor(url: options.redisURL, namespace: options.namespace, defaultQueue: queue)
    _ = try await executor.client.send([Array("DEL".utf8), Array(list.utf8)])
    let base = realtimeMicros() / 1000 + Int64(lead)
    var offsets = (0..<count).map { Int64($0 * spread / max(count, 1)) }
    offsets.shuffle()
    for offset in offsets {
        let dueMs = base + offset
        try await Airlock.scope(executor: executor) {
            try Airlock.enqueue(
                name: "bench.stamp", kwargs: ["t": .int(Int(dueMs * 1000)), "list": .string(list)],
                options: DispatchOptions(eta: Date(timeIntervalSince1970: Double(dueMs) / 1000)))
        }
    }
    let enqueued = realtimeMicros() / 1000
    if enqueued > base { print("lateness: warning: enqueueing took longer than the lead (\(enqueued - base) ms over)") }
    let sorted = try await collect(executor.client, list: list, count: count, timeout: Double(lead + spread) / 1000 + 30)
    await executor.client.close()
    let ms = sorted.map { $0 / 1000 }
    let p50 = percentile(ms, 0.5), p99 = percentile(ms, 0.99), worst = ms.last ?? .nan, best = ms.first ?? .nan
    print("lateness: \(count) delayed jobs due over \(spread) ms: start − due p50 \(fmt(p50, 2)) ms, p99 \(fmt(p99, 2)) ms, "
          + "max \(fmt(worst, 2)) ms, min \(fmt(best, 2)) ms")
    emit("", ["jobs": "\(count)", "p50_ms": fmt(p50, 3), "p99_ms": fmt(p99, 3), "max_ms": fmt(worst, 3), "min_ms": fmt(best, 3)])
}

// MARK: - main

let usage = """
    usage: AirlockBench <subcommand> [--redis URL] [--namespace NS] …
      run|worker --queues Q [--concurrency N] [--prefetch P] …   worker (stock command line + bench.stamp)
      enqueue --count N [--scope S] [--producers P] [--shared] [--typed] [--queue Q] [--payload-bytes B]
      fill --count N --queue Q [--partitions K] [--payload-bytes B] [--batched]
      seed --count N --queue Q [--kind ready|delayed|dead] [--due-in-ms MS] [--payload-bytes B]
      watch --count N --queue Q [--partitions K] [--ready-file F] [--poll-us 500] [--timeout S] [--rss-pid PID]
      latency --count N [--interval-us 1000] [--queue Q] [--background-rate R] [--background-tick-us 2000]
      lateness --count N [--spread-ms 3000] [--lead-ms 300] [--queue Q]
      decode [--count N] [--payload-bytes B]
      roundtrip --redis URL [--count N]
    """

/// `decode [--count N] [--payload-bytes B]`: CPU per `Envelope.decode` of the message the drain
/// measurement fetches (the executor's own bytes for `airlock.ping`), best of 5 runs; then a typed task's
/// arguments read by `TaskArguments.decode`, against the JSON text and `JSONDecoder` it replaced.
func decodeBench(_ options: Options) throws {
    let count = try options.int("count", 1_000_000)
    var kwargs: [String: JSONValue] = [:]
    if let pad = try padding(options) { kwargs["pad"] = pad }
    let message = Envelope(id: "b2782bc7-9fd8-4921-9d6e-00e1ed0ac6da", task: "airlock.ping", args: [2], kwargs: kwargs,
                           queue: "bench", enqueuedAt: 1_796_310_757_169).encoded()
    var best = Double.infinity
    var checksum = 0
    for _ in 0..<5 {
        let cpu = processCPUSeconds()
        for _ in 0..<count { checksum &+= try Envelope.decode(message).task.utf8.count }
        best = min(best, (processCPUSeconds() - cpu) * 1e9 / Double(count))
    }
    guard checksum == 5 * count * "airlock.ping".utf8.count else { throw BenchError("decode: wrong task name read") }
    // A typed task's arguments, as the worker reads them (`TaskArguments.decode`), against what it
    // did before: the arguments written as JSON text and read back by JSONDecoder.
    let arguments = TaskArguments(kwargs: ["n": 2])
    func typed(_ read: () throws -> BenchPing) rethrows -> Double {
        var best = Double.infinity
        var sum = 0
        for _ in 0..<5 {
            let cpu = processCPUSeconds()
            for _ in 0..<count { sum &+= try read().n }
            best = min(best, (processCPUSeconds() - cpu) * 1e9 / Double(count))
        }
        return sum == 5 * count * 2 ? best : .nan
    }
    let direct = try typed { try arguments.decode(BenchPing.self) }
    let viaText = try typed { try JSONDecoder().decode(BenchPing.self, from: Data(JSONValue.object(arguments.kwargs).description.utf8)) }
    print("decode: \(message.count)-byte envelope, best of 5 × \(count): \(fmt(best, 0)) ns of CPU each; "
        + "typed arguments {\"n\":2}: \(fmt(direct, 0)) ns (through JSON text and JSONDecoder: \(fmt(viaText, 0)) ns)")
    print("result: envelope_bytes=\(message.count) ns_per_decode=\(fmt(best, 0)) ns_per_typed_arguments=\(fmt(direct, 0)) ns_per_typed_arguments_via_text=\(fmt(viaText, 0))")
}

/// `roundtrip --redis URL [--count N]`: what one call through `RedisClient` costs on top of the
/// network round trip — the number docs/ARCHITECTURE.md compares with `redis-benchmark -P 1 -c 1`.
func roundtrip(_ options: Options) async throws {
    let count = try options.int("count", 50_000)
    let client = RedisClient(configuration: try RedisConfiguration(url: try options.string("redis")), name: "bench-roundtrip")
    try await client.connect()
    let ping = RedisCommand("PING")
    for _ in 0..<1_000 { _ = try await client.send(ping) }   // warm-up
    var latencies: [Double] = []
    latencies.reserveCapacity(count)
    var cpu = processCPUSeconds()
    var started = ContinuousClock.now
    for _ in 0..<count {
        let sent = ContinuousClock.now
        _ = try await client.send(ping)
        latencies.append((ContinuousClock.now - sent).micros)
    }
    let sequential = ContinuousClock.now - started
    let sequentialCPU = processCPUSeconds() - cpu
    latencies.sort()
    let batch = Array(repeating: ping, count: 100)
    cpu = processCPUSeconds()
    started = ContinuousClock.now
    for _ in 0..<(count / 100) { _ = try await client.pipeline(batch) }
    let pipelined = ContinuousClock.now - started
    let pipelinedCPU = processCPUSeconds() - cpu
    await client.close()
    let sequentialRate = Double(count) / sequential.seconds
    let pipelinedRate = Double(count / 100 * 100) / pipelined.seconds
    let p50 = percentile(latencies, 0.50), p99 = percentile(latencies, 0.99)
    print("roundtrip: \(count) sequential PINGs \(fmt(sequentialRate, 0))/s (\(fmt(sequential.micros / Double(count), 1)) µs each, p50 \(fmt(p50, 1)) µs, p99 \(fmt(p99, 1)) µs, client CPU \(fmt(sequentialCPU * 1e6 / Double(count), 2)) µs); pipelined by 100: \(fmt(pipelinedRate, 0))/s (client CPU \(fmt(pipelinedCPU * 1e6 / Double(count), 2)) µs per command)")
    print("result: sequential_per_s=\(fmt(sequentialRate, 0)) sequential_p50_us=\(fmt(p50, 1)) sequential_p99_us=\(fmt(p99, 1)) sequential_cpu_us=\(fmt(sequentialCPU * 1e6 / Double(count), 2)) pipelined_per_s=\(fmt(pipelinedRate, 0)) pipelined_cpu_us=\(fmt(pipelinedCPU * 1e6 / Double(count), 2))")
}

let arguments = CommandLine.arguments
let subcommand = arguments.count > 1 ? arguments[1] : "help"
switch subcommand {
case "worker":
    // `worker …` is `run …`: re-exec with the subcommand renamed (CommandLine.arguments is read-only).
    let argv = ["AirlockBench", "run"] + arguments.dropFirst(2)
    var cArgs = argv.map { strdup($0) } + [nil]
    execv("/proc/self/exe", &cArgs)
    FileHandle.standardError.write(Data("AirlockBench worker: exec failed: \(String(cString: strerror(errno)))\n".utf8))
    exit(1)
case "run":
    _ = stampClient  // resolve --redis before the command line is parsed
    // bench/observability.sh: a tracer that records every span (counting, not keeping them), to
    // price the airlock.run span; the stock daemon bootstraps none.
    if ProcessInfo.processInfo.environment["AIRLOCK_BENCH_TRACING"] == "1" {
        InstrumentationSystem.bootstrap(W3CTestTracer(keepsSpans: false))
    }
    await AirlockCommand.main(tasks: benchTasks())
case "decode":
    do {
        try decodeBench(try Options(arguments.dropFirst(2)))
    } catch {
        FileHandle.standardError.write(Data("AirlockBench decode: \(error)\n".utf8))
        exit(1)
    }
case "enqueue", "fill", "seed", "watch", "latency", "lateness", "roundtrip":
    do {
        let options = try Options(arguments.dropFirst(2))
        switch subcommand {
        case "enqueue": try await enqueueBench(options)
        case "fill": try await fill(options)
        case "seed": try await seed(options)
        case "watch": try await watch(options)
        case "latency": try await latency(options)
        case "roundtrip": try await roundtrip(options)
        default: try await lateness(options)
        }
    } catch {
        FileHandle.standardError.write(Data("AirlockBench \(subcommand): \(error)\n".utf8))
        exit(1)
    }
default:
    print(usage)
    exit(subcommand == "help" || subcommand == "--help" ? 0 : 2)
}
