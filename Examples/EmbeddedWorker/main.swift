// An application's own worker binary: its tasks plus the stock daemon's command line
// (`run`, `stats`, `dead`, …). Run: swift run EmbeddedWorker run --queues default,warehouse
import AirlockDaemon
import AirlockWorker
import DemoTasks

var tasks = TaskRegistry()
tasks.register(ProcessOrder.self)
tasks.register(SendConfirmationEmail.self)
tasks.register(NotifyWarehouse.self)
tasks.register(FlakyCharge.self, retry: .fixed(.milliseconds(500)))
tasks.register("reports.nightly", maxRetries: 0) { arguments, context in
    context.logger.info("nightly report", metadata: ["kwargs": "\(arguments.kwargs)"])
}
await AirlockCommand.main(tasks: tasks)
