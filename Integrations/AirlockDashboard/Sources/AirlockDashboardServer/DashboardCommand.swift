import AirlockDashboard
import AirlockRedis
import ArgumentParser
import Foundation
import Hummingbird
import NIOCore
import Logging

/// `airlock-dashboard`: the dashboard as a server of its own.
@main
struct DashboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "airlock-dashboard",
        abstract: "Airlock's web dashboard: queues, workers, delayed jobs and dead letters of one namespace.",
        discussion: """
            Without a token the dashboard only binds to loopback (127.0.0.0/8, ::1, localhost); \
            any other address needs --token or AIRLOCK_DASHBOARD_TOKEN (at least 16 characters), \
            which browsers send as the password of basic authentication and scripts as a bearer token.
            """)

    @Option(help: "Redis URL (default: $AIRLOCK_REDIS_URL, else $REDIS_URL, else redis://127.0.0.1:6379/0).")
    var redis: String?

    @Option(help: "Key namespace (default: $AIRLOCK_NAMESPACE, else airlock).")
    var namespace: String?

    @Option(help: "host:port to listen on; port 0 picks a free one (printed at start).")
    var listen = "127.0.0.1:9300"

    @Option(help: "Token every request must carry (default: $AIRLOCK_DASHBOARD_TOKEN). Prefer the environment: arguments are visible to every user of the host.")
    var token: String?

    @Flag(help: "Show everything, change nothing: no action buttons, every POST refused.")
    var readOnly = false

    @Option(help: "Seconds between live refreshes (0: off).")
    var refresh = 2

    @Option(help: "Link each job's trace id to your tracing UI: an http(s) URL with {trace_id}, e.g. https://tempo.example/trace/{trace_id}.")
    var traceURL: String?

    @Option(help: "Path the dashboard is served under.")
    var basePath = "/"

    @Option(help: "trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "airlock.dashboard")
        let address: (host: String, port: Int)
        do { address = try ListenAddress.parse(listen) } catch { throw ValidationError(error.description) }
        var traceLink: TraceLinkTemplate?
        if let traceURL {
            do { traceLink = try TraceLinkTemplate(traceURL) } catch { throw ValidationError(error.description) }
        }
        let secret = token ?? environment["AIRLOCK_DASHBOARD_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        let access: DashboardAccess
        do {
            if let secret {
                access = try .token(secret)
            } else {
                guard ListenAddress.isLoopback(address.host) else {
                    throw DashboardError(.unsafeBinding, "refusing to listen on \(address.host) without a token: anyone who can reach it could retry and delete jobs; set AIRLOCK_DASHBOARD_TOKEN (or --token), or listen on 127.0.0.1")
                }
                access = .open
            }
        } catch let error as DashboardError {
            FileHandle.standardError.write(Data("airlock-dashboard: error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let url = redis ?? environment["AIRLOCK_REDIS_URL"] ?? environment["REDIS_URL"] ?? "redis://127.0.0.1:6379/0"
        let redisConfiguration: RedisConfiguration
        do { redisConfiguration = try RedisConfiguration(url: url) } catch {
            FileHandle.standardError.write(Data("airlock-dashboard: error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let admin = RedisAdmin(client: RedisClient(configuration: redisConfiguration, name: "airlock-dashboard", logger: logger),
                               namespace: namespace ?? environment["AIRLOCK_NAMESPACE"] ?? "airlock", logger: logger)
        do { _ = try await admin.queueNames() } catch {
            FileHandle.standardError.write(Data("airlock-dashboard: error: \(error)\n".utf8))
            throw ExitCode(3)
        }
        var configuration = DashboardConfiguration(access: access)
        configuration.traceLink = traceLink
        configuration.readOnly = readOnly
        configuration.refreshSeconds = max(0, refresh)
        let dashboard = Dashboard(admin: admin, configuration: configuration, logger: logger)
        let router = Router(context: DashboardContext.self)
        dashboard.addRoutes(to: router, atPath: basePath)
        let mode = access.requiresToken ? "token required" : "open (loopback only)"
        let shownPath = basePath.hasPrefix("/") ? basePath : "/" + basePath
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: "airlock-dashboard"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? address.port
                let host = address.host.contains(":") ? "[\(address.host)]" : address.host
                let line = "airlock-dashboard: listening on http://\(host):\(port)\(shownPath) (namespace \(admin.namespace), \(mode)\(readOnly ? ", read-only" : ""), Redis \(redisConfiguration.redactedURL))\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            },
            logger: logger)
        try await app.runService()
        await admin.client.close()
    }
}

/// A request context that knows the peer's address, for the action log.
struct DashboardContext: RequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
