import Foundation
import Testing

/// `airlock-workerd outbox …` and `relay …` hand over to `airlock-outbox` (the AirlockPostgres
/// package's tool), so the daemon never links PostgreSQL; without that tool they say how to build it.
@Suite("CLI: outbox forwarding", .timeLimit(.minutes(5)))
struct OutboxForwardingCLITests {
    /// A directory for a PATH that holds only what the test puts there.
    private func emptyDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("airlock-outbox-path-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Writes a script through a close-on-exec descriptor. Foundation's `write(to:atomically:)` leaves
    /// its descriptor inheritable, so a process another test spawns meanwhile keeps the file open for
    /// writing and exec of the script then fails with ETXTBSY ("Text file busy") — seen in CI.
    private func writeExecutable(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    @Test("airlock-outbox absent → exit 1 and one line naming the tool, where it was looked for and how to build it")
    func absentToolSaysHowToBuildIt() async throws {
        let directory = try emptyDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for arguments in [["outbox", "migrate", "--postgres", "postgres://127.0.0.1/x"], ["relay", "--postgres", "postgres://x", "--redis", "redis://x"]] {
            let result = try await CLI.run(arguments, environment: ["PATH": directory.path])
            #expect(result.status == 1, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
            #expect(result.stderrLines.count == 1, "\(result)")
            #expect(result.stderr.hasPrefix("airlock-workerd: error: airlock-outbox was not found"), "\(result)")
            #expect(result.stderr.contains(directory.path), "\(result)")
            #expect(result.stderr.contains("swift build -c release --product airlock-outbox --package-path Integrations/AirlockPostgres"), "\(result)")
            #expect(result.stderr.contains("docs/OUTBOX.md"), "\(result)")
        }
        let wrong = try await CLI.run(["outbox", "status"], environment: ["AIRLOCK_OUTBOX_BINARY": directory.path + "/nope"])
        #expect(wrong.status == 1, "\(wrong)")
        #expect(wrong.stderr.contains("AIRLOCK_OUTBOX_BINARY="), "\(wrong)")
    }

    @Test("airlock-outbox on PATH → it replaces the daemon with the same arguments, and its exit status is the command's")
    func presentToolGetsTheArguments() async throws {
        let directory = try emptyDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let tool = directory.appendingPathComponent("airlock-outbox")
        try writeExecutable("#!/bin/sh\necho \"$0|$*\"\nexit 7\n", to: tool.path)

        let relay = try await CLI.run(["relay", "--postgres", "postgres://h/db", "--relays-per-process", "2"], environment: ["PATH": directory.path])
        #expect(relay.status == 7, "\(relay)")
        #expect(relay.stdout == "\(tool.path)|relay --postgres postgres://h/db --relays-per-process 2\n", "\(relay)")

        let parked = try await CLI.run(["outbox", "parked", "list", "--json"], environment: ["PATH": directory.path])
        #expect(parked.status == 7, "\(parked)")
        #expect(parked.stdout.hasSuffix("|parked list --json\n"), "\(parked)")
    }
}
