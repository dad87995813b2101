// The example order service, one binary:
//   OrderApp serve   — the HTTP API
//   OrderApp worker  — runs the confirmation tasks
//   OrderApp all     — both in one process, one ServiceGroup
// Settings from the environment (see OrderAppSettings): PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE,
// AIRLOCK_REDIS_URL, AIRLOCK_NAMESPACE, PORT, ORDERAPP_DELIVERY_DELAY_MS.
// SIGTERM or SIGINT shuts down gracefully: the server stops accepting and answers the requests in
// progress, then the worker lets running tasks finish and returns unstarted jobs to Redis, then
// the database pool closes (services stop in the reverse of the order they are listed in).
import Airlock
import AirlockRedis
import Foundation
import Hummingbird
import Logging
import OrderAppKit
import PostgresNIO
import ServiceLifecycle

let settings = OrderAppSettings()
let command = CommandLine.arguments.dropFirst().first ?? "serve"
let logger = Logger(label: "orderapp")
let store = OrderStore(database: PostgresClient(configuration: settings.postgres, backgroundLogger: logger))

func makeWorker() throws -> Worker {
    let source = try RedisJobSource(url: settings.redisURL, namespace: settings.namespace, logger: logger)
    let services = OrderWorkerServices(store: store, deliver: settings.deliveryDelay.map(OrderWorkerServices.slowDelivery) ?? OrderWorkerServices.logDelivery)
    return Worker(source: source, configuration: WorkerConfiguration(), registry: OrderWorker.registry(services: services), logger: logger)
}

switch command {
case "serve", "all":
    // The two lines a Hummingbird application adds: the executor, and the middleware (in OrderAPI.router).
    try Airlock.configure(executor: RedisExecutor(url: settings.redisURL, namespace: settings.namespace))
    let router = OrderAPI.router(store: store)
    // `all` adds the worker to the application's services: web and worker in one process.
    let worker = command == "all" ? try makeWorker() : nil
    let app = OrderAPI.application(router: router, store: store, port: settings.httpPort, services: worker.map { [$0] } ?? [], logger: logger)
    try await app.runService()

case "worker":
    let group = ServiceGroup(services: [store.database, try makeWorker()], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    try await group.run()

default:
    FileHandle.standardError.write(Data("usage: OrderApp serve|worker|all\n".utf8))
    exit(64)
}
