import Foundation
import Testing

extension AirlockCore {
    /// README.md's Swift samples are compiled in `Examples/ReadmeSamples` (a target `swift build`
    /// builds); this checks that the README still shows that code.
    @Suite("README samples match compiled code")
    struct ReadmeSamplesTests {
        static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

        /// The README's ```swift blocks, except those that sketch an integration package (Hummingbird's
        /// `router.`, Vapor's `app.airlock`): the full form of each compiles in that package's example
        /// app, which this package cannot build.
        static func readmeBlocks() throws -> [[String]] {
            let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
            var blocks: [[String]] = []
            var current: [String]?
            // Fences indented inside a list item count too.
            for line in readme.components(separatedBy: "\n") {
                let fence = line.trimmingCharacters(in: .whitespaces)
                if fence.hasPrefix("```swift") { current = []; continue }
                if fence.hasPrefix("```"), let block = current {
                    if !block.contains(where: { $0.contains("router.") || $0.contains("app.airlock") }) { blocks.append(block) }
                    current = nil
                    continue
                }
                current?.append(line)
            }
            return blocks
        }

        /// `line` matches `candidate` when they are equal once spaces are folded; a `…` in `line`
        /// matches any text.
        static func matches(_ line: String, _ candidate: String) -> Bool {
            func fold(_ text: String) -> String { text.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
            let parts = fold(line).components(separatedBy: "…")
            var rest = Substring(fold(candidate))
            for (index, part) in parts.enumerated() {
                guard let range = rest.range(of: part) else { return false }
                if index == 0 && range.lowerBound != rest.startIndex { return false }
                rest = rest[range.upperBound...]
            }
            return parts.count > 1 || rest.isEmpty
        }

        @Test func everyReadmeLineAppearsInTheCompiledSamplesInOrder() throws {
            let samples = try String(
                contentsOf: Self.root.appendingPathComponent("Examples/ReadmeSamples/ReadmeSamples.swift"), encoding: .utf8
            ).components(separatedBy: "\n")
            let blocks = try Self.readmeBlocks()
            #expect(blocks.count >= 3, "the README's core, Redis and worker samples")
            for block in blocks {
                var position = samples.startIndex
                for line in block where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                    guard let found = samples[position...].firstIndex(where: { Self.matches(line, $0) }) else {
                        Issue.record("README line not found (in order) in Examples/ReadmeSamples: \(line)")
                        break
                    }
                    position = found + 1
                }
            }
        }
    }
}
