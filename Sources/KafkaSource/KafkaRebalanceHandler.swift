/// Receives group rebalance events for a ``KafkaConsumer``.
///
/// Threading: every method is called synchronously on the thread that calls
/// ``KafkaConsumer/poll(maxMessages:timeout:)``, ``KafkaConsumer/pollBatch(maxMessages:timeout:_:)``
/// or ``KafkaConsumer/close(timeout:)``, from inside that call (librdkafka serves its
/// `rebalance_cb` from `rd_kafka_consumer_poll` once `rd_kafka_poll_set_consumer` redirected the
/// main queue, and from the close queue during close), and always BEFORE librdkafka's assignment
/// changes. The handler may call the consumer's methods (commit, committed, seek, pause...)
/// from inside these callbacks.
public protocol KafkaRebalanceHandler: AnyObject {
    /// Partitions are about to be assigned to this member.
    ///
    /// Return the offset at which to start each partition; a partition missing from the result
    /// starts at the group's committed offset, or per `auto.offset.reset` when none. The consumer
    /// then assigns (eager) or incrementally assigns (cooperative) exactly these partitions with
    /// these offsets.
    func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64]

    /// Partitions are about to be revoked in an orderly rebalance. They are still owned during
    /// the call: commits for them are accepted (this is the place for a final commit).
    func partitionsRevoked(_ partitions: [TopicPartition])

    /// Partitions were lost: the member's session expired or its generation was fenced, so
    /// another member may already own them. Never commit for them.
    func partitionsLost(_ partitions: [TopicPartition])
}
