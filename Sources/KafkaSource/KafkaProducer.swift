import CRdKafka
import Logging

/// Delivery-report state of a producer; only touched inside `rd_kafka_poll`/`rd_kafka_flush`
/// on the producer's owning thread (librdkafka serves `dr_msg_cb` from those calls).
final class ProducerCallbackContext: ClientCallbackContext {
    var delivered = 0
    var failed = 0
    var firstFailure: KafkaError?
}

/// An idempotent Kafka producer (`enable.idempotence=true`, `acks=all`), for `etl-produce`
/// and tests.
///
/// Threading: used from one thread, like ``KafkaConsumer``; delivery reports are served inside
/// ``send(topic:partition:key:value:headers:)`` and ``flush(timeout:)`` on that thread. Not `Sendable`.
public final class KafkaProducer {
    private var handle: OpaquePointer?
    private let context: ProducerCallbackContext
    private let contextRef: Unmanaged<ProducerCallbackContext>
    private let bootstrapServers: String
    private let properties: [String: String]
    private let logger: Logger

    /// Creates the producer.
    /// - Parameters:
    ///   - properties: extra librdkafka properties (`linger.ms`, `compression.type`, security...).
    ///     `enable.idempotence` and `acks` are forced to `true` and `all`.
    /// - Throws: ``KafkaError`` with librdkafka's text for an invalid property.
    public init(bootstrapServers: String, properties: [String: String] = [:], logger: Logger) throws {
        for key in ["enable.idempotence", "acks"] where properties[key] != nil {
            throw KafkaError(code: .invalidArgument, message: "\(key) is forced by KafkaProducer and cannot be set",
                             operation: "configure \(key)")
        }
        var all = properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        all += [("bootstrap.servers", bootstrapServers), ("enable.idempotence", "true"), ("acks", "all")]
        let conf = try makeRDKafkaConf(all)
        let context = ProducerCallbackContext(logger: logger)
        let ref = Unmanaged.passRetained(context)
        rd_kafka_conf_set_opaque(conf, ref.toOpaque())
        installLogCallback(conf)
        rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
            guard let message, let opaque else { return }
            let context = Unmanaged<ProducerCallbackContext>.fromOpaque(opaque).takeUnretainedValue()
            let m = message.pointee
            if m.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                context.delivered += 1
            } else {
                context.failed += 1
                if context.firstFailure == nil {
                    let topic = m.rkt.map { String(cString: rd_kafka_topic_name($0)) }
                    context.firstFailure = KafkaError(m.err, operation: "deliver", topic: topic, partition: m.partition)
                }
            }
        }
        let rk: OpaquePointer
        do {
            rk = try makeRDKafkaHandle(RD_KAFKA_PRODUCER, conf)
        } catch {
            ref.release()
            throw error
        }
        self.handle = rk
        self.context = context
        self.contextRef = ref
        self.bootstrapServers = bootstrapServers
        self.properties = properties
        self.logger = logger
    }

    deinit { close() }

    private func live(_ operation: String) throws(KafkaError) -> OpaquePointer {
        guard let handle else {
            throw KafkaError(code: .destroy, message: "the producer is closed", operation: operation)
        }
        return handle
    }

    /// Messages acknowledged by the broker so far.
    public var deliveredCount: Int { context.delivered }

    /// Enqueues one record (copied). Blocks, serving delivery reports, while librdkafka's queue is
    /// full. `partition` nil lets librdkafka's partitioner choose (by key).
    /// - Throws: ``KafkaError`` for an enqueue failure or an earlier delivery failure.
    /// The corresponding C function is `rd_kafka_producev`.
    public func send(topic: String, partition: Int32? = nil, key: [UInt8]? = nil, value: [UInt8],
                     headers: [(String, [UInt8])] = []) throws {
        let rk = try live("send")
        if let failure = context.firstFailure { throw failure }
        let hdrs: OpaquePointer? = headers.isEmpty ? nil : rd_kafka_headers_new(headers.count)
        for (name, bytes) in headers {
            _ = bytes.withUnsafeBytes { rd_kafka_header_add(hdrs, name, -1, $0.baseAddress, $0.count) }
        }
        while true {
            let error: OpaquePointer? = value.withUnsafeBytes { v in
                (key ?? []).withUnsafeBytes { k in
                    topic.withCString { t in
                        var vus: [rd_kafka_vu_t] = [
                            vu(RD_KAFKA_VTYPE_TOPIC) { $0.cstr = t },
                            vu(RD_KAFKA_VTYPE_PARTITION) { $0.i32 = partition ?? -1 },  // RD_KAFKA_PARTITION_UA
                            vu(RD_KAFKA_VTYPE_VALUE) { $0.mem.ptr = UnsafeMutableRawPointer(mutating: v.baseAddress); $0.mem.size = v.count },
                            vu(RD_KAFKA_VTYPE_MSGFLAGS) { $0.i = RD_KAFKA_MSG_F_COPY },
                        ]
                        if key != nil {
                            vus.append(vu(RD_KAFKA_VTYPE_KEY) { $0.mem.ptr = UnsafeMutableRawPointer(mutating: k.baseAddress); $0.mem.size = k.count })
                        }
                        if let hdrs { vus.append(vu(RD_KAFKA_VTYPE_HEADERS) { $0.headers = hdrs }) }
                        return rd_kafka_produceva(rk, &vus, vus.count)
                    }
                }
            }
            guard let error else { break }  // on success librdkafka owns the headers
            let code = rd_kafka_error_code(error)
            if code == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                rd_kafka_error_destroy(error)
                rd_kafka_poll(rk, 100)
                continue
            }
            if let hdrs { rd_kafka_headers_destroy(hdrs) }
            var e = KafkaError(consuming: error, operation: "send")
            e.topic = topic
            e.partition = partition
            throw e
        }
        rd_kafka_poll(rk, 0)
    }

    private func vu(_ type: rd_kafka_vtype_t, _ set: (inout rd_kafka_vu_t.__Unnamed_union_u) -> Void) -> rd_kafka_vu_t {
        var v = rd_kafka_vu_t()
        v.vtype = type
        set(&v.u)
        return v
    }

    /// Waits until every enqueued record is acknowledged or `timeout` passes.
    /// - Throws: ``KafkaError`` `timedOut` with the number still in flight, or the first delivery failure.
    /// The corresponding C function is `rd_kafka_flush`.
    public func flush(timeout: Duration) throws {
        let rk = try live("flush")
        let err = rd_kafka_flush(rk, timeout.milliseconds)
        if let failure = context.firstFailure { throw failure }
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            var e = KafkaError(err, operation: "flush")
            e.message += " (\(rd_kafka_outq_len(rk)) messages or requests still in flight)"
            throw e
        }
        if let fatal = KafkaError.fatal(rk, operation: "flush") { throw fatal }
    }

    /// The number of partitions of `topic`, from a metadata request for that topic (which lets a
    /// broker with `auto.create.topics.enable` create it). Retries until the topic has partitions
    /// or `timeout` passes.
    /// - Throws: ``KafkaError`` `timedOut` or the topic's metadata error (e.g. `UNKNOWN_TOPIC_OR_PART`).
    /// The corresponding C function is `rd_kafka_metadata`.
    public func partitionCount(topic: String, timeout: Duration) throws -> Int {
        let rk = try live("metadata")
        let deadline = ContinuousClock.now.advanced(by: timeout)
        guard let rkt = rd_kafka_topic_new(rk, topic, nil) else {
            throw KafkaError(rd_kafka_last_error(), operation: "metadata", topic: topic)
        }
        defer { rd_kafka_topic_destroy(rkt) }
        var lastError = KafkaError(code: .timedOut, message: "no metadata for the topic", operation: "metadata", topic: topic)
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { throw lastError }
            var md: UnsafePointer<rd_kafka_metadata>?
            let err = rd_kafka_metadata(rk, 0, rkt, &md, max(1, min(left.milliseconds, 5000)))
            if err == RD_KAFKA_RESP_ERR_NO_ERROR, let md {
                defer { rd_kafka_metadata_destroy(md) }
                if md.pointee.topic_cnt > 0 {
                    let t = md.pointee.topics[0]
                    if t.err == RD_KAFKA_RESP_ERR_NO_ERROR && t.partition_cnt > 0 { return Int(t.partition_cnt) }
                    lastError = KafkaError(t.err, operation: "metadata", topic: topic)
                }
            } else {
                lastError = KafkaError(err, operation: "metadata", topic: topic)
            }
            rd_kafka_poll(rk, 100)
        }
    }

    /// Destroys the producer (records not yet flushed are dropped after librdkafka's own timeout).
    /// Idempotent. The corresponding C function is `rd_kafka_destroy`.
    public func close() {
        guard let rk = handle else { return }
        handle = nil
        rd_kafka_destroy(rk)
        contextRef.release()
    }

    /// Reads the last `count` records of a partition (fewer if the partition holds fewer), in
    /// offset order, for the producer's resume rule: queries the watermarks, then reads from
    /// `high - count` with a temporary group-less consumer (`rd_kafka_assign`, no commits) until
    /// the end of the partition, and keeps the last `count` records.
    ///
    /// The end is where the fetch reports end-of-partition (at the Fetch answer's high
    /// watermark), not the queried `high`: a broker may answer ListOffsets(latest) too low
    /// (Tansu 0.6 answers the base offset of the last record batch + 1), and then reading only to
    /// `high` would miss the newest records. With a correct `high` both ends are the same.
    /// - Throws: ``KafkaError`` when the watermarks cannot be read or the end of the partition is
    ///   not reached within `timeout`.
    public func lastMessages(topic: String, partition: Int32, count: Int, timeout: Duration) throws -> [KafkaMessage] {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        var props = properties.filter { !["linger.ms", "compression.type", "batch.num.messages"].contains($0.key) }
        props["bootstrap.servers"] = bootstrapServers
        // librdkafka 2.0.2 refuses rd_kafka_assign without a group.id (_UNKNOWN_GROUP); the
        // consumer never subscribes nor commits, so this group is never joined.
        props["group.id"] = "tidemark-tail-reader"
        props["enable.auto.commit"] = "false"
        props["enable.partition.eof"] = "true"
        props["isolation.level"] = "read_committed"
        let conf = try makeRDKafkaConf(props.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        let context = ClientCallbackContext(logger: logger)
        let ref = Unmanaged.passRetained(context)
        defer { ref.release() }
        rd_kafka_conf_set_opaque(conf, ref.toOpaque())
        installLogCallback(conf)
        let rk = try makeRDKafkaHandle(RD_KAFKA_CONSUMER, conf)
        defer {
            rd_kafka_consumer_close(rk)
            rd_kafka_destroy(rk)
        }
        rd_kafka_poll_set_consumer(rk)
        var low: Int64 = 0
        var high: Int64 = 0
        try KafkaError.check(
            rd_kafka_query_watermark_offsets(rk, topic, partition, &low, &high,
                                             ContinuousClock.now.duration(to: deadline).milliseconds),
            "watermarks", topic: topic, partition: partition)
        let start = max(low, high - Int64(count))
        guard start < high else { return [] }
        let list = RDKafkaTopicPartitionList([TopicPartition(topic: topic, partition: partition)], offset: start)
        try KafkaError.check(list.withListPointer { rd_kafka_assign(rk, $0) }, "assign", topic: topic, partition: partition)
        var out: [KafkaMessage] = []
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else {
                throw KafkaError(code: .timedOut,
                                 message: "read \(out.count) records from offset \(start) without reaching the end of the partition",
                                 operation: "read last messages", topic: topic, partition: partition)
            }
            guard let message = rd_kafka_consumer_poll(rk, min(left.milliseconds, 200)) else { continue }
            defer { rd_kafka_message_destroy(message) }
            switch message.pointee.err {
            case RD_KAFKA_RESP_ERR_NO_ERROR:
                out.append(KafkaMessageView(message, topic: topic).makeMessage())
                if out.count > 2 * count { out.removeFirst(out.count - count) }
            case RD_KAFKA_RESP_ERR__PARTITION_EOF:
                // The end of the partition as of this fetch (offsets between the last record and
                // here may be transaction markers). An end below `high` is not the end yet.
                if message.pointee.offset >= high { return Array(out.suffix(count)) }
            default:
                throw KafkaError(message.pointee.err, operation: "read last messages", topic: topic, partition: partition)
            }
        }
    }
}
