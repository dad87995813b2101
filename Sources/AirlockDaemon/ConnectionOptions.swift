import AirlockRedis
import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Airlock
import AirlockRedisClient
import AirlockWorker

/// `--redis` and `--namespace`, shared by every subcommand.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Redis URL: redis://[[user]:password@]host[:port][/db] or unix:///path?db=N. Default: $AIRLOCK_REDIS_URL, else $REDIS_URL, else redis://127.0.0.1:6379/0. A URL with a password belongs in the environment, not here: arguments are visible to every user in `ps`.",
        valueName: "url"))
    var redis: String?

    @Option(name: .long, help: "Key prefix shared by producers and workers. Default: $AIRLOCK_NAMESPACE, else airlock.")
    var namespace: String = ProcessInfo.processInfo.environment["AIRLOCK_NAMESPACE"] ?? "airlock"

    /// The parsed Redis configuration; a bad URL is a validation error with the reason.
    func redisConfiguration() throws -> RedisConfiguration {
        let url = redis ?? Self.environmentURL ?? "redis://127.0.0.1:6379/0"
        do {
            return try RedisConfiguration(url: url)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// `AIRLOCK_REDIS_URL`, else `REDIS_URL` (the name Heroku-style platforms and most Redis
    /// clients use), when set and not empty.
    static var environmentURL: String? {
        let environment = ProcessInfo.processInfo.environment
        for name in ["AIRLOCK_REDIS_URL", "REDIS_URL"] {
            if let value = environment[name], !value.isEmpty { return value }
        }
        return nil
    }

    /// Connect timeout for operator commands: an unreachable Redis fails within seconds.
    static let adminConnectTimeout: Duration = .seconds(2)
    /// Reply timeout for operator commands (dead-letter scripts over long lists take a while).
    static let adminCommandTimeout: Duration = .seconds(15)

    /// A client for an operator command: short connect timeout, no log output. A bad URL is a
    /// ``CommandFailure`` with the usage status.
    func adminClient() throws -> RedisClient {
        var configuration: RedisConfiguration
        do {
            configuration = try redisConfiguration()
        } catch let error as ValidationError {
            throw CommandFailure(error.message, exitCode: ExitStatus.usage)
        }
        configuration.connectTimeout = Self.adminConnectTimeout
        configuration.commandTimeout = Self.adminCommandTimeout
        return RedisClient(configuration: configuration, name: "airlock-admin", logger: quietLogger)
    }
}
