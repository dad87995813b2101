// swift-tools-version:6.0
import PackageDescription

// Not a product: the one build `make test` uses for every integration package's tests. Each
// integration (AirlockPostgres, AirlockHummingbird, AirlockVapor, AirlockDashboard) is a package of its own so an
// application depends on one without the others, and each still builds and tests alone
// (`make postgres`, `make hummingbird`, `make vapor`, `make dashboard`). Built apart, each builds SwiftNIO,
// PostgresNIO and the root package again; this package depends on all of them, so CI builds the
// shared graph once (see scripts/test.sh here). Its test targets are the packages' own test
// directories — no test lives here.

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "airlock-integrations",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "airlock-swift", path: ".."),
        .package(name: "airlock-postgres", path: "AirlockPostgres"),
        .package(name: "airlock-hummingbird", path: "AirlockHummingbird"),
        .package(name: "airlock-vapor", path: "AirlockVapor"),
        .package(name: "airlock-dashboard", path: "AirlockDashboard"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.5.0"),
        .package(url: "https://github.com/vapor/vapor.git", from: "4.99.0"),
        .package(url: "https://github.com/vapor/fluent.git", from: "4.13.0"),
        .package(url: "https://github.com/vapor/fluent-kit.git", from: "1.52.0"),
        .package(url: "https://github.com/vapor/fluent-postgres-driver.git", from: "2.14.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.25.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
    ],
    targets: [
        .testTarget(
            name: "AirlockPostgresTests",
            dependencies: [
                .product(name: "AirlockPostgres", package: "airlock-postgres"),
                .product(name: "Airlock", package: "airlock-swift"),
                .product(name: "AirlockRedis", package: "airlock-swift"),
                .product(name: "AirlockRedisClient", package: "airlock-swift"),
                .product(name: "AirlockWorker", package: "airlock-swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "AirlockPostgres/Tests/AirlockPostgresTests",
            swiftSettings: strict
        ),
        .testTarget(
            name: "AirlockHummingbirdTests",
            dependencies: [
                .product(name: "AirlockHummingbird", package: "airlock-hummingbird"),
                .product(name: "OrderAppKit", package: "airlock-hummingbird"),
                .product(name: "Airlock", package: "airlock-swift"),
                .product(name: "AirlockRedis", package: "airlock-swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "AirlockHummingbird/Tests/AirlockHummingbirdTests",
            swiftSettings: strict
        ),
        .testTarget(
            name: "AirlockVaporTests",
            dependencies: [
                .product(name: "AirlockVapor", package: "airlock-vapor"),
                .product(name: "AirlockFluent", package: "airlock-vapor"),
                .product(name: "VaporOrderAppKit", package: "airlock-vapor"),
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
            path: "AirlockVapor/Tests/AirlockVaporTests",
            swiftSettings: strict
        ),
        // The dashboard's Swift suite. scripts/test.sh also builds the package's two executables here
        // (`airlock-dashboard`, `airlock-dashboard-seed`) and hands them to the browser suite.
        .testTarget(
            name: "AirlockDashboardTests",
            dependencies: [
                .product(name: "AirlockDashboard", package: "airlock-dashboard"),
                .product(name: "Airlock", package: "airlock-swift"),
                .product(name: "AirlockRedis", package: "airlock-swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AirlockTracingTestSupport", package: "airlock-swift"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            path: "AirlockDashboard/Tests/AirlockDashboardTests",
            swiftSettings: strict
        ),
    ]
)
