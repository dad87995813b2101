// The example order service: `OrderApp serve` (HTTP API) and `OrderApp worker` (runs the tasks).
// Settings from the environment: PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE, AIRLOCK_REDIS_URL, PORT.
import Airlock
import AirlockRedis
import Foundation
import Hummingbird
import Logging
import OrderAppKit
import PostgresNIO

let settings = OrderAppSettings()
let command = CommandLine.arguments.dropFirst().first ?? "serve"
let logger = Logger(label: "orderapp")
let store = OrderStore(database: PostgresClient(configuration: settings.postgres, backgroundLogger: logger))

switch command {
case "serve":
    // The two lines a Hummingbird application adds: the executor, and the middleware (in OrderAPI.router).
    try Airlock.configure(executor: RedisExecutor(url: settings.redisURL))
    let router = OrderAPI.router(store: store)
    try await OrderAPI.application(router: router, store: store, port: settings.httpPort, logger: logger).runService()

case "worker":
    let worker = Worker(source: try RedisJobSource(url: settings.redisURL), configuration: WorkerConfiguration(), registry: OrderWorker.registry)
    // SIGINT/SIGTERM: graceful shutdown (running tasks finish, unstarted jobs go back to Redis).
    let signalSources = [SIGINT, SIGTERM].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number)
        source.setEventHandler { worker.shutdown() }
        source.resume()
        return source
    }
    try await withThrowingDiscardingTaskGroup { group in
        group.addTask { await store.database.run() }
        try await store.migrate()
        try await OrderWorker.run(worker, services: OrderWorkerServices(store: store))
        group.cancelAll()
    }
    signalSources.forEach { $0.cancel() }

default:
    FileHandle.standardError.write(Data("usage: OrderApp serve|worker\n".utf8))
    exit(64)
}
