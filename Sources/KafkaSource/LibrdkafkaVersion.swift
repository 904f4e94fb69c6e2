import CRdKafka

/// The librdkafka the process runs on (the shared library loaded at run time, which may be newer
/// than the headers it was built with: docs/kafka.md, "Running on a newer librdkafka").
public struct LibrdkafkaVersion: Sendable, Equatable, CustomStringConvertible {
    /// `0xMMmmrrpp` (major, minor, revision, pre-release), as `rd_kafka_version()` returns it.
    public var number: Int
    /// `rd_kafka_version_str()`, e.g. "2.0.2".
    public var string: String

    /// The loaded library's version.
    public static var current: LibrdkafkaVersion {
        LibrdkafkaVersion(number: Int(rd_kafka_version()), string: String(cString: rd_kafka_version_str()))
    }

    /// 2.2.0: older clients cannot talk to some brokers (ApiVersions v3 replies, e.g. Tansu) and
    /// make Kafka 4 brokers disable features (librdkafka issue 4948).
    public static let recommendedMinimum = 0x0202_00ff

    /// Whether this version is older than ``recommendedMinimum``.
    public var isBelowRecommended: Bool { number < Self.recommendedMinimum }

    public var description: String { string }
}
