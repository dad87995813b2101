import AirlockFuzzing
import Foundation
import Testing

/// `make fuzz` runs libFuzzer over the worker's whole path (Fuzz/AirlockFuzzing/WorkerPath.swift);
/// its seed corpus, and every input it ever found interesting that was added since, replays here
/// on every `make test`, so a fixed finding stays fixed.
@Suite("Fuzz corpus replay: the worker path never breaks an invariant")
struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus")

    @Test func everyCorpusInputKeepsEveryInvariant() async throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.corpus.path).sorted()
        #expect(files.count >= 30, "the seed corpus is checked in")
        for file in files {
            let data = try #require(FileManager.default.contents(atPath: Self.corpus.appendingPathComponent(file).path))
            let problems = await WorkerPath.check(Array(data))
            #expect(problems.isEmpty, "\(file): \(problems)")
        }
    }

    @Test func theCheckNoticesABrokenInvariant() async {
        // A message whose dead letter would lose nothing can still not be empty input: sanity of the harness itself.
        #expect(await WorkerPath.check([]).isEmpty)
        #expect(await WorkerPath.check([0]).isEmpty, "an empty message is dead-lettered with a reason, bytes kept")
    }
}
