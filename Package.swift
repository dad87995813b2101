// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

#if os(Linux)
let hiredisPkgConfig: String? = nil
let openSSLPkgConfig: String? = nil
#else
let hiredisPkgConfig: String? = "hiredis"
let openSSLPkgConfig: String? = "openssl"
#endif

let package = Package(
    name: "airlock-swift",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Airlock", targets: ["Airlock"]),
        .library(name: "AirlockRedisClient", targets: ["AirlockRedisClient"]),
        .library(name: "AirlockWorker", targets: ["AirlockWorker"]),
        .library(name: "AirlockRedis", targets: ["AirlockRedis"]),
        .library(name: "AirlockDaemon", targets: ["AirlockDaemon"]),
        .executable(name: "airlock-workerd", targets: ["AirlockWorkerd"]),
        // Test support, not for applications: the in-memory W3C tracer, for the integration
        // packages' tests (the dashboard's trace test) and their seeders.
        .library(name: "AirlockTracingTestSupport", targets: ["AirlockTracingTestSupport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        // Only the daemon exports: a library never chooses the metrics back end.
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // Core: scopes, intents, policies, executors. No C, no Redis. Tracing only for the flush
        // span (a no-op unless the application bootstraps a tracer).
        .target(
            name: "Airlock",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
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
        // OpenSSL from the system (Debian's libssl-dev), for TLS: hiredis 0.14.1 has none. Used by
        // one Swift file only (Connection/TLSStream.swift); shim.h wraps the macros Swift cannot call.
        .systemLibrary(
            name: "CTLS",
            pkgConfig: openSSLPkgConfig,
            providers: [.apt(["libssl-dev"]), .brew(["openssl@3"]), .yum(["openssl-devel"])]
        ),
        // The Redis client: connection (one owned thread each; plaintext or TLS, direct or through
        // sentinels), configuration and URLs, typed commands and replies, scripts. The only module
        // that calls hiredis (its reply reader) and OpenSSL.
        .target(
            name: "AirlockRedisClient",
            dependencies: [
                "Airlock",
                "CHiredis",
                "CTLS",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // The worker engine over a job-source protocol: buffer, task slots, retries, shutdown,
        // codecs (Airlock envelopes, Celery protocol v2), an in-memory source. No Redis.
        .target(
            name: "AirlockWorker",
            dependencies: [
                "Airlock",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict
        ),
        // Redis transport: executors, the worker's Redis job source, admin queries.
        .target(
            name: "AirlockRedis",
            dependencies: [
                "Airlock",
                "AirlockRedisClient",
                "AirlockWorker",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict
        ),
        // Command-line surface shared by the stock daemon and embedding applications.
        .target(
            name: "AirlockDaemon",
            dependencies: [
                "AirlockRedis",
                "AirlockWorker",
                "AirlockRedisClient",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "AirlockWorkerd",
            dependencies: ["AirlockDaemon", "AirlockWorker"],
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
            dependencies: ["AirlockDaemon", "AirlockWorker", "DemoTasks"],
            path: "Examples/EmbeddedWorker",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "DemoProducer",
            dependencies: ["AirlockRedis", "DemoTasks"],
            path: "Examples/DemoProducer",
            swiftSettings: strict
        ),
        // The worker's whole path for one input (decode → run → settle → score → text), shared by
        // the fuzz target and the corpus replay in the tests.
        .target(
            name: "AirlockFuzzing",
            dependencies: ["Airlock", "AirlockWorker", "AirlockRedis", .product(name: "Logging", package: "swift-log")],
            path: "Fuzz/AirlockFuzzing",
            swiftSettings: strict
        ),
        // `make fuzz` builds this with -sanitize=fuzzer,address -DFUZZING; plainly built, it replays a corpus.
        .executableTarget(
            name: "AirlockFuzz",
            dependencies: ["AirlockFuzzing"],
            path: "Fuzz/AirlockFuzz",
            swiftSettings: strict
        ),
        // README.md's Swift samples, compiled (Tests/AirlockTests/ReadmeSamplesTests.swift checks they match).
        .target(
            name: "ReadmeSamples",
            dependencies: [
                "Airlock", "AirlockRedis", "AirlockDaemon",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Examples/ReadmeSamples",
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
            dependencies: [
                "AirlockRedis", "AirlockDaemon", "AirlockTracingTestSupport",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            path: "bench/RedisBench",
            swiftSettings: strict
        ),
        // Waiting for a condition in a test, with a hang guard that is never a bound on speed (not shipped).
        .target(name: "AirlockTestKit", path: "Tests/Kit", swiftSettings: strict),
        // Starts and stops real redis-server processes for the test suites (not shipped).
        .target(
            name: "AirlockTestSupport",
            dependencies: ["AirlockRedis", "AirlockTestKit"],
            path: "Tests/Support",
            swiftSettings: strict
        ),
        // A tracer that speaks W3C `traceparent` and records spans in memory, for the tests and
        // the bench (not shipped).
        .target(
            name: "AirlockTracingTestSupport",
            dependencies: [.product(name: "Tracing", package: "swift-distributed-tracing")],
            path: "Tests/TracingSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "AirlockTests",
            dependencies: ["Airlock", "AirlockTracingTestSupport", .product(name: "Tracing", package: "swift-distributed-tracing")],
            swiftSettings: strict
        ),
        // The worker engine against in-memory queues: no server, milliseconds.
        .testTarget(
            name: "AirlockWorkerTests",
            dependencies: [
                "AirlockWorker", "Airlock", "AirlockFuzzing", "AirlockTracingTestSupport", "AirlockTestKit",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "AirlockRedisTests",
            dependencies: [
                "AirlockRedis", "AirlockDaemon", "AirlockTestSupport", "AirlockTestKit", "AirlockTracingTestSupport",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict
        ),
        // Multi-process fleet and failure scenarios against real redis-server processes (integration/run.sh).
        .testTarget(
            name: "AirlockIntegrationTests",
            dependencies: ["AirlockRedis", "AirlockTestSupport", "AirlockTestKit"],
            path: "integration/Tests",
            swiftSettings: strict
        ),
    ]
)
