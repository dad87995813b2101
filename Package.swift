// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

#if os(Linux)
let hiredisPkgConfig: String? = nil
#else
let hiredisPkgConfig: String? = "hiredis"
#endif

let package = Package(
    name: "airlock-swift",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Airlock", targets: ["Airlock"]),
        .library(name: "AirlockRedis", targets: ["AirlockRedis"]),
        .library(name: "AirlockDaemon", targets: ["AirlockDaemon"]),
        .executable(name: "airlock-workerd", targets: ["AirlockWorkerd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
    ],
    targets: [
        // Core: scopes, intents, policies, executors. No C, no Redis.
        .target(
            name: "Airlock",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // hiredis from the system (Debian's libhiredis-dev, Homebrew's hiredis); used by one Swift
        // file only. Off Linux the headers live outside the default search path, so pkg-config
        // finds them (on Linux Debian's hiredis.pc adds a -D flag SwiftPM refuses, with a warning).
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: hiredisPkgConfig,
            providers: [.apt(["libhiredis-dev"]), .brew(["hiredis"]), .yum(["hiredis-devel"])]
        ),
        // Redis transport: connection, wire protocol, executor, worker engine, admin queries.
        .target(
            name: "AirlockRedis",
            dependencies: [
                "Airlock",
                "CHiredis",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // Command-line surface shared by the stock daemon and embedding applications.
        .target(
            name: "AirlockDaemon",
            dependencies: [
                "AirlockRedis",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "AirlockWorkerd",
            dependencies: ["AirlockDaemon"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "CoreTour",
            dependencies: ["Airlock"],
            path: "Examples/CoreTour",
            swiftSettings: strict
        ),
        .target(
            name: "DemoTasks",
            dependencies: ["Airlock"],
            path: "Examples/DemoTasks",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "EmbeddedWorker",
            dependencies: ["AirlockDaemon", "AirlockRedis", "DemoTasks"],
            path: "Examples/EmbeddedWorker",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "DemoProducer",
            dependencies: ["AirlockRedis", "DemoTasks"],
            path: "Examples/DemoProducer",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "AirlockCoreBench",
            dependencies: ["Airlock"],
            path: "bench/CoreBench",
            swiftSettings: strict
        ),
        // Enqueue, drain and latency measurements against a real Redis (bench/run.sh drives it).
        .executableTarget(
            name: "AirlockBench",
            dependencies: ["AirlockRedis", "AirlockDaemon"],
            path: "bench/RedisBench",
            swiftSettings: strict
        ),
        // Starts and stops real redis-server processes for the test suites (not shipped).
        .target(
            name: "AirlockTestSupport",
            dependencies: ["AirlockRedis"],
            path: "Tests/Support",
            swiftSettings: strict
        ),
        .testTarget(
            name: "AirlockTests",
            dependencies: ["Airlock"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "AirlockRedisTests",
            dependencies: ["AirlockRedis", "AirlockTestSupport"],
            swiftSettings: strict
        ),
        // Multi-process fleet and failure scenarios against real redis-server processes (integration/run.sh).
        .testTarget(
            name: "AirlockIntegrationTests",
            dependencies: ["AirlockRedis", "AirlockTestSupport"],
            path: "integration/Tests",
            swiftSettings: strict
        ),
    ]
)
