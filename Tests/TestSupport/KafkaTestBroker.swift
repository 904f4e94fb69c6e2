import CRdKafka
import Foundation

/// The Kafka broker the broker-agnostic Kafka integration tests run against, and the librdkafka
/// they must run on.
///
/// - Default: the dev broker of the local stack (`tools/stack up`, ``LocalStack``). It creates
///   unknown topics with 4 partitions on first use, so ``createTopic(_:partitions:)`` does nothing.
/// - `TIDEMARK_KAFKA_BOOTSTRAP=host:port`: any other broker (`make test`'s second pass uses Tansu,
///   `tools/with-tansu`). Topics are created through the admin API (`tools/kafka_tool.py
///   create-topic`, Python confluent-kafka) because a broker need not create them on use. No
///   local stack is needed then. `TIDEMARK_KAFKA_BROKER=tansu` (set by `tools/with-tansu`) says
///   the broker is Tansu, so tests can assert its known differences exactly
///   (``returnsCommitMetadata``).
///
/// `TIDEMARK_EXPECT_LIBRDKAFKA=VERSION` (e.g. `2.16`, matched as a version prefix) makes
/// ``current()`` throw unless the librdkafka loaded into this process is that version, so a pass
/// meant for one library cannot run on another. Unset, the loaded library must be the one the
/// headers were built from (`RD_KAFKA_VERSION`): no `LD_LIBRARY_PATH` override in effect.
public struct KafkaTestBroker: Sendable {
    public enum Kind: Sendable, Equatable {
        /// `etl-devbroker` from the local stack.
        case devBroker
        /// Tansu (`TIDEMARK_KAFKA_BOOTSTRAP` with `TIDEMARK_KAFKA_BROKER=tansu`).
        case tansu
        /// Another broker named by `TIDEMARK_KAFKA_BOOTSTRAP`.
        case external
    }

    public let bootstrap: String
    public let kind: Kind

    public init(bootstrap: String, kind: Kind) {
        self.bootstrap = bootstrap
        self.kind = kind
    }

    public struct WrongLibrdkafka: Error, CustomStringConvertible {
        public let description: String
    }

    /// The broker named by the environment (see the type's documentation).
    /// - Throws: ``WrongLibrdkafka`` when the loaded librdkafka is not the expected one;
    ///   ``LocalStack/NotRunning`` when no broker is named and the local stack is not up.
    public static func current() throws -> KafkaTestBroker {
        try checkLoadedLibrdkafka()
        let env = ProcessInfo.processInfo.environment
        if let bootstrap = env["TIDEMARK_KAFKA_BOOTSTRAP"]?.trimmingCharacters(in: .whitespaces), !bootstrap.isEmpty {
            return KafkaTestBroker(bootstrap: bootstrap, kind: env["TIDEMARK_KAFKA_BROKER"] == "tansu" ? .tansu : .external)
        }
        return KafkaTestBroker(bootstrap: try LocalStack.current().kafkaBootstrap, kind: .devBroker)
    }

    /// `rd_kafka_version_str()` of the library loaded into this process, e.g. "2.16.0".
    public static var loadedLibrdkafka: String { String(cString: rd_kafka_version_str()) }

    /// The version the headers were built from (`RD_KAFKA_VERSION`, `0xMMmmrrpp`) as "M.m.r".
    public static var headerLibrdkafka: String {
        let v = Int(RD_KAFKA_VERSION)
        return "\((v >> 24) & 0xff).\((v >> 16) & 0xff).\((v >> 8) & 0xff)"
    }

    /// What the loaded librdkafka must be: `TIDEMARK_EXPECT_LIBRDKAFKA`, else the headers' version.
    public static var expectedLibrdkafka: String {
        ProcessInfo.processInfo.environment["TIDEMARK_EXPECT_LIBRDKAFKA"].flatMap { $0.isEmpty ? nil : $0 }
            ?? headerLibrdkafka
    }

    /// Whether `version` ("2.16.0") is `expected` or starts with it as whole components ("2.16").
    public static func version(_ version: String, matches expected: String) -> Bool {
        version == expected || version.hasPrefix(expected + ".")
    }

    /// Throws ``WrongLibrdkafka`` unless the loaded library matches ``expectedLibrdkafka``.
    public static func checkLoadedLibrdkafka() throws {
        let loaded = loadedLibrdkafka, expected = expectedLibrdkafka
        guard version(loaded, matches: expected) else {
            throw WrongLibrdkafka(description: """
                this process runs on librdkafka \(loaded), expected \(expected) \
                (TIDEMARK_EXPECT_LIBRDKAFKA, else the headers' \(headerLibrdkafka)); \
                for 2.16 put "$(tools/librdkafka216)" on LD_LIBRARY_PATH
                """)
        }
    }

    /// Whether the loaded librdkafka knows 2.2's client properties (`fetch.queue.backoff.ms`).
    public static var loadedIsAtLeast2_2: Bool { rd_kafka_version() >= 0x0202_00ff }

    /// Client properties every test client should add for this broker and library. On librdkafka
    /// >= 2.2, `fetch.queue.backoff.ms=10`: brokers that ignore `max.partition.fetch.bytes`
    /// (Tansu) otherwise leave fetching idle about 1 s at a time (docs/kafka.md). Nothing on
    /// 2.0.2, which does not know the key.
    public var clientProperties: [String: String] {
        Self.loadedIsAtLeast2_2 ? ["fetch.queue.backoff.ms": "10"] : [:]
    }

    /// Whether OffsetFetch returns the metadata string committed with an offset. Tansu 0.6 stores
    /// it but answers every partition with empty (OffsetFetch v0-7) or null (v8+) metadata: its
    /// storage's `offset_fetch` returns offsets only (tansu-storage/src/lib.rs) and the group
    /// coordinator fills in the metadata (tansu-broker/src/coordinator/group/administrator.rs).
    /// The engine reads only offsets back (the metadata is for operators), so this is a test-side
    /// difference; `committed()` reads such metadata as nil.
    public var returnsCommitMetadata: Bool { kind != .tansu }

    public struct TopicNotCreated: Error, CustomStringConvertible {
        public let description: String
    }

    /// Makes `name` exist with `partitions` partitions before a test uses it. The dev broker
    /// creates unknown topics with 4 partitions on first use (it has no CreateTopics), so there
    /// only 4 is accepted; elsewhere the topic is created through the admin API and this returns
    /// once Metadata lists it with every partition.
    public func createTopic(_ name: String, partitions: Int) throws {
        switch kind {
        case .devBroker:
            guard partitions == 4 else {
                throw TopicNotCreated(description: "the dev broker auto-creates topics with 4 partitions, not \(partitions)")
            }
        case .tansu, .external:
            let result = try runPythonTool("kafka_tool.py", [
                "create-topic", "--bootstrap", bootstrap, "--topic", name, "--partitions", "\(partitions)"], timeout: 90)
            guard result.status == 0 else {
                throw TopicNotCreated(description: "kafka_tool.py create-topic \(name): \(result.stderr)")
            }
        }
    }
}
