public import AirlockRedis
public import ArgumentParser
import Synchronization

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
            Producers dispatch jobs with Airlock's RedisExecutor; workers started with `run` execute them.
            Every subcommand takes --redis (or AIRLOCK_REDIS_URL) and --namespace.
            """,
        version: AirlockVersion.current,
        subcommands: [RunCommand.self],
        defaultSubcommand: nil
    )

    /// Creates the command (argument parsing calls this).
    public init() {}

    static let registeredTasks = Mutex(TaskRegistry())

    /// Parses the process's arguments and runs the chosen subcommand; `run` executes `tasks`
    /// (plus the built-in diagnostic tasks). Exits the process with the command's status.
    public static func main(tasks: TaskRegistry) async {
        registeredTasks.withLock { $0 = tasks }
        await main()
    }
}
