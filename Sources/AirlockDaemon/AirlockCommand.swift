import AirlockRedis
public import ArgumentParser
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
import Synchronization
import Airlock
import AirlockRedisClient
public import AirlockWorker
public import Prometheus

/// The `airlock-workerd` command line: `run` plus the operator subcommands.
///
/// An application that registers its own tasks gets the same command line in its own binary:
///
/// ```swift
/// @main struct MyWorker {
///     static func main() async {
///         var tasks = TaskRegistry()
///         tasks.register(SendConfirmationEmail.self)
///         await AirlockCommand.main(tasks: tasks)
///     }
/// }
/// ```
public struct AirlockCommand: AsyncParsableCommand {
    /// The subcommands and help text.
    public static let configuration = CommandConfiguration(
        commandName: "airlock-workerd",
        abstract: "Run Airlock workers and operate their Redis queues.",
        discussion: """
            Producers dispatch jobs with Airlock's RedisExecutor; workers started with `run` execute them. \
            Every subcommand takes --redis (or AIRLOCK_REDIS_URL, else REDIS_URL: prefer the environment for a \
            URL with a password, since arguments show in `ps`) and --namespace (or AIRLOCK_NAMESPACE).

            Exit status: 0 success; 1 failure, including unusable input (bad JSON, unknown queue or dead-letter \
            id); 2 command-line usage error; 3 Redis unreachable, timed out, refused the credentials, or refused \
            a command the user lacks permission for (ACL).
            """,
        version: AirlockVersion.current,
        subcommands: [
            RunCommand.self, StatsCommand.self, WorkersCommand.self, DeadCommand.self, EnqueueCommand.self,
            CancelCommand.self, PauseCommand.self, ResumeCommand.self, LimitCommand.self, PartitionsCommand.self, QueuesCommand.self, SchedulesCommand.self, BatchesCommand.self,
            OutboxCommand.self, RelayCommand.self,
        ],
        defaultSubcommand: nil
    )

    /// Creates the command (argument parsing calls this).
    public init() {}

    static let registeredTasks = Mutex(TaskRegistry())
    static let logging = Mutex(LoggingSetup.bootstrap)
    static let metrics = Mutex(MetricsSetup.bootstrap)

    /// Who sets up swift-log's global handler for `run` (swift-log allows one bootstrap per process).
    public enum LoggingSetup: Sendable {
        /// `run` bootstraps logging from `--log-level` and `--log-format` (the stock daemon).
        case bootstrap
        /// The application already did (or will); `run` logs through whatever handler is in force.
        case alreadyBootstrapped
    }

    /// Who sets up swift-metrics' global factory for `run --metrics-listen` (swift-metrics, like
    /// swift-log, allows one bootstrap per process).
    public struct MetricsSetup: Sendable {
        enum Mode: Sendable {
            case bootstrap
            case external(PrometheusCollectorRegistry?)
        }
        let mode: Mode

        /// `run --metrics-listen` bootstraps swift-metrics with an ``AirlockPrometheusFactory`` and
        /// serves its registry (the stock daemon). Without the flag nothing is bootstrapped.
        public static let bootstrap = MetricsSetup(mode: .bootstrap)
        /// The application bootstrapped swift-metrics (or will); `run` never does, and refuses
        /// `--metrics-listen`, having nothing of its own to serve.
        public static let alreadyBootstrapped = MetricsSetup(mode: .external(nil))
        /// The application bootstrapped swift-metrics with a Prometheus factory over `registry`
        /// (``AirlockPrometheusFactory`` gives Airlock's metrics their help text and buckets);
        /// `run --metrics-listen` serves that registry.
        public static func alreadyBootstrapped(serving registry: PrometheusCollectorRegistry) -> MetricsSetup {
            MetricsSetup(mode: .external(registry))
        }
    }

    /// Parses the process's arguments and runs the chosen subcommand; `run` executes `tasks`
    /// (plus the built-in diagnostic tasks). Exits the process with the command's status.
    /// - Parameters:
    ///   - logging: pass `.alreadyBootstrapped` when the application set up swift-log itself, so
    ///     `run` does not bootstrap it a second time (which would crash the process).
    ///   - metrics: pass `.alreadyBootstrapped` (or `.alreadyBootstrapped(serving:)`) when the
    ///     application set up swift-metrics itself, for the same reason.
    public static func main(tasks: TaskRegistry, logging: LoggingSetup = .bootstrap, metrics: MetricsSetup = .bootstrap) async {
        registeredTasks.withLock { $0 = tasks }
        self.logging.withLock { $0 = logging }
        self.metrics.withLock { $0 = metrics }
        let arguments = normalized(Array(CommandLine.arguments.dropFirst()))
        do {
            var command = try parseAsRoot(arguments)
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            exit(reporting: error)
        }
    }

    /// Exits with the documented statuses: usage errors 2 (ArgumentParser's own message), failures
    /// one `airlock-workerd: error: …` line and their status, help and `ExitCode` as ArgumentParser does.
    static func exit(reporting error: any Error) -> Never {
        if error is CommandFailure {
            let failure = CommandFailure(error)
            Console.error(failure.description)
            Console.exitProcess(failure.exitCode)
        }
        if exitCode(for: error) == .validationFailure {
            Console.write(fullMessage(for: error) + "\n", to: STDERR_FILENO)
            Console.exitProcess(ExitStatus.usage)
        }
        exit(withError: error)
    }

    /// `--watch` takes an optional value: a bare `--watch` (last, or followed by another option)
    /// gets the default period, since ArgumentParser options always need one.
    static func normalized(_ arguments: [String]) -> [String] {
        var result: [String] = []
        for (index, argument) in arguments.enumerated() {
            if argument == "--" {
                result.append(contentsOf: arguments[index...])
                break
            }
            if argument == "--watch" {
                let next = index + 1 < arguments.count ? arguments[index + 1] : nil
                if next.map({ Double($0) == nil }) ?? true {
                    result.append("--watch=\(StatsCommand.defaultWatchPeriod)")
                    continue
                }
            }
            result.append(argument)
        }
        return result
    }
}
