import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The PostgreSQL outbox lives in the AirlockPostgres package, so this daemon never links a
// database driver. `airlock-workerd outbox …` and `airlock-workerd relay …` replace this process
// with that package's `airlock-outbox` tool (same arguments, same terminal, same exit status).

/// `airlock-workerd outbox <migrate|status|parked|…>`: runs `airlock-outbox` with the same arguments.
struct OutboxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox",
        abstract: "Operate the PostgreSQL outbox (migrate, status, parked rows): runs airlock-outbox.",
        discussion: OutboxTool.discussion
    )

    @Argument(parsing: .captureForPassthrough, help: "Arguments for airlock-outbox (e.g. migrate --postgres URL).")
    var arguments: [String] = []

    func run() throws {
        try OutboxTool.exec(arguments)
    }
}

/// `airlock-workerd relay --postgres URL --redis URL`: runs `airlock-outbox relay` with the same arguments.
struct RelayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Run PostgreSQL outbox relays (delivers committed rows to Redis): runs airlock-outbox relay.",
        discussion: OutboxTool.discussion
    )

    @Argument(parsing: .captureForPassthrough, help: "Arguments for airlock-outbox relay (e.g. --postgres URL --redis URL).")
    var arguments: [String] = []

    func run() throws {
        try OutboxTool.exec(["relay"] + arguments)
    }
}

/// Finds and runs `airlock-outbox`.
enum OutboxTool {
    static let name = "airlock-outbox"

    static let discussion = """
        The outbox needs PostgreSQL, which this daemon does not link: these commands replace the process with \
        airlock-outbox, looked up beside airlock-workerd, then on PATH (AIRLOCK_OUTBOX_BINARY names it explicitly). \
        Build it with `swift build --product airlock-outbox --package-path Integrations/AirlockPostgres`. \
        See docs/OUTBOX.md.
        """

    /// What to do when the tool is nowhere to be found.
    static func notFound(searched: [String]) -> CommandFailure {
        CommandFailure(
            "\(name) was not found (looked in \(searched.map { safe($0) }.joined(separator: ", "))): the PostgreSQL outbox "
                + "commands live in the AirlockPostgres package. Build them with `swift build -c release --product \(name) "
                + "--package-path Integrations/AirlockPostgres` and put the binary beside airlock-workerd or on PATH "
                + "(or set AIRLOCK_OUTBOX_BINARY to its path); see docs/OUTBOX.md")
    }

    /// Where the tool is: `AIRLOCK_OUTBOX_BINARY`, beside this executable, then each PATH directory.
    static func locate(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        var searched: [String] = []
        if let explicit = environment["AIRLOCK_OUTBOX_BINARY"], !explicit.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: explicit) else {
                throw CommandFailure("AIRLOCK_OUTBOX_BINARY=\(safe(explicit)) is not an executable file; unset it or point it at \(name)")
            }
            return explicit
        }
        if let own = executableDirectory() {
            let beside = own + "/" + name
            if FileManager.default.isExecutableFile(atPath: beside) { return beside }
            searched.append(own)
        }
        for directory in (environment["PATH"] ?? "").split(separator: ":").map(String.init) where !directory.isEmpty {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            searched.append(directory)
        }
        if searched.isEmpty { searched.append("an empty PATH") }
        throw notFound(searched: searched)
    }

    /// The directory of the running binary (`/proc/self/exe` on Linux, the first argument elsewhere).
    static func executableDirectory() -> String? {
        #if os(Linux)
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return directory(of: path)
        }
        #endif
        guard let first = CommandLine.arguments.first, first.contains("/") else { return nil }
        return directory(of: URL(fileURLWithPath: first).resolvingSymlinksInPath().path)
    }

    /// What `NSString.deletingLastPathComponent` gives: `/a/b` for `/a/b/c`, `/` for `/a`, `` for `a`.
    static func directory(of path: String) -> String {
        var path = Substring(path)
        while path.count > 1, path.last == "/" { path.removeLast() }
        guard let slash = path.lastIndex(of: "/") else { return "" }
        var head = path[..<slash]
        while head.last == "/" { head.removeLast() }
        return head.isEmpty ? "/" : String(head)
    }

    /// Replaces this process with the tool; returns only by throwing.
    static func exec(_ arguments: [String]) throws {
        let path = try locate()
        let argv = [name] + arguments
        var cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
        cArguments.append(nil)
        defer { for pointer in cArguments { free(pointer) } }
        execv(path, cArguments)
        throw CommandFailure("could not run \(safe(path)): \(String(cString: strerror(errno)))")
    }
}
