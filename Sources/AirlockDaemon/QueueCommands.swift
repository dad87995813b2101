import Airlock
import AirlockRedis
import ArgumentParser
import AirlockRedisClient
import AirlockWorker

/// `airlock-workerd pause <queue>`.
struct PauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause",
        abstract: "Stop workers taking jobs from a queue (within about a second); producers can still enqueue.",
        discussion: "Sets <ns>:{queue}:paused. Jobs already taken finish normally. `resume` undoes it; `stats` shows it."
    )

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The queue.")
    var queue: String

    @Flag(help: "Pause a queue that is not known yet (workers that later consume it start paused).")
    var create = false

    func validate() throws {
        if let problem = QueueName.problem(with: queue) { throw ValidationError(problem) }
    }

    func run() async throws {
        try await withAdmin(connection) { admin in
            let already = try await admin.pause(queue, create: create)
            Console.out(already
                ? "queue '\(queue)' was already paused"
                : "paused queue '\(queue)': workers stop taking its jobs within a second; jobs in flight finish")
        }
    }
}

/// `airlock-workerd resume <queue>`.
struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Let workers take jobs from a paused queue again (within about a second).",
        discussion: "Deletes <ns>:{queue}:paused."
    )

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The queue.")
    var queue: String

    func validate() throws {
        if let problem = QueueName.problem(with: queue) { throw ValidationError(problem) }
    }

    func run() async throws {
        try await withAdmin(connection) { admin in
            let wasPaused = try await admin.resume(queue)
            Console.out(wasPaused ? "resumed queue '\(queue)'" : "queue '\(queue)' was not paused")
        }
    }
}

/// `airlock-workerd queues`.
struct QueuesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queues",
        abstract: "List known queue names, one per line."
    )

    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "Print a JSON array of names.")
    var json = false

    func run() async throws {
        try await withAdmin(connection) { admin in
            let names = try await admin.queueNames()
            if json {
                Console.out("[" + names.map(jsonString).joined(separator: ",") + "]")
            } else if !names.isEmpty {
                Console.out(names.map(safe).joined(separator: "\n"))
            }
        }
    }

    private func jsonString(_ text: String) -> String {
        var out: [UInt8] = []
        JSONWriter.writeString(text, into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
