import CRdKafka
import Logging

/// The state librdkafka's C callbacks reach through the `opaque` pointer
/// (`rd_kafka_conf_set_opaque`; retained by the consumer until its handle is destroyed).
///
/// Threading, written down because the compiler cannot check C callbacks:
/// - `logger` is immutable and `Logger` is `Sendable`; the log callback reads it from
///   librdkafka's internal threads (`log_cb` runs on whichever thread logs).
/// - Every other member is touched only by the rebalance callback, which librdkafka runs inside
///   `rd_kafka_consumer_poll` (the main queue is forwarded to the consumer queue by
///   `rd_kafka_poll_set_consumer`) or while the close queue is served, i.e. on the consumer's
///   owning thread, inside one of its methods, and by those methods themselves. So there is no
///   concurrent access to them.
final class ConsumerCallbackContext: ClientCallbackContext {
    var handler: (any KafkaRebalanceHandler)?
    /// An error raised inside a callback, rethrown by the consumer method that served it.
    var pendingError: KafkaError?
    /// Partitions that reported `_PARTITION_EOF` and have received no message since.
    var partitionsAtEOF: Set<TopicPartition> = []
    /// Counts for tests and status: (assigned, revoked, lost) callbacks served.
    var rebalanceCounts = (assigned: 0, revoked: 0, lost: 0)

    init(logger: Logger, handler: (any KafkaRebalanceHandler)?) {
        self.handler = handler
        super.init(logger: logger)
    }

    /// Handles one rebalance event, from the `rebalance_cb` or an `RD_KAFKA_EVENT_REBALANCE`
    /// event: tells the handler first, then changes librdkafka's assignment (rdkafka.h,
    /// `rd_kafka_conf_set_rebalance_cb`: eager assignors use `rd_kafka_assign`, cooperative ones
    /// `rd_kafka_incremental_assign`/`rd_kafka_incremental_unassign`).
    func handleRebalance(_ rk: OpaquePointer, _ err: rd_kafka_resp_err_t,
                         _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) {
        let partitions = RDKafkaTopicPartitionList.partitions(of: list)
        let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
        let proto = cooperative ? "cooperative" : "eager"
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            rebalanceCounts.assigned += 1
            logger.info("kafka partitions assigned", metadata: [
                "kafka.partitions": "\(partitions.sorted())", "kafka.rebalance": "\(proto)"])
            let offsets = handler?.partitionsAssigned(partitions) ?? [:]
            if let list, !offsets.isEmpty {
                for i in 0..<Int(list.pointee.cnt) {
                    let e = list.pointee.elems[i]
                    let tp = TopicPartition(topic: String(cString: e.topic), partition: e.partition)
                    if let offset = offsets[tp] { list.pointee.elems[i].offset = offset }
                }
                for tp in offsets.keys where !partitions.contains(tp) {
                    logger.warning("kafka rebalance handler returned an offset for a partition not being assigned",
                                   metadata: ["kafka.partition": "\(tp)"])
                }
            }
            if cooperative {
                if let e = rd_kafka_incremental_assign(rk, list) {
                    record(KafkaError(consuming: e, operation: "incremental assign"))
                }
            } else {
                record(rd_kafka_assign(rk, list), "assign")
            }
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let lost = rd_kafka_assignment_lost(rk) != 0
            if lost {
                rebalanceCounts.lost += 1
                logger.warning("kafka partitions lost", metadata: [
                    "kafka.partitions": "\(partitions.sorted())", "kafka.rebalance": "\(proto)"])
                handler?.partitionsLost(partitions)
            } else {
                rebalanceCounts.revoked += 1
                logger.info("kafka partitions revoked", metadata: [
                    "kafka.partitions": "\(partitions.sorted())", "kafka.rebalance": "\(proto)"])
                handler?.partitionsRevoked(partitions)
            }
            partitionsAtEOF.subtract(partitions)
            if cooperative {
                if let e = rd_kafka_incremental_unassign(rk, list) {
                    record(KafkaError(consuming: e, operation: "incremental unassign"))
                }
            } else {
                record(rd_kafka_assign(rk, nil), "unassign")
            }
        default:
            // An arbitrary rebalance failure: the application must drop its assignment
            // (rdkafka.h: "the application must call rd_kafka_assign(rk, NULL)").
            var current: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
            var owned: [TopicPartition] = []
            if rd_kafka_assignment(rk, &current) == RD_KAFKA_RESP_ERR_NO_ERROR, let current {
                owned = RDKafkaTopicPartitionList(adopting: current).elements.map(\.tp)
            }
            logger.error("kafka rebalance failed; dropping the assignment", metadata: [
                "kafka.error": "\(String(cString: rd_kafka_err2str(err)))"])
            if !owned.isEmpty {
                rebalanceCounts.lost += 1
                handler?.partitionsLost(owned)
            }
            partitionsAtEOF.removeAll()
            record(rd_kafka_assign(rk, nil), "unassign after rebalance error")
        }
    }

    private func record(_ err: rd_kafka_resp_err_t, _ operation: String) {
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return }
        record(KafkaError(err, operation: operation))
    }

    private func record(_ error: KafkaError) {
        logger.error("kafka rebalance step failed", metadata: ["kafka.error": "\(error)"])
        if pendingError == nil { pendingError = error }
    }
}

/// `rebalance_cb`: runs inside `rd_kafka_consumer_poll` / the close loop, on the owning thread.
func installRebalanceCallback(_ conf: OpaquePointer) {
    rd_kafka_conf_set_rebalance_cb(conf) { rk, err, list, opaque in
        guard let rk, let opaque else { return }
        Unmanaged<ConsumerCallbackContext>.fromOpaque(opaque).takeUnretainedValue().handleRebalance(rk, err, list)
    }
}
