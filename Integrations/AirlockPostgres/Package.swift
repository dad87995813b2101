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
    ],
    dependencies: [
        .package(name: "airlock-swift", path: "../.."),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.25.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
    ],
    targets: [
        // The gate (CommitGate, DispatchAfterCommit, TransactionScope) and Airlock.transaction over postgres-nio.
        .target(
            name: "AirlockPostgres",
            dependencies: [
                .product(name: "Airlock", package: "airlock-swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Real PostgreSQL: run through scripts/test.sh, which starts one.
        .testTarget(
            name: "AirlockPostgresTests",
            dependencies: [
                "AirlockPostgres",
                .product(name: "Airlock", package: "airlock-swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
    ]
)
