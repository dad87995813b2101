// The code samples of README.md, compiled: `Tests/AirlockTests/ReadmeSamplesTests.swift` checks that
// every line of each README Swift block appears here, in order (a `…` in the README stands for the
// body written out below), so the README cannot drift from code that builds.
import Airlock
import AirlockDaemon
import AirlockRedis
import Logging
import ServiceLifecycle

struct SendConfirmationEmail: AirlockTask {          // Codable + Sendable: its fields are the arguments
    static let name = "orders.send_confirmation_email"
    let orderID: Int
    func run(_ context: TaskContext) async throws { /* send it */ }
}

struct NotifyWarehouse: AirlockTask {
    static let name = "orders.notify_warehouse"
    let orderID: Int
    func run(_ context: TaskContext) async throws {}
}

struct FlakyCharge: AirlockTask {
    static let name = "payments.flaky_charge"
    let amount: Int
    func run(_ context: TaskContext) async throws {}
}

struct ReportReady: AirlockTask {
    static let name = "reports.ready"
    let id: Int
    func run(_ context: TaskContext) async throws {}
}

struct NotifyOwner: AirlockTask {
    static let name = "reports.notify_owner"
    let id: Int
    func run(_ context: TaskContext) async throws {}
}

struct RenderPage: AirlockTask {
    static let name = "reports.render_page"
    let id: Int
    let page: Int
    func run(_ context: TaskContext) async throws {}
}

struct Order: Sendable {
    let id: Int
}

func process(_ order: Order) async throws {
    try Airlock.enqueue(SendConfirmationEmail(orderID: order.id))
}

func theCoreInOneScreen() async throws {
    try await Airlock.scope {                              // flushes on success, discards on error (re-thrown)
        try Airlock.enqueue(SendConfirmationEmail(orderID: 42))
        try Airlock.enqueue(NotifyWarehouse(orderID: 42),
                            options: .init(queue: "priority.low", countdown: .seconds(60), maxRetries: 0))
        try Airlock.enqueue(name: "proj.tasks.add", args: [2, 2])   // a task implemented elsewhere (e.g. Python)
    }

    try await Airlock.scope(policy: DropAll()) { try await process(Order(id: 1)) }                    // dry run: nothing escapes
    try await Airlock.scope(policy: BlockTasks(["send_confirmation_email"])) { try await process(Order(id: 2)) }
    try await Airlock.scope(policy: AssertNoEffects()) { try await process(Order(id: 3)) }           // throws on any enqueue
    try await Airlock.scope {
        try Airlock.policy(BlockTasks(["notify_warehouse"])) { try Airlock.enqueue(NotifyWarehouse(orderID: 4)) }          // a local policy for part of a scope
    }
    let checkout = Airlock.scoped { (order: Order) in try await process(order) }   // a fresh scope per call
    try await checkout(Order(id: 5))
}

func throughRedis() throws {
    let executor = try RedisExecutor(url: "redis://127.0.0.1:6379/0")
    try Airlock.configure(executor: executor)
    // every scope now lands in Redis: one atomic script, one round trip per flush — all or nothing
}

func batchesWithCallbacks(executor: RedisExecutor, id: Int, pages: [Int]) async throws {
    let batch = Batch(onSuccess: Batch.callback(ReportReady(id: id)), onComplete: Batch.callback(NotifyOwner(id: id)))
    try await executor.batch(batch) { for page in pages { try Airlock.enqueue(RenderPage(id: id, page: page)) } }
}

func anApplicationsOwnWorkerBinary() async {
    var tasks = TaskRegistry()
    tasks.register(SendConfirmationEmail.self)
    tasks.register(FlakyCharge.self, retry: .fixed(.milliseconds(500)))
    tasks.register("reports.nightly", maxRetries: 0) { arguments, context in context.logger.info("nightly report") }
    await AirlockCommand.main(tasks: tasks)     // `run`, plus the operator subcommands
}

/// Stands in for an application's mailer.
struct Mailer: Sendable {
    func sendConfirmation(orderID: Int) async throws {}
}

/// Stands in for an application's web server.
struct WebServer: Service {
    func run() async throws { try await gracefulShutdown() }
}

func theWorkerInsideTheApplication(redisURL: String, mailer: Mailer, webServer: WebServer, logger: Logger) async throws {
    var tasks = TaskRegistry()
    tasks.register(SendConfirmationEmail.self) { task, context in   // captures what the task needs
        try await mailer.sendConfirmation(orderID: task.orderID)
    }
    let worker = Worker(source: try RedisJobSource(url: redisURL), configuration: WorkerConfiguration(queues: ["default"]), registry: tasks)
    let group = ServiceGroup(services: [webServer, worker], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    try await group.run()   // SIGTERM: the web server drains, running jobs finish, unstarted ones go back
}
