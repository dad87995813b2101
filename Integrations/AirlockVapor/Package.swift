// swift-tools-version:6.0
import PackageDescription

// Airlock's Vapor 4 integration: a scope per request, `req.airlock`, `app.airlock` (Redis
// executor, embedded worker), and dispatch gated on a Fluent transaction's COMMIT. A package of
// its own (depending on the root package and AirlockPostgres by path) so the core, the worker and
// the other integrations never pull in Vapor.

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "airlock-vapor",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "AirlockVapor", targets: ["AirlockVapor"]),
        .library(name: "AirlockFluent", targets: ["AirlockFluent"]),
        // The example as a library too, for the integration suites' shared build (../Package.swift).
        .library(name: "VaporOrderAppKit", targets: ["VaporOrderAppKit"]),
        .executable(name: "VaporOrderApp", targets: ["VaporOrderApp"]),
    ],
    dependencies: [
        .package(name: "airlock-swift", path: "../.."),
        .package(name: "airlock-postgres", path: "../AirlockPostgres"),
        .package(url: "https://github.com/vapor/vapor.git", from: "4.99.0"),
        .package(url: "https://github.com/vapor/fluent.git", from: "4.13.0"),
        .package(url: "https://github.com/vapor/fluent-kit.git", from: "1.52.0"),
        .package(url: "https://github.com/vapor/fluent-postgres-driver.git", from: "2.14.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.25.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
    ],
    targets: [
        // The request scope (AirlockMiddleware), req.airlock, app.airlock, the embedded worker.
        // No database: an app without Fluent uses this target alone.
        .target(
            name: "AirlockVapor",
            dependencies: [
                .product(name: "Airlock", package: "airlock-swift"),
                .product(name: "AirlockRedis", package: "airlock-swift"),
                .product(name: "Vapor", package: "vapor"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Dispatch gated on a Fluent transaction's COMMIT (req.airlock.transaction, Database.airlockTransaction).
        .target(
            name: "AirlockFluent",
            dependencies: [
                "AirlockVapor",
                .product(name: "Airlock", package: "airlock-swift"),
                .product(name: "AirlockPostgres", package: "airlock-postgres"),
                .product(name: "Vapor", package: "vapor"),
                .product(name: "Fluent", package: "fluent"),
                .product(name: "FluentSQL", package: "fluent-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The example order service: routes, model, migration, tasks (a library so tests drive it).
        .target(
            name: "VaporOrderAppKit",
            dependencies: [
                "AirlockVapor",
                "AirlockFluent",
                .product(name: "Airlock", package: "airlock-swift"),
                .product(name: "AirlockRedis", package: "airlock-swift"),
                .product(name: "Vapor", package: "vapor"),
                .product(name: "Fluent", package: "fluent"),
                .product(name: "FluentPostgresDriver", package: "fluent-postgres-driver"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/OrderApp/Sources/VaporOrderAppKit",
            swiftSettings: strict
        ),
        // `VaporOrderApp serve` (HTTP + embedded worker) and Vapor's other commands (migrate, routes).
        .executableTarget(
            name: "VaporOrderApp",
            dependencies: [
                "VaporOrderAppKit",
                .product(name: "Vapor", package: "vapor"),
            ],
            path: "Examples/OrderApp/Sources/VaporOrderApp",
            swiftSettings: strict
        ),
        // Real PostgreSQL, real Redis, real HTTP: run through scripts/test.sh, which starts both.
        .testTarget(
            name: "AirlockVaporTests",
            dependencies: [
                "AirlockVapor",
                "AirlockFluent",
                "VaporOrderAppKit",
                .product(name: "Airlock", package: "airlock-swift"),
                .product(name: "AirlockRedis", package: "airlock-swift"),
                .product(name: "Vapor", package: "vapor"),
                .product(name: "VaporTesting", package: "vapor"),
                .product(name: "Fluent", package: "fluent"),
                .product(name: "FluentPostgresDriver", package: "fluent-postgres-driver"),
                .product(name: "FluentSQL", package: "fluent-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
    ]
)
