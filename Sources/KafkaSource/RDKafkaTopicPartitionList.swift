import CRdKafka

#if canImport(Glibc)
import Glibc
#endif

/// Owns an `rd_kafka_topic_partition_list_t` (a leaf object: freed in `deinit`).
/// The pointer is only handed out inside ``withListPointer(_:)``.
final class RDKafkaTopicPartitionList {
    private let list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    init(capacity: Int = 1) {
        list = rd_kafka_topic_partition_list_new(Int32(clamping: max(1, capacity)))
    }

    /// Takes ownership of a list returned by librdkafka (e.g. `rd_kafka_assignment`).
    init(adopting list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        self.list = list
    }

    convenience init(_ partitions: [TopicPartition], offset: Int64 = KafkaOffset.invalid) {
        self.init(capacity: partitions.count)
        for tp in partitions { add(tp, offset: offset) }
    }

    deinit { rd_kafka_topic_partition_list_destroy(list) }

    /// Appends a partition. `metadata` is copied with `strdup`: librdkafka frees element metadata
    /// with `free()` when the list is destroyed (rd_kafka_topic_partition_destroy0).
    func add(_ tp: TopicPartition, offset: Int64, metadata: String? = nil) {
        let elem = rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition)!
        elem.pointee.offset = offset
        if let metadata {
            let bytes = Array(metadata.utf8)
            let copy = malloc(max(1, bytes.count))!
            bytes.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            elem.pointee.metadata = copy
            elem.pointee.metadata_size = bytes.count
        }
    }

    /// - Warning: Do not escape the pointer from the closure.
    func withListPointer<T, E: Error>(_ body: (UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) throws(E) -> T) throws(E) -> T {
        try body(list)
    }

    /// One element of the list, copied out of C memory.
    struct Element {
        var tp: TopicPartition
        var offset: Int64
        var metadata: String?
        var err: rd_kafka_resp_err_t
    }

    var elements: [Element] { Self.elements(of: list) }

    static func elements(of list: UnsafePointer<rd_kafka_topic_partition_list_t>?) -> [Element] {
        guard let list, list.pointee.cnt > 0 else { return [] }
        return (0..<Int(list.pointee.cnt)).map { i in
            let e = list.pointee.elems[i]
            let metadata: String? = e.metadata.map {
                String(decoding: UnsafeRawBufferPointer(start: $0, count: e.metadata_size), as: UTF8.self)
            }
            return Element(tp: TopicPartition(topic: String(cString: e.topic), partition: e.partition),
                           offset: e.offset, metadata: metadata, err: e.err)
        }
    }

    static func partitions(of list: UnsafePointer<rd_kafka_topic_partition_list_t>?) -> [TopicPartition] {
        elements(of: list).map(\.tp)
    }

    /// Throws the first per-partition error in the list, if any.
    func checkElements(_ operation: String) throws(KafkaError) {
        for e in elements where e.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(e.err, operation: operation, topic: e.tp.topic, partition: e.tp.partition)
        }
    }
}
