// The producer side of `make demo`: what a web backend does, through Airlock scopes and the
// Redis executor. Then it waits until the workers have drained the queues.
import Airlock
import AirlockRedis
import DemoTasks
import Foundation

let url = ProcessInfo.processInfo.environment["AIRLOCK_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"
let executor = try RedisExecutor(url: url)
try Airlock.configure(executor: executor)

struct OutOfStock: Error {}

// 1. "Requests" that succeed: each scope's intents reach Redis in one atomic round trip.
for order in 1...200 {
    try await Airlock.scope {
        try Airlock.enqueue(ProcessOrder(orderID: order))
    }
}
print("demo: 200 orders enqueued (each spawns an email and a warehouse job when it succeeds)")

// 2. A request that fails: nothing it enqueued escapes.
do {
    try await Airlock.scope {
        try Airlock.enqueue(ProcessOrder(orderID: 999))
        throw OutOfStock()
    }
} catch {
    print("demo: order 999 failed with \(error); its jobs were dropped, never queued")
}

// 3. Delayed work lives in Redis, not in a process's memory.
try await Airlock.scope {
    for i in 0..<20 {
        try Airlock.enqueue(SendConfirmationEmail(orderID: 5000 + i), options: .init(countdown: .milliseconds(200 + 100 * i)))
    }
}
print("demo: 20 delayed emails due over the next 2 s")

// 4. Retries and dead letters.
try await Airlock.scope {
    for i in 0..<5 { try Airlock.enqueue(FlakyCharge(orderID: 7000 + i)) }
    try Airlock.enqueue(name: "airlock.fail", kwargs: ["message": "the payment provider is down"], options: .init(maxRetries: 1))
    try Airlock.enqueue(name: "reports.nightly", kwargs: ["day": "2026-11-25"])
}
print("demo: 5 flaky charges (fail once, then succeed) and 1 job that fails for good")

// Wait for the fleet to drain everything (the stats come from Redis, as the CLI's do).
let client = RedisClient(configuration: try RedisConfiguration(url: url))
let keys = RedisKeys()
let deadline = Date().addingTimeInterval(60)
while Date() < deadline {
    var pending = 0
    for queue in ["default", "warehouse"] {
        pending += try await client.send("LLEN", keys.ready(queue)).int ?? 0
        pending += try await client.send("ZCARD", keys.delayed(queue)).int ?? 0
    }
    let workers = (try await client.send("SMEMBERS", keys.workers).array ?? []).compactMap(\.string)
    for worker in workers {
        for queue in ["default", "warehouse"] {
            pending += try await client.send("LLEN", keys.inflight(queue, worker: worker)).int ?? 0
        }
    }
    if pending == 0 { break }
    try await Task.sleep(for: .milliseconds(200))
}
for queue in ["default", "warehouse"] {
    let stats = try await client.send("HGETALL", keys.stats(queue)).array ?? []
    var fields: [String] = []
    for pair in stride(from: 0, to: stats.count - 1, by: 2) {
        fields.append("\(stats[pair].string ?? "?")=\(stats[pair + 1].string ?? "?")")
    }
    print("demo: queue \(queue): \(fields.sorted().joined(separator: " "))")
}
await client.close()
