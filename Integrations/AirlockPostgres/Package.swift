// swift-tools-version:6.0
import PackageDescription

// Airlock's PostgreSQL commit gate, framework-neutral: intents enqueued inside a transaction
// leave only after COMMIT. A package of its own (depending on the root package by path) so the
// core and the worker never pull in a database driver; the web integrations (Hummingbird,
// Vapor/Fluent) build on it.

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "airlock-postgres",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "AirlockPostgres", targets: ["AirlockPostgres"]),
        // The outbox's operator tool: migrate, relay, status, parked rows. `airlock-workerd outbox …`
        // and `airlock-workerd relay …` forward to it, so the daemon itself never links PostgreSQL.
        .executable(name: "airlock-outbox", targets: ["AirlockOutboxTool"]),
        // Test helper, not for applications: a product only so the integrations' umbrella
        // package (../Package.swift) can build it for the crash test with `--product`.
        .executable(name: "OutboxCrashChild", targets: ["OutboxCrashChild"]),
    ],
    dependencies: [
        .package(name: "airlock-swift", path: "../.."),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.26.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
    ],
    targets: [
        // The gate (CommitGate, DispatchAfterCommit, TransactionScope) and Airlock.transaction over
        // postgres-nio; the outbox (write-through, fast path, OutboxRelay), which writes the same
        // envelopes RedisExecutor does and so needs the Redis transport.
        .target(
            name: "AirlockPostgres",
            dependencies: [
                .product(name: "Airlock", package: "airlock-swift"),
                .product(name: "AirlockWorker", package: "airlock-swift"),
                .product(name: "AirlockRedis", package: "airlock-swift"),
                .product(name: "AirlockRedisClient", package: "airlock-swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // airlock-outbox: argument parsing and printing only; the logic is in AirlockPostgres.
        .executableTarget(
            name: "AirlockOutboxTool",
            dependencies: [
                "AirlockPostgres",
                .product(name: "Airlock", package: "airlock-swift"),
                .product(name: "AirlockRedis", package: "airlock-swift"),
                .product(name: "AirlockRedisClient", package: "airlock-swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // The crash test's child: commits outbox transactions and SIGKILLs itself between COMMIT
        // and the flush (scripts/test.sh builds it; the test finds it beside the test binary).
        .executableTarget(
            name: "OutboxCrashChild",
            dependencies: [
                "AirlockPostgres",
                .product(name: "Airlock", package: "airlock-swift"),
                .product(name: "AirlockRedis", package: "airlock-swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/OutboxCrashChild",
            swiftSettings: strict
        ),
        // bench/outbox.sh: outbox latency, relay drain throughput, commit→queued (reported, not asserted).
        .executableTarget(
            name: "AirlockOutboxBench",
            dependencies: [
                "AirlockPostgres",
                .product(name: "Airlock", package: "airlock-swift"),
                .product(name: "AirlockRedis", package: "airlock-swift"),
                .product(name: "AirlockRedisClient", package: "airlock-swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Bench/OutboxBench",
            swiftSettings: strict
        ),
        // Real PostgreSQL and Redis: run through scripts/test.sh, which starts them.
        .testTarget(
            name: "AirlockPostgresTests",
            dependencies: [
                "AirlockPostgres",
                .product(name: "Airlock", package: "airlock-swift"),
                .product(name: "AirlockRedis", package: "airlock-swift"),
                .product(name: "AirlockRedisClient", package: "airlock-swift"),
                .product(name: "AirlockWorker", package: "airlock-swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
    ]
)
