/// A partition of a topic: the unit of assignment, ordering, offsets and commits.
public struct TopicPartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The topic name.
    public var topic: String
    /// The partition number (0-based).
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    /// Ordered by topic name, then partition number.
    public static func < (a: TopicPartition, b: TopicPartition) -> Bool {
        (a.topic, a.partition) < (b.topic, b.partition)
    }

    /// `topic/partition`, e.g. `logs/3`.
    public var description: String { "\(topic)/\(partition)" }
}

/// Special offsets understood by librdkafka where an absolute offset is expected
/// (rdkafka.h `RD_KAFKA_OFFSET_*`).
public enum KafkaOffset {
    /// The first offset still in the log (`RD_KAFKA_OFFSET_BEGINNING`).
    public static let beginning: Int64 = -2
    /// The end of the log: only messages produced from now on (`RD_KAFKA_OFFSET_END`).
    public static let end: Int64 = -1
    /// The group's committed offset, falling back to `auto.offset.reset` (`RD_KAFKA_OFFSET_STORED`).
    public static let stored: Int64 = -1000
    /// No offset (`RD_KAFKA_OFFSET_INVALID`), e.g. nothing committed yet.
    public static let invalid: Int64 = -1001
}
