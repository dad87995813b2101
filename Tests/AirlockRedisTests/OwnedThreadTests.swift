import Foundation
import Testing

@testable import AirlockRedisClient

/// The threads the package owns (a connection's, the Sentinel watcher's, the metrics endpoint's)
/// start on pthreads, named for `top -H`.
@Suite("Owned threads")
struct OwnedThreadTests {
    @Test("the body runs on a thread of its own that carries the name, cut to Linux's 15 bytes")
    func runsNamed() async throws {
        for name in ["airlock-t", "airlock-redis-a-long-client-name"] {
            let (seen, caller) = await withCheckedContinuation { (done: CheckedContinuation<(String, Bool), Never>) in
                OwnedThread.start(name: name) {
                    let comm = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "?"
                    done.resume(returning: (comm.trimmingCharacters(in: .newlines), Thread.isMainThread))
                }
            }
            #expect(seen == String(name.prefix(15)))
            #expect(!caller)
        }
    }

    @Test("a condition wakes the thread that waits on it, in either order of arrival")
    func conditionWakesTheWaiter() async {
        let condition = ThreadCondition()
        let state = Box()
        let woke = await withCheckedContinuation { (done: CheckedContinuation<Int, Never>) in
            OwnedThread.start(name: "airlock-waiter") {
                condition.lock()
                state.waiting = true
                condition.signal()
                while state.value == 0 { condition.wait() }
                let value = state.value
                condition.unlock()
                done.resume(returning: value)
            }
            // The other side on a thread of its own too: the test's task must not block the pool.
            OwnedThread.start(name: "airlock-signal") {
                condition.lock()
                while !state.waiting { condition.wait() }
                state.value = 42
                condition.signal()
                condition.unlock()
            }
        }
        #expect(woke == 42)
    }

    /// Shared between the test and its thread under `condition`'s lock only.
    private final class Box: @unchecked Sendable {
        var waiting = false
        var value = 0
    }
}
