import Airlock
import AirlockRedis
import AirlockRedisClient
import AirlockWorker
import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Exit statuses of `airlock-workerd` (documented in `docs/OPERATIONS.md`).
enum ExitStatus {
    /// Success.
    static let success: Int32 = 0
    /// A failure, including data the operator gave that cannot be used (bad JSON, unknown queue or id).
    static let failure: Int32 = 1
    /// The command line itself is wrong (unknown option, missing argument, invalid value).
    static let usage: Int32 = 2
    /// Redis is unreachable, timed out, refused the credentials, or is not Redis (protocol error).
    static let redis: Int32 = 3
}

/// A failure reported as one line on stderr with a non-zero exit, never a stack trace.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    let exitCode: Int32

    init(_ description: String, exitCode: Int32 = ExitStatus.failure) {
        self.description = description
        self.exitCode = exitCode
    }

    /// Maps anything a command can throw to the line and status an operator sees.
    init(_ error: any Error) {
        switch error {
        case let failure as CommandFailure:
            self = failure
        case let redis as RedisError:
            self.init(redis.description, exitCode: Self.status(for: redis))
        case let admin as AdminError:
            self.init(admin.description)
        case let dispatch as DispatchError:
            if let executor = dispatch.underlying as? RedisExecutorError {
                self.init(executor.description, exitCode: executor.redisError.map(Self.status(for:)) ?? ExitStatus.failure)
            } else {
                self.init("nothing was enqueued: \(dispatch.underlying)")
            }
        default:
            self.init("\(error)")
        }
    }

    private static func status(for error: RedisError) -> Int32 {
        error.isConnectionProblem || error.isConfigurationProblem || error.kind == .protocolError ? ExitStatus.redis : ExitStatus.failure
    }
}

/// Logs to stderr at `level` in `format`, once per process.
func bootstrapLogging(level: Logger.Level, format: LogFormat = .human) {
    LoggingSystem.bootstrap { label in
        DaemonLogHandler(label: label, format: format, level: level)
    }
}

/// Unbuffered writes to stdout and stderr, in the order they are made.
enum Console {
    static let program = "airlock-workerd"

    /// Writes `text` and a newline to stdout.
    static func out(_ text: String) {
        write(text + "\n", to: STDOUT_FILENO)
    }

    /// Writes `text` as is to stdout.
    static func raw(_ text: String) {
        write(text, to: STDOUT_FILENO)
    }

    /// Ends the process with `status` at once (the C library's `exit`, which commands with an
    /// `exit(reporting:)` of their own cannot name unqualified).
    static func exitProcess(_ status: Int32) -> Never {
        #if canImport(Glibc)
        Glibc.exit(status)
        #else
        Darwin.exit(status)
        #endif
    }

    /// Writes all of `text` with write(2), across short writes and signals; a closed or full
    /// output drops the rest (there is nowhere left to say so).
    static func write(_ text: String, to descriptor: Int32) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = systemWrite(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }

    /// `airlock-workerd: error: …` on stderr, on one line, control characters escaped (an error
    /// may quote a job's task name or a reply from Redis).
    static func error(_ message: String) {
        write("\(program): error: \(SafeText.escape(oneLine(message)))\n", to: STDERR_FILENO)
    }

    /// `airlock-workerd: note: …` on stderr, on one line, control characters escaped.
    static func note(_ message: String) {
        write("\(program): note: \(SafeText.escape(oneLine(message)))\n", to: STDERR_FILENO)
    }

    /// Whether stdout is a terminal (refresh in place) rather than a pipe or file.
    static var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) == 1 }

    /// Clears the terminal and moves the cursor home.
    static let clearScreen = "\u{1B}[H\u{1B}[2J"

    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}

/// Runs `body` with an admin connection (short connect timeout, no log output), reporting any
/// failure as one stderr line and exiting with its status.
func withAdmin(_ connection: ConnectionOptions, _ body: (RedisAdmin) async throws -> Void) async throws {
    do {
        let client = try connection.adminClient()
        do {
            try await client.connect()
            try await body(RedisAdmin(client: client, namespace: connection.namespace, logger: quietLogger))
        } catch {
            await client.close()
            throw error
        }
        await client.close()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        throw fail(error)
    }
}

/// Prints `error` as one stderr line and returns the exit code to throw.
func fail(_ error: any Error) -> ExitCode {
    let failure = CommandFailure(error)
    Console.error(failure.description)
    return ExitCode(failure.exitCode)
}

/// A logger that discards everything, so library logs never mix with command output.
let quietLogger = Logger(label: "airlock.admin", factory: { _ in SwiftLogNoOpLogHandler() })

/// `--queue a --queue "b, c"` → `["a", "b", "c"]`: spaces around the commas are list syntax, never part
/// of a name (``QueueName`` forbids them), so an empty item stays empty and is refused.
func queueList(_ values: [String]) -> [String] {
    values.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }.map { $0.trimmingSpaces() }
}

/// The queue names of `values` (see ``queueList(_:)``), each checked against ``QueueName``'s rule:
/// a name no worker could consume is a usage error here, not a surprise later.
func validatedQueueList(_ values: [String], option: String) throws -> [String] {
    let names = queueList(values)
    for name in names {
        if let problem = QueueName.problem(with: name) { throw ValidationError("\(option): \(problem)") }
    }
    return names
}

/// `text` for a line of human output: ``SafeText/escape(_:)``.
func safe(_ text: String) -> String { SafeText.escape(text) }

#if canImport(Glibc)
private let systemWrite = Glibc.write
#else
private let systemWrite = Darwin.write
#endif
