import AirlockRedis
import Vapor

/// Closes a Redis connection `app.airlock.useRedis(url:)` opened when the application shuts down.
///
/// Vapor shuts lifecycle handlers down after the HTTP server stopped taking requests, so no
/// request scope flushes through the closed connection.
struct RedisConnectionCloser: LifecycleHandler {
    let client: RedisClient

    func shutdownAsync(_ application: Application) async {
        await client.close()
    }

    func shutdown(_ application: Application) {
        // The blocking form cannot wait on an async close; the connection's thread ends on its own
        // once closed, so the close is started and not awaited.
        let client = client
        Task { await client.close() }
    }
}
