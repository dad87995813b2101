// The worker-path fuzz target (`make fuzz`), or, built without -DFUZZING, a replayer of a corpus:
// `AirlockFuzz <file or directory>…` runs every input through the same checks and exits 1 on a
// broken invariant (make test replays Fuzz/corpus through Tests/AirlockWorkerTests instead).
import AirlockFuzzing
import Foundation

#if FUZZING
/// libFuzzer's own driver, started from the executable's `main` (SwiftPM links executables with
/// `main` = `AirlockFuzz_main`, so libFuzzer's `main` is not pulled from its runtime archive).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32
) -> Int32

@_cdecl("AirlockFuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzz(data, size) }
}

/// libFuzzer's entry point: one input, synchronously. The check is async, so it runs in a task
/// this thread waits for (this thread is libFuzzer's, never the cooperative pool's).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let done = DispatchSemaphore(value: 0)
    let problems = ProblemBox()
    Task {
        problems.set(await WorkerPath.check(input))
        done.signal()
    }
    done.wait()
    if let first = problems.get().first { fatalError("invariant broken: \(first)") }
    return 0
}

/// Hands the check's findings from the task to the waiting thread (the semaphore orders the two).
final class ProblemBox: @unchecked Sendable {
    private var problems: [String] = []
    func set(_ problems: [String]) { self.problems = problems }
    func get() -> [String] { problems }
}
#else
@main
struct Replay {
    static func main() async {
        var failures = 0
        var count = 0
        for path in CommandLine.arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            let files = isDirectory.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { "\(path)/\($0)" } : [path]
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                count += 1
                for problem in await WorkerPath.check(Array(data)) {
                    print("\(file): \(problem)")
                    failures += 1
                }
            }
        }
        print("replayed \(count) inputs, \(failures) broken invariants")
        exit(failures == 0 ? 0 : 1)
    }
}
#endif
