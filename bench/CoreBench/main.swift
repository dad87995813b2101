// Enqueue + flush overhead of the core with the recording executor: 1M intents in scopes of 100.
// Run: make bench-core   (release build)
import Airlock
import Foundation

struct Ping: AirlockTask {
    static let name = "bench.ping"
    let n: Int
    func run(_ context: TaskContext) async throws {}
}

let total = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 1_000_000
let perScope = 100
let recorder = RecordingExecutor()

func runOnce() async throws -> Duration {
    recorder.reset()
    let clock = ContinuousClock()
    let start = clock.now
    for scopeIndex in 0..<(total / perScope) {
        try await Airlock.scope(executor: recorder) {
            for i in 0..<perScope {
                try Airlock.enqueue(Ping(n: scopeIndex * perScope + i))
            }
        }
    }
    return clock.now - start
}

_ = try await runOnce()  // warm-up
var best = Duration.seconds(1_000)
for _ in 0..<3 { best = min(best, try await runOnce()) }
precondition(recorder.intents.count == total, "recorder saw \(recorder.intents.count) intents, expected \(total)")
let nsPerIntent = Double(best.components.seconds) * 1e9 / Double(total) + Double(best.components.attoseconds) / 1e9 / Double(total)
print(String(format: "core: %d intents in scopes of %d, best of 3: %.3f s, %.0f ns/intent, %.0f intents/s",
             total, perScope, best.timeInterval, nsPerIntent, Double(total) / best.timeInterval))
print(String(format: "bench-core: ns_per_intent=%.0f intents_per_s=%.0f", nsPerIntent, Double(total) / best.timeInterval))
