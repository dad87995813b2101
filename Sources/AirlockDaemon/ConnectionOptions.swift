import AirlockRedis
import ArgumentParser
import Foundation

/// `--redis` and `--namespace`, shared by every subcommand.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Redis URL: redis://[[user]:password@]host[:port][/db] or unix:///path?db=N. Default: $AIRLOCK_REDIS_URL, else redis://127.0.0.1:6379/0.",
        valueName: "url"))
    var redis: String?

    @Option(name: .long, help: "Key prefix shared by producers and workers.")
    var namespace: String = ProcessInfo.processInfo.environment["AIRLOCK_NAMESPACE"] ?? "airlock"

    /// The parsed Redis configuration; a bad URL is a validation error with the reason.
    func redisConfiguration() throws -> RedisConfiguration {
        let url = redis ?? ProcessInfo.processInfo.environment["AIRLOCK_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"
        do {
            return try RedisConfiguration(url: url)
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
