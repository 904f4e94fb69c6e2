import Parquet

/// The columns of every Parquet object the engine writes for the seed formats (`seed`, `auto`,
/// `text`, and `json` without `[[schema.fields]]`): the interface users query. Configured
/// mappings build theirs from the configuration (``RecordParser/layout``).
public enum OutputSchema {
    public static let serial = 0
    public static let eventTime = 1
    public static let level = 2
    public static let message = 3
    public static let attributes = 4
    public static let ingestTime = 5
    public static let kafkaTopic = 6
    public static let kafkaPartition = 7
    public static let kafkaOffset = 8
    public static let kafkaTimestamp = 9

    /// `serial` INT64, `event_time` TIMESTAMP(us, UTC), `level` STRING, `message` STRING,
    /// `attributes` STRING (nullable), `ingest_time` TIMESTAMP(us, UTC), `kafka_topic` STRING,
    /// `kafka_partition` INT32, `kafka_offset` INT64, `kafka_timestamp` TIMESTAMP(us, UTC)
    /// (nullable: Kafka may not carry one). The per-record-distinct columns (serial, the
    /// timestamps, kafka_offset) skip the dictionary and are DELTA_BINARY_PACKED: they mostly
    /// increase, so their pages shrink from 8 bytes a value to a few bits, and ZSTD has far
    /// less to compress (these columns were a third of the bytes it compressed).
    public static let schema = ParquetSchema(columns: [
        ParquetColumn(name: "serial", type: .int64, nullable: false, dictionary: false, encoding: .deltaBinaryPacked),
        ParquetColumn(name: "event_time", type: .timestampMicrosUTC, nullable: false, dictionary: false,
                      encoding: .deltaBinaryPacked),
        ParquetColumn(name: "level", type: .string, nullable: false),
        ParquetColumn(name: "message", type: .string, nullable: false),
        ParquetColumn(name: "attributes", type: .string, nullable: true),
        ParquetColumn(name: "ingest_time", type: .timestampMicrosUTC, nullable: false, dictionary: false,
                      encoding: .deltaBinaryPacked),
        ParquetColumn(name: "kafka_topic", type: .string, nullable: false),
        ParquetColumn(name: "kafka_partition", type: .int32, nullable: false),
        ParquetColumn(name: "kafka_offset", type: .int64, nullable: false, dictionary: false,
                      encoding: .deltaBinaryPacked),
        ParquetColumn(name: "kafka_timestamp", type: .timestampMicrosUTC, nullable: true, dictionary: false,
                      encoding: .deltaBinaryPacked),
    ])
}

/// Names of the `tidemark-*` entries in object user metadata and Parquet key_value_metadata.
public enum BatchMetadataKey {
    public static let topic = "tidemark-topic"
    public static let partition = "tidemark-partition"
    public static let start = "tidemark-start"
    public static let end = "tidemark-end"
    public static let records = "tidemark-records"
    public static let rejected = "tidemark-rejected"
    public static let sha256 = "tidemark-sha256"
    public static let size = "tidemark-size"
    public static let engineVersion = "tidemark-engine-version"
    public static let rejectedKey = "tidemark-rejected-key"
    /// The canonical JSON description of the object's schema (``SchemaDescription``).
    public static let schema = "tidemark-schema"
    /// SHA-256 (hex) of ``schema``'s text.
    public static let schemaFingerprint = "tidemark-schema-fingerprint"
}

/// The engine's version, written into object metadata and Parquet `created_by`.
public let tidemarkVersion = "0.1.0"
