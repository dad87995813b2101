import Airlock
import AirlockRedis
import AirlockWorker
import ArgumentParser

/// `airlock-workerd partitions [<queue> <count>] [--json]`.
struct PartitionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "partitions",
        abstract: "List partitioned queues, or spread a queue over more hash slots (Redis Cluster).",
        discussion: """
            A partitioned queue <q> with N partitions is the queues <q>, <q>@p1 … <q>@p<N-1>, each in a hash slot of its \
            own, so one queue can use several primaries. Producers route each job to one partition (by its partitionKey, \
            else by its id) within 10 s; workers started afterwards with --queues <q> consume every partition; stats shows \
            <q> as one row. The count can only grow. Stored in <ns>:{<ns>}:partitions (docs/OPERATIONS.md, \
            "Partitioned queues").
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The queue to partition (with <count>); none lists the partitioned queues.")
    var queue: String?

    @Argument(help: "Its number of partitions, 1 to 1024; never fewer than it has.")
    var count: Int?

    @Flag(help: "Print one JSON object (schema \"airlock.partitions/1\").")
    var json = false

    func validate() throws {
        if let queue {
            if let problem = QueueName.problem(with: queue) { throw ValidationError(problem) }
            guard count != nil else { throw ValidationError("give the number of partitions after the queue: partitions \(safe(queue)) 3") }
        }
    }

    func run() async throws {
        try await withAdmin(connection) { admin in
            if let queue, let count {
                let previous = try await admin.setPartitions(count, of: queue)
                if !json {
                    Console.out(previous == count
                        ? "queue '\(safe(queue))' already has \(count) partitions"
                        : "queue '\(safe(queue))': \(count) partitions (was \(previous)); producers route to them within 10 s, and running workers restart in place to consume them within 10 heartbeats")
                    return
                }
            }
            let partitions = try await admin.partitions()
            if json {
                Console.out(AdminJSON.object([
                    ("schema", .string("airlock.partitions/1")),
                    ("queues", .object(partitions.keys.sorted().map { ($0, .int(partitions[$0])) })),
                ]).text)
            } else if partitions.isEmpty {
                Console.out("no partitioned queues")
            } else {
                Console.out(partitions.keys.sorted().map { "\(safe($0)): \(partitions[$0] ?? 1) partitions" }.joined(separator: "\n"))
            }
        }
    }
}
