import CRdKafka

/// How a message's timestamp was assigned (rdkafka.h `rd_kafka_timestamp_type_t`).
public enum KafkaTimestampType: Sendable, Hashable {
    /// The broker sent no timestamp (old message format).
    case notAvailable
    /// Set by the producer when the record was created.
    case createTime
    /// Set by the broker when it appended the record to the log.
    case logAppendTime
}

/// A consumed record, copied out of librdkafka's buffers (safe to keep and send anywhere).
public struct KafkaMessage: Sendable {
    public var topic: String
    public var partition: Int32
    /// The record's offset. The offset to commit after processing it is `offset + 1`.
    public var offset: Int64
    /// Milliseconds since the Unix epoch, nil when not available.
    public var timestamp: Int64?
    public var timestampType: KafkaTimestampType
    /// nil for a record without key (distinct from an empty key).
    public var key: [UInt8]?
    /// The value; a null value (tombstone) is delivered as empty bytes.
    public var value: [UInt8]
    /// Headers in wire order; a header may repeat and may have a null value.
    public var headers: [(String, [UInt8]?)]

    public init(topic: String, partition: Int32, offset: Int64, timestamp: Int64?, timestampType: KafkaTimestampType,
                key: [UInt8]?, value: [UInt8], headers: [(String, [UInt8]?)]) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.timestampType = timestampType
        self.key = key
        self.value = value
        self.headers = headers
    }

    public var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }
}

/// A consumed record borrowed from librdkafka's receive buffer (zero-copy).
///
/// Lifetime rule: a view is valid only inside the `pollBatch` closure that receives it. Right
/// after the closure returns, the consumer destroys the underlying `rd_kafka_message_t`
/// (`rd_kafka_message_destroy`), which may release the fetch buffer the bytes live in. The type is
/// `~Copyable` and is passed `borrowing`, so the compiler prevents storing the view itself; the
/// buffers passed to ``withValue(_:)``, ``withKey(_:)`` and ``forEachHeader(_:)`` are valid only
/// inside those closures and must not be escaped either. Copy what you need (``value``,
/// ``makeMessage()``) to keep it.
public struct KafkaMessageView: ~Copyable {
    let message: UnsafePointer<rd_kafka_message_t>
    let topicName: String

    init(_ message: UnsafePointer<rd_kafka_message_t>, topic: String) {
        self.message = message
        self.topicName = topic
    }

    public var topic: String { topicName }
    public var partition: Int32 { message.pointee.partition }
    /// The record's offset (commit `offset + 1` after processing it).
    public var offset: Int64 { message.pointee.offset }
    public var topicPartition: TopicPartition { TopicPartition(topic: topicName, partition: partition) }

    /// Milliseconds since the Unix epoch and how they were assigned (`rd_kafka_message_timestamp`).
    public var timestamp: (milliseconds: Int64?, type: KafkaTimestampType) {
        var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let ts = rd_kafka_message_timestamp(message, &type)
        switch type {
        case RD_KAFKA_TIMESTAMP_CREATE_TIME: return (ts, .createTime)
        case RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME: return (ts, .logAppendTime)
        default: return (nil, .notAvailable)
        }
    }

    /// The number of value bytes.
    public var valueCount: Int { message.pointee.len }

    /// Calls `body` with the value bytes in place (empty for a null value).
    /// - Warning: the buffer is valid only inside `body`.
    public func withValue<T, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> T) throws(E) -> T {
        try body(UnsafeRawBufferPointer(start: message.pointee.payload, count: message.pointee.len))
    }

    /// Calls `body` with the key bytes in place, or nil when the record has no key.
    /// - Warning: the buffer is valid only inside `body`.
    public func withKey<T, E: Error>(_ body: (UnsafeRawBufferPointer?) throws(E) -> T) throws(E) -> T {
        guard let key = message.pointee.key else { return try body(nil) }
        return try body(UnsafeRawBufferPointer(start: key, count: message.pointee.key_len))
    }

    /// A copy of the value bytes.
    public var value: [UInt8] { withValue { Array($0) } }
    /// A copy of the key bytes, nil when the record has no key.
    public var key: [UInt8]? { withKey { $0.map { Array($0) } } }

    /// Calls `body` for each header in wire order with its name and value bytes in place
    /// (`rd_kafka_message_headers`, `rd_kafka_header_get_all`).
    /// - Warning: the buffer is valid only inside `body`.
    public func forEachHeader<E: Error>(_ body: (String, UnsafeRawBufferPointer?) throws(E) -> Void) throws(E) {
        var hdrs: OpaquePointer?
        guard rd_kafka_message_headers(message, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs else { return }
        var index = 0
        while true {
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            guard rd_kafka_header_get_all(hdrs, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR,
                  let name else { return }
            try body(String(cString: name), value.map { UnsafeRawBufferPointer(start: $0, count: size) })
            index += 1
        }
    }

    /// Copies of all headers.
    public var headers: [(String, [UInt8]?)] {
        var out: [(String, [UInt8]?)] = []
        forEachHeader { name, value in out.append((name, value.map { Array($0) })) }
        return out
    }

    /// Copies the record into an owned ``KafkaMessage``.
    public func makeMessage() -> KafkaMessage {
        let ts = timestamp
        return KafkaMessage(topic: topicName, partition: partition, offset: offset, timestamp: ts.milliseconds,
                            timestampType: ts.type, key: key, value: value, headers: headers)
    }
}

/// Messages polled by ``KafkaConsumer/pollHeld(into:maxMessages:timeout:)`` and held, not
/// copied, until ``release()``: the zero-copy views of a whole poll, so that several threads can
/// parse them at once.
///
/// Lifetime rule: a view (``withMessage(at:_:)``) is valid only inside its closure, and only
/// while the batch holds the message. ``release()`` destroys every held message
/// (`rd_kafka_message_destroy`); call it on one thread once no other thread reads the batch.
/// Reading different (or the same) messages from several threads at once is safe: a held
/// message is never written.
public final class HeldMessages: @unchecked Sendable {
    // @unchecked Sendable: `messages` is appended to and emptied only by the owning thread (the
    // poll thread), never while other threads read; readers only read the pointed-to messages.
    private var messages: [UnsafeMutablePointer<rd_kafka_message_t>] = []
    private var topics: [String] = []

    /// An empty batch.
    public init() {}

    deinit { release() }

    /// How many messages are held.
    public var count: Int { messages.count }

    /// Calls `body` with a borrowed view of the message at `index` (poll order).
    public func withMessage<T, E: Error>(at index: Int, _ body: (borrowing KafkaMessageView) throws(E) -> T) throws(E) -> T {
        try body(KafkaMessageView(UnsafePointer(messages[index]), topic: topics[index]))
    }

    /// Moves every held message into a new batch (in order) and leaves this one empty, so the
    /// poll can go on filling this one while other threads read the new one.
    public func takeAll() -> HeldMessages {
        let out = HeldMessages()
        swap(&out.messages, &messages)
        swap(&out.topics, &topics)
        return out
    }

    /// Destroys every held message; the batch is empty afterwards and can be filled again.
    public func release() {
        for m in messages { rd_kafka_message_destroy(m) }
        messages.removeAll(keepingCapacity: true)
        topics.removeAll(keepingCapacity: true)
    }

    func append(_ message: UnsafeMutablePointer<rd_kafka_message_t>, topic: String) {
        messages.append(message)
        topics.append(topic)
    }
}
