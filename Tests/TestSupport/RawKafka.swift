import CRdKafka
import Foundation

/// Minimal, test-only clients written directly against librdkafka's C API. They exist so that
/// the foundation smoke tests can prove the C module links and talks to a broker without
/// depending on the project's own Kafka wrapper.
public enum RawKafka {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    static func makeConf(_ props: [String: String]) throws -> OpaquePointer {
        let conf = rd_kafka_conf_new()!
        var errstr = [CChar](repeating: 0, count: 512)
        for (k, v) in props where rd_kafka_conf_set(conf, k, v, &errstr, errstr.count) != RD_KAFKA_CONF_OK {
            rd_kafka_conf_destroy(conf)
            throw Failure(description: "config \(k)=\(v): \(String(nulTerminated: errstr))")
        }
        return conf
    }

    /// Produces `values` to `topic` (partition chosen by librdkafka unless given), waits for all
    /// deliveries, and returns the number acknowledged by the broker. `properties` are added to
    /// the client's configuration (e.g. ``KafkaTestBroker/clientProperties``).
    public static func produce(bootstrap: String, topic: String, values: [String], partition: Int32? = nil,
                               properties: [String: String] = [:]) throws -> Int {
        let conf = try makeConf([
            "bootstrap.servers": bootstrap, "enable.idempotence": "true", "acks": "all", "linger.ms": "5",
        ].merging(properties) { $1 })
        var errstr = [CChar](repeating: 0, count: 512)
        guard let rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errstr, errstr.count) else {
            throw Failure(description: "producer: \(String(nulTerminated: errstr))")
        }
        defer { rd_kafka_destroy(rk) }
        guard let rkt = rd_kafka_topic_new(rk, topic, nil) else { throw Failure(description: "topic handle") }
        defer { rd_kafka_topic_destroy(rkt) }
        for value in values {
            var bytes = Array(value.utf8)
            while true {
                let rc = bytes.withUnsafeMutableBytes { buf in
                    rd_kafka_produce(rkt, partition ?? RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                                     buf.baseAddress, buf.count, nil, 0, nil)
                }
                if rc == 0 { break }
                let err = rd_kafka_last_error()
                guard err == RD_KAFKA_RESP_ERR__QUEUE_FULL else {
                    throw Failure(description: "produce: \(String(cString: rd_kafka_err2str(err)))")
                }
                rd_kafka_poll(rk, 100)
            }
            rd_kafka_poll(rk, 0)
        }
        let err = rd_kafka_flush(rk, 30_000)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw Failure(description: "flush: \(String(cString: rd_kafka_err2str(err)))")
        }
        return values.count
    }

    /// One consumed record.
    public struct Record: Sendable, Hashable {
        public let partition: Int32
        public let offset: Int64
        public let value: String

        public init(partition: Int32, offset: Int64, value: String) {
            self.partition = partition
            self.offset = offset
            self.value = value
        }
    }

    /// A consumer-group member with auto-commit off; commits only when asked.
    public final class GroupConsumer {
        private let rk: OpaquePointer

        /// `properties` are added to the client's configuration.
        public init(bootstrap: String, group: String, topic: String, properties: [String: String] = [:]) throws {
            let conf = try makeConf([
                "bootstrap.servers": bootstrap, "group.id": group,
                "enable.auto.commit": "false", "enable.auto.offset.store": "false",
                "auto.offset.reset": "earliest", "session.timeout.ms": "6000",
                "topic.metadata.refresh.interval.ms": "1000",
            ].merging(properties) { $1 })
            var errstr = [CChar](repeating: 0, count: 512)
            guard let rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, &errstr, errstr.count) else {
                throw Failure(description: "consumer: \(String(nulTerminated: errstr))")
            }
            self.rk = rk
            rd_kafka_poll_set_consumer(rk)
            let list = rd_kafka_topic_partition_list_new(1)
            rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA)
            let err = rd_kafka_subscribe(rk, list)
            rd_kafka_topic_partition_list_destroy(list)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw Failure(description: "subscribe: \(String(cString: rd_kafka_err2str(err)))")
            }
        }

        /// Polls until `count` records arrived or `timeout` seconds passed.
        public func consume(count: Int, timeout: TimeInterval) throws -> [Record] {
            var out: [Record] = []
            let deadline = Date().addingTimeInterval(timeout)
            while out.count < count && Date() < deadline {
                guard let msg = rd_kafka_consumer_poll(rk, 200) else { continue }
                defer { rd_kafka_message_destroy(msg) }
                let m = msg.pointee
                if m.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF { continue }
                    throw Failure(description: "consume: \(String(cString: rd_kafka_err2str(m.err)))")
                }
                let value = m.payload.map {
                    String(decoding: UnsafeRawBufferPointer(start: $0, count: m.len), as: UTF8.self)
                } ?? ""
                out.append(Record(partition: m.partition, offset: m.offset, value: value))
            }
            return out
        }

        /// Synchronously commits `offset` (the next offset to read) for each partition.
        public func commit(topic: String, offsets: [Int32: Int64]) throws {
            let list = rd_kafka_topic_partition_list_new(Int32(offsets.count))!
            defer { rd_kafka_topic_partition_list_destroy(list) }
            for (p, o) in offsets { rd_kafka_topic_partition_list_add(list, topic, p).pointee.offset = o }
            let err = rd_kafka_commit(rk, list, 0)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw Failure(description: "commit: \(String(cString: rd_kafka_err2str(err)))")
            }
        }

        /// Leaves the group and destroys the handle.
        public func close() {
            rd_kafka_consumer_close(rk)
            rd_kafka_destroy(rk)
        }
    }
}

extension String {
    /// Decodes a NUL-terminated C buffer (librdkafka's `errstr`) as UTF-8.
    init(nulTerminated buffer: [CChar]) {
        self.init(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
