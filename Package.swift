// swift-tools-version:6.0
//
// Tidemark: an exactly-once Kafka -> Parquet -> S3 log pipeline.
// Module map (one job each; C stays behind the wrapper that owns it):
//   CRdKafka, CCurl, CZstd      system libraries (Debian -dev packages, see tools/install-deps)
//   KafkaMock                    librdkafka's mock cluster: etl-devbroker and tests only
//   TestSupport                  helpers shared by test targets (local stack, subprocesses)
import PackageDescription

let package = Package(
    name: "Tidemark",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "etl-devbroker", targets: ["etl-devbroker"]),
        .library(name: "ObjectStore", targets: ["ObjectStore"]),
        .executable(name: "objectstore-bench", targets: ["objectstore-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
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
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),

        // MARK: Libraries
        .target(
            name: "KafkaMock",
            dependencies: ["CRdKafka"]
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
            name: "ObjectStoreTests",
            dependencies: [
                "ObjectStore", "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
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
