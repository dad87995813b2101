import AirlockTestSupport
import Foundation
import Testing

/// What one run of the real `airlock-workerd` binary produced.
struct CLIResult: Sendable, CustomStringConvertible {
    let status: Int32
    let stdout: String
    let stderr: String
    let elapsed: Duration

    var stdoutLines: [String] { stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).dropLastIfEmpty() }
    var stderrLines: [String] { stderr.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).dropLastIfEmpty() }

    var description: String { "exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
}

extension Array where Element == String {
    fileprivate func dropLastIfEmpty() -> [String] { last == "" ? Array(dropLast()) : self }
}

/// Runs `.build/debug/airlock-workerd` (built by `swift build` / `make test` before the tests).
enum CLI {
    /// Whether `text` holds a byte a terminal would act on: a C0 control other than newline, DEL,
    /// a C1 control, or a bidirectional override.
    static func hasTerminalControls(_ text: String) -> Bool {
        text.unicodeScalars.contains { scalar in
            let value = scalar.value
            return (value < 0x20 && value != 0x0A) || (0x7F...0x9F).contains(value) || (0x202A...0x202E).contains(value)
                || (0x2066...0x2069).contains(value) || value == 0x2028 || value == 0x2029
        }
    }

    /// The package root, found from this file's path.
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let binary = packageRoot.appendingPathComponent(".build/debug/airlock-workerd")

    /// Runs the binary with `arguments` on a thread of its own (never blocking the cooperative
    /// pool), with stdout and stderr captured separately and `AIRLOCK_*` variables removed from the
    /// environment, so only the arguments decide where it connects.
    static func run(
        _ arguments: [String], executable: URL = binary, environment extra: [String: String] = [:], timeout: Duration = .seconds(60)
    ) async throws -> CLIResult {
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw AdminTestError("\(binary.path) does not exist: run `swift build` (or `make test`) before the CLI tests")
        }
        return try await RedisServer.offPool {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("airlock-cli-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let outURL = directory.appendingPathComponent("stdout")
            let errURL = directory.appendingPathComponent("stderr")
            _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
            _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
            let out = try FileHandle(forWritingTo: outURL)
            let err = try FileHandle(forWritingTo: errURL)
            let process = Process()
            process.executableURL = executable
            process.arguments = arguments
            process.environment = ProcessInfo.processInfo.environment
                .filter { !$0.key.hasPrefix("AIRLOCK_") && $0.key != "REDIS_URL" }
                .merging(extra) { _, new in new }
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = out
            process.standardError = err
            let started = ContinuousClock.now
            try process.run()
            let watchdog = DispatchWorkItem { if process.isRunning { process.terminate() } }
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds(timeout), execute: watchdog)
            process.waitUntilExit()
            watchdog.cancel()
            let elapsed = ContinuousClock.now - started
            try out.close()
            try err.close()
            return CLIResult(
                status: process.terminationStatus,
                stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self),
                elapsed: elapsed)
        }
    }

    /// Runs with `--redis` and `--namespace` of `fixture` appended.
    static func run(_ arguments: [String], on fixture: AdminFixture, timeout: Duration = .seconds(60)) async throws -> CLIResult {
        try await run(arguments + ["--redis", fixture.url, "--namespace", fixture.namespace], timeout: timeout)
    }

    /// A lower-case UUID, as job ids are.
    static func isJobID(_ text: String) -> Bool {
        text.count == 36 && UUID(uuidString: text) != nil && text == text.lowercased()
    }
}

private func seconds(_ duration: Duration) -> Double {
    let (whole, attoseconds) = duration.components
    return Double(whole) + Double(attoseconds) / 1e18
}
