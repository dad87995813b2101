import AirlockRedis
import AirlockVapor
import Fluent
import FluentPostgresDriver
public import Vapor

/// The example application's `configure`.
public enum OrderApp {
    /// Configures `app`: PostgreSQL through Fluent, the Redis executor, a scope per request, the
    /// order routes, and (unless `settings.runsWorker` is off) the embedded worker that sends the
    /// confirmations with `mailer`.
    ///
    /// The table is created by the `CreateOrder` migration: run `migrate`, or `serve --auto-migrate`.
    public static func configure(_ app: Application, settings: OrderAppSettings, mailer: any Mailer = LogMailer()) throws {
        app.databases.use(
            .postgres(configuration: .init(
                hostname: settings.postgresHost, port: settings.postgresPort, username: settings.postgresUser,
                password: settings.postgresPassword, database: settings.postgresDatabase, tls: .disable)),
            as: .psql)
        app.migrations.add(CreateOrder())

        // The lines an application adds for Airlock: the executor, the request scope, the worker.
        try app.airlock.useRedis(url: settings.redisURL, namespace: settings.namespace, global: settings.configuresGlobally)
        app.middleware.use(AirlockMiddleware())
        if settings.runsWorker {
            try app.airlock.runWorker(tasks: OrderTasks.registry(app: app, mailer: mailer)) { worker in
                worker.concurrency = 4
                worker.prefetch = 0
            }
        }
        try app.register(collection: OrderRoutes())
    }
}
