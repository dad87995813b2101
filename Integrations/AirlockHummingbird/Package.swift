// swift-tools-version:6.0
import PackageDescription

// Airlock's Hummingbird 2 + PostgreSQL integration. A package of its own (depending on the root
// package by path) so the core, the Redis transport and the worker never pull in a web framework.

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "airlock-hummingbird",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "AirlockHummingbird", targets: ["AirlockHummingbird"]),
        // The example as a library too, for the integration suites' shared build (../Package.swift).
        .library(name: "OrderAppKit", targets: ["OrderAppKit"]),
        .executable(name: "OrderApp", targets: ["OrderApp"]),
    ],
    dependencies: [
        .package(name: "airlock-swift", path: "../.."),
        .package(name: "airlock-postgres", path: "../AirlockPostgres"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.5.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.25.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
    ],
    targets: [
        // The middleware (a scope per request); re-exports AirlockPostgres, the commit gate
        // (`Airlock.transaction(on:)` over postgres-nio).
        .target(
            name: "AirlockHummingbird",
            dependencies: [
                .product(name: "Airlock", package: "airlock-swift"),
                .product(name: "AirlockPostgres", package: "airlock-postgres"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The example application: routes, schema, tasks and worker set-up (a library so tests drive it).
        .target(
            name: "OrderAppKit",
            dependencies: [
                "AirlockHummingbird",
                .product(name: "Airlock", package: "airlock-swift"),
                .product(name: "AirlockRedis", package: "airlock-swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Examples/OrderApp/Sources/OrderAppKit",
            swiftSettings: strict
        ),
        // `OrderApp serve` / `worker` / `all`: the example's one binary.
        .executableTarget(
            name: "OrderApp",
            dependencies: [
                "OrderAppKit",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Examples/OrderApp/Sources/OrderApp",
            swiftSettings: strict
        ),
        // Real PostgreSQL, real Redis, real HTTP: run through scripts/test.sh, which starts both.
        .testTarget(
            name: "AirlockHummingbirdTests",
            dependencies: [
                "AirlockHummingbird",
                "OrderAppKit",
                .product(name: "Airlock", package: "airlock-swift"),
                .product(name: "AirlockRedis", package: "airlock-swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
    ]
)
