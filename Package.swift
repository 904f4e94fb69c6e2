// swift-tools-version:6.0
//
// Tidemark: an exactly-once Kafka -> Parquet -> S3 log pipeline.
// Module map (one job each; C stays behind the wrapper that owns it):
//   CRdKafka, CCurl, CZstd, CSnappy, CZlib, CXattr, CMalloc
//                                system libraries / headers (Debian -dev packages, tools/install-deps)
//   Parquet                      Parquet writer and footer reader (pure Swift over CZstd, CSnappy, CZlib)
//   ObjectStore                  S3 over libcurl (SigV4, multipart, conditional writes) and file:// store
//   KafkaSource                  librdkafka consumer/producer wrapper (manual offsets, rebalance hooks)
//   Manifest                     SQLite write-ahead manifest (through GRDB)
//   TidemarkConfig               the configuration: TOML file (TOMLKit, toml++), env overrides,
//                                ${ENV}/${file:} references, defaults, the checks that need no parser
//   Pipeline                     the engine: transform, batching, commit protocol (docs/protocol.md);
//                                the config checks that need its parser and key layout
//   FileProducer                 log generator, file tailer, checkpoint, exactly-once file -> Kafka producer
//   KafkaMock                    librdkafka's mock cluster: etl-devbroker and tests only
//   EngineHTTP                   /metrics, /healthz, /ready over Hummingbird (keeps NIO out of Pipeline)
//   TidemarkLogging              the executables' log formats (text, JSON lines) for swift-log
//   TestSupport                  helpers shared by test targets (local stack, subprocesses)
import PackageDescription

let package = Package(
    name: "Tidemark",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "etl-devbroker", targets: ["etl-devbroker"]),
        .executable(name: "kafka-bench", targets: ["kafka-bench"]),
        .executable(name: "etl-engine", targets: ["etl-engine"]),
        .executable(name: "etl-audit", targets: ["etl-audit"]),
        .executable(name: "etl-recover", targets: ["etl-recover"]),
        .executable(name: "parquet-bench", targets: ["parquet-bench"]),
        .executable(name: "parse-bench", targets: ["parse-bench"]),
        .library(name: "Parquet", targets: ["Parquet"]),
        .library(name: "ObjectStore", targets: ["ObjectStore"]),
        .executable(name: "objectstore-bench", targets: ["objectstore-bench"]),
        .library(name: "KafkaSource", targets: ["KafkaSource"]),
        .library(name: "FileProducer", targets: ["FileProducer"]),
        .executable(name: "etl-loggen", targets: ["etl-loggen"]),
        .executable(name: "etl-produce", targets: ["etl-produce"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // MARK: C libraries
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(name: "CXattr"),
        .systemLibrary(name: "CMalloc"),
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),
        .systemLibrary(
            name: "CSnappy",
            pkgConfig: "snappy",
            providers: [.apt(["libsnappy-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),

        // MARK: Libraries
        .target(
            name: "Parquet",
            dependencies: ["CZstd", "CSnappy", "CZlib"],
            swiftSettings: [
                // The encoder's hot path mutates final-class state per value; dynamic exclusivity
                // checks cost ~6% of encode time in release builds. Debug builds keep them.
                .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))
            ]
        ),
        .target(
            name: "ObjectStore",
            dependencies: [
                "CCurl", "CXattr",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "KafkaSource",
            dependencies: ["CRdKafka", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "Manifest",
            dependencies: [.product(name: "GRDB", package: "GRDB.swift")]
        ),
        .target(
            // No dependency on Pipeline: the checks that need the record parser or the key layout
            // come in through EngineConfig.Checks (Pipeline's `.pipeline`).
            name: "TidemarkConfig",
            dependencies: [.product(name: "TOMLKit", package: "TOMLKit")]
        ),
        .target(
            name: "Pipeline",
            dependencies: [
                "Manifest", "Parquet", "ObjectStore", "KafkaSource", "CMalloc", "TidemarkConfig",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: [
                // Engine.handle touches the engine's stored properties per record; in release
                // builds their dynamic exclusivity checks (swift_beginAccess with its TLS lookup)
                // were ~2% of the poll thread's samples. Debug builds (the tests) keep them.
                .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))
            ]
        ),
        .target(
            name: "FileProducer",
            dependencies: [
                "KafkaSource",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "KafkaMock",
            dependencies: ["CRdKafka"]
        ),
        .target(
            name: "EngineHTTP",
            dependencies: [
                "Pipeline",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "TidemarkLogging",
            dependencies: [.product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "TestSupport",
            dependencies: ["CRdKafka"],
            path: "Tests/TestSupport"
        ),

        // MARK: Executables (thin shells over the libraries)
        .executableTarget(
            name: "objectstore-bench",
            dependencies: ["ObjectStore"]
        ),
        .executableTarget(
            name: "etl-devbroker",
            dependencies: [
                "KafkaMock",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "etl-engine",
            dependencies: [
                "Pipeline", "TidemarkConfig", "EngineHTTP", "KafkaSource", "ObjectStore", "TidemarkLogging",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "etl-audit",
            dependencies: [
                "Pipeline", "TidemarkConfig", "KafkaSource", "ObjectStore", "Manifest", "TidemarkLogging",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "etl-recover",
            dependencies: [
                "Pipeline", "TidemarkConfig", "KafkaSource", "ObjectStore", "Manifest", "TidemarkLogging",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "etl-loggen",
            dependencies: [
                "FileProducer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "etl-produce",
            dependencies: [
                "FileProducer", "KafkaSource", "TidemarkLogging",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "parquet-bench",
            dependencies: ["Parquet"]
        ),
        .executableTarget(
            name: "parse-bench",
            dependencies: ["Pipeline", "TidemarkConfig"]
        ),

        .executableTarget(
            name: "kafka-bench",
            dependencies: [
                "KafkaSource",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // MARK: Tests
        .testTarget(
            name: "SmokeTests",
            dependencies: [
                "CRdKafka", "CCurl", "CZstd", "KafkaMock", "TestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "ParquetTests",
            dependencies: ["Parquet", "TestSupport"]
        ),
        .testTarget(
            name: "ObjectStoreTests",
            dependencies: [
                "ObjectStore", "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "KafkaSourceTests",
            dependencies: ["KafkaSource", "KafkaMock", "TestSupport"]
        ),
        .testTarget(
            name: "ManifestTests",
            dependencies: ["Manifest", "TestSupport"]
        ),
        .testTarget(
            name: "PipelineTests",
            dependencies: ["Pipeline", "TidemarkConfig", "Manifest", "ObjectStore", "Parquet", "FileProducer", "TestSupport", "TidemarkLogging",
                           .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "TidemarkConfigTests",
            dependencies: ["TidemarkConfig"]
        ),
        .testTarget(
            name: "FileProducerTests",
            dependencies: [
                "FileProducer", "Pipeline", "TidemarkConfig", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "EngineTests",
            dependencies: ["Pipeline", "TestSupport"]
        ),
        .testTarget(
            name: "EngineHTTPTests",
            dependencies: ["EngineHTTP", "Pipeline", "KafkaSource", "ObjectStore", "TestSupport",
                           .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["CRdKafka", "CCurl", "TestSupport"]
        ),
    ]
)

// Every Swift target builds in Swift 6 language mode (complete strict concurrency, the default
// for tools-version 6) with the same upcoming features.
for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    target.swiftSettings = settings
}
