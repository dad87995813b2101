// swift-tools-version:6.1
import PackageDescription

// Airlock's web dashboard: a package of its own (depending on the root package by path), so the
// core, the worker and the daemon never pull in a web framework. Hummingbird's optional traits
// (swift-configuration support, full Foundation) are left off: the dashboard needs neither.

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "airlock-dashboard",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "AirlockDashboard", targets: ["AirlockDashboard"]),
        .executable(name: "airlock-dashboard", targets: ["AirlockDashboardServer"]),
        .executable(name: "airlock-dashboard-seed", targets: ["DashboardSeed"]),
    ],
    dependencies: [
        .package(name: "airlock-swift", path: "../.."),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.5.0", traits: []),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
    ],
    targets: [
        // Pages, routes, access control (token, CSRF, read-only), escaping, charts: a router group
        // any Hummingbird application can mount.
        .target(
            name: "AirlockDashboard",
            dependencies: [
                .product(name: "Airlock", package: "airlock-swift"),
                .product(name: "AirlockRedis", package: "airlock-swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // `airlock-dashboard --redis URL --listen 127.0.0.1:9300`: the standalone server.
        .executableTarget(
            name: "AirlockDashboardServer",
            dependencies: [
                "AirlockDashboard",
                .product(name: "AirlockRedis", package: "airlock-swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // Test and bench helper: real traffic through RedisExecutor and a real Worker (or, for the
        // bench, a namespace of 100 queues, 50 workers and 100k dead letters written directly).
        .executableTarget(
            name: "DashboardSeed",
            dependencies: [
                .product(name: "Airlock", package: "airlock-swift"),
                .product(name: "AirlockRedis", package: "airlock-swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // One demo job enqueued inside a span of the in-memory tracer: a trace id to show.
                .product(name: "AirlockTracingTestSupport", package: "airlock-swift"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict
        ),
        // The routes over a real Redis and a real HTTP listener (scripts/test.sh starts Redis); a trace
        // from a real Hummingbird request into the job a real worker runs.
        .testTarget(
            name: "AirlockDashboardTests",
            dependencies: [
                "AirlockDashboard",
                .product(name: "Airlock", package: "airlock-swift"),
                .product(name: "AirlockRedis", package: "airlock-swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AirlockTracingTestSupport", package: "airlock-swift"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict
        ),
    ]
)
