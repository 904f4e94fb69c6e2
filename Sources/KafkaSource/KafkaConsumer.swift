import CRdKafka
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A Kafka consumer-group member with manual, synchronous commits (librdkafka high-level consumer).
///
/// ## Threading model
/// A `KafkaConsumer` is used from ONE thread: the engine's poll thread. It is deliberately not
/// `Sendable`; create it and call every method on that thread (a blocking thread, not the Swift
/// concurrency pool: `poll` and `commit` block in C). What runs where:
/// - `poll`/`pollBatch`: the calling thread. librdkafka's `rebalance_cb` is served from inside
///   `rd_kafka_consumer_poll` (the main queue is forwarded to the consumer queue with
///   `rd_kafka_poll_set_consumer`), so the ``KafkaRebalanceHandler`` runs synchronously on this
///   thread, inside `poll`, before the assignment changes.
/// - `close`: the calling thread serves the close queue, so the final revoke is delivered there too.
/// - `commit`, `committed`, `seek`, `watermarks`, ...: block the calling thread; librdkafka's
///   broker threads do the I/O.
/// - librdkafka's log lines: any librdkafka thread, forwarded to the (Sendable) `Logger`.
/// The rebalance handler may call this consumer's methods from inside its callbacks (same thread).
/// One exception: ``watermarks(_:cached:timeout:)`` may also be called from other threads while
/// the owning thread is not closing the consumer (librdkafka's watermark calls are thread-safe);
/// the engine's encoder threads read them while the poll thread waits for them.
///
/// ## Offsets
/// A committed offset is the offset of the next record to read: after processing the record at
/// offset `o`, commit `o + 1` ("committed offset = last processed + 1").
///
/// ## Errors
/// Transient broker and network errors are retried by librdkafka and only logged; `poll`
/// throws a ``KafkaError`` with `isFatal == true` when the client raised a fatal error
/// (`rd_kafka_fatal_error`), and rethrows failures of the assignment steps made in the
/// rebalance callback.
public final class KafkaConsumer {
    /// The configuration this consumer was created with.
    public let config: KafkaConsumerConfig
    private var handle: OpaquePointer?
    private let context: ConsumerCallbackContext
    private let contextRef: Unmanaged<ConsumerCallbackContext>
    private let logger: Logger
    private var topicCache: (rkt: OpaquePointer, name: String)?
    /// Topic handle and partition of the last record `pollBatch` delivered: that partition is
    /// not in `partitionsAtEOF` until the next EOF event.
    private var lastDelivered: (rkt: OpaquePointer?, partition: Int32)?
    private var closing = false
    /// The last non-fatal consumer error librdkafka reported (logged, then retried by librdkafka).
    public private(set) var lastTransientError: KafkaError?

    /// Creates the consumer (does not join the group yet: see ``subscribe()``).
    ///
    /// - Parameters:
    ///   - config: see ``KafkaConsumerConfig``; every property is validated by librdkafka here.
    ///   - rebalanceHandler: told about assigned, revoked and lost partitions; held strongly until
    ///     ``close(timeout:)``. With nil, partitions start at their committed offsets.
    ///   - logger: receives librdkafka's log lines and the consumer's own events.
    /// - Throws: ``KafkaError`` with librdkafka's text for an invalid property, or naming a forced key.
    public init(config: KafkaConsumerConfig, rebalanceHandler: (any KafkaRebalanceHandler)?, logger: Logger) throws {
        let conf = try makeRDKafkaConf(config.librdkafkaProperties())
        let context = ConsumerCallbackContext(logger: logger, handler: rebalanceHandler)
        let ref = Unmanaged.passRetained(context)
        rd_kafka_conf_set_opaque(conf, ref.toOpaque())
        installLogCallback(conf)
        installRebalanceCallback(conf)
        let rk: OpaquePointer
        do {
            rk = try makeRDKafkaHandle(RD_KAFKA_CONSUMER, conf)
        } catch {
            ref.release()
            throw error
        }
        // Route the main queue (rebalance, errors) to the consumer queue so that one call,
        // rd_kafka_consumer_poll, serves everything on the polling thread.
        rd_kafka_poll_set_consumer(rk)
        self.config = config
        self.handle = rk
        self.context = context
        self.contextRef = ref
        self.logger = logger
    }

    deinit {
        if handle != nil {
            logger.warning("KafkaConsumer deinitialised without close(); closing now")
            try? close(timeout: .seconds(10))
        }
    }

    private func live(_ operation: String) throws(KafkaError) -> OpaquePointer {
        guard let handle else {
            throw KafkaError(code: .destroy, message: "the consumer is closed", operation: operation)
        }
        return handle
    }

    // MARK: Subscription and polling

    /// Joins the group and subscribes to ``KafkaConsumerConfig/topics`` (names starting with `^`
    /// are regular expressions). Assignment happens later, inside ``poll(maxMessages:timeout:)``.
    /// The corresponding C function is `rd_kafka_subscribe`.
    public func subscribe() throws {
        let rk = try live("subscribe")
        guard !config.topics.isEmpty else {
            throw KafkaError(code: .invalidArgument, message: "no topics configured", operation: "subscribe")
        }
        let list = RDKafkaTopicPartitionList(capacity: config.topics.count)
        for topic in config.topics { list.add(TopicPartition(topic: topic, partition: -1), offset: KafkaOffset.invalid) }
        try KafkaError.check(list.withListPointer { rd_kafka_subscribe(rk, $0) }, "subscribe \(config.topics)")
    }

    /// Waits up to `timeout` for the first message, then takes what is already fetched, up to
    /// `maxMessages`, and returns copies. Rebalance callbacks run inside this call.
    /// - Throws: ``KafkaError`` for a fatal client error or a failed assignment step.
    public func poll(maxMessages: Int, timeout: Duration) throws -> [KafkaMessage] {
        var out: [KafkaMessage] = []
        out.reserveCapacity(min(maxMessages, 4096))
        _ = try pollBatch(maxMessages: maxMessages, timeout: timeout) { out.append($0.makeMessage()) }
        return out
    }

    /// The zero-copy path: like ``poll(maxMessages:timeout:)`` but calls `body` with a borrowed
    /// view of each message, valid only during that call (see ``KafkaMessageView``).
    ///
    /// If `body` throws, the message it was given and the rest of the batch are not counted as
    /// consumed by this call; librdkafka's position has moved past them, so the caller must seek
    /// back (or rely on committed offsets) to re-read them.
    /// `maxMessages` below 1 is treated as 1: the consumer must keep polling to serve rebalance
    /// callbacks, so use ``pause(_:)`` rather than a zero batch for backpressure.
    /// - Returns: the number of messages passed to `body`.
    /// The corresponding C function is `rd_kafka_consumer_poll`.
    public func pollBatch(maxMessages: Int, timeout: Duration,
                          _ body: (borrowing KafkaMessageView) throws -> Void) throws -> Int {
        try pollLoop(maxMessages: maxMessages, timeout: timeout) { message, topic in
            defer { rd_kafka_message_destroy(message) }
            try body(KafkaMessageView(message, topic: topic))
        }
    }

    /// Like ``pollBatch(maxMessages:timeout:_:)``, but appends the messages to `held` instead of
    /// lending them one at a time: they stay valid (and can be read from other threads) until
    /// `held` is released. Rebalance callbacks run inside this call; a handler that must act on
    /// the messages polled before the rebalance finds them in `held`.
    /// - Returns: the number of messages appended.
    public func pollHeld(into held: HeldMessages, maxMessages: Int, timeout: Duration) throws -> Int {
        try pollLoop(maxMessages: maxMessages, timeout: timeout) { message, topic in
            held.append(message, topic: topic)
        }
    }

    /// The loop behind both polls: up to `maxMessages` records, each handed to `take`, which owns
    /// (and must eventually destroy) the message; events are served here.
    private func pollLoop(maxMessages: Int, timeout: Duration,
                          _ take: (UnsafeMutablePointer<rd_kafka_message_t>, String) throws -> Void) throws -> Int {
        let rk = try live("poll")
        let deadline = ContinuousClock.now.advanced(by: timeout)
        let limit = max(1, maxMessages)
        var count = 0
        while count < limit {
            var wait: Int32 = 0
            if count == 0 {
                let left = ContinuousClock.now.duration(to: deadline)
                wait = left > .zero ? left.milliseconds : 0
            }
            let message = rd_kafka_consumer_poll(rk, wait)
            if let error = context.pendingError {
                context.pendingError = nil
                if let message { rd_kafka_message_destroy(message) }
                throw error
            }
            guard let message else {
                if count > 0 || wait == 0 { break }
                continue
            }
            if message.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                defer { rd_kafka_message_destroy(message) }
                try handleEvent(rk, message)
                continue
            }
            let topic = topicName(message.pointee.rkt)
            // A record means its partition is no longer at its end. Records come in runs of one
            // partition, and only an EOF event (`handleEvent`) can put the previous record's
            // partition back in the set, so a run hashes its partition once, not per record.
            let partition = message.pointee.partition
            if !context.partitionsAtEOF.isEmpty
                && (lastDelivered?.rkt != message.pointee.rkt || lastDelivered?.partition != partition) {
                context.partitionsAtEOF.remove(TopicPartition(topic: topic, partition: partition))
            }
            lastDelivered = (message.pointee.rkt, partition)
            try take(message, topic)
            count += 1
        }
        return count
    }

    /// Partitions whose end was reached (`_PARTITION_EOF`, enabled by the forced
    /// `enable.partition.eof=true`) with no message received since: "drained" for now.
    public var partitionsAtEOF: Set<TopicPartition> { context.partitionsAtEOF }

    /// How many assign / revoke / lost rebalance events this consumer has served.
    public var rebalanceEventCounts: (assigned: Int, revoked: Int, lost: Int) { context.rebalanceCounts }

    private func handleEvent(_ rk: OpaquePointer, _ message: UnsafeMutablePointer<rd_kafka_message_t>) throws {
        let m = message.pointee
        let topic = m.rkt.map { topicName($0) }
        switch m.err {
        case RD_KAFKA_RESP_ERR__PARTITION_EOF:
            lastDelivered = nil
            if let topic { context.partitionsAtEOF.insert(TopicPartition(topic: topic, partition: m.partition)) }
        case RD_KAFKA_RESP_ERR__FATAL:
            throw KafkaError.fatal(rk, operation: "poll")
                ?? KafkaError(m.err, operation: "poll", topic: topic, partition: topic == nil ? nil : m.partition)
        default:
            var error = KafkaError(m.err, operation: "consume", topic: topic, partition: topic == nil ? nil : m.partition)
            if let text = rd_kafka_message_errstr(message) { error.message = String(cString: text) }
            lastTransientError = error
            logger.warning("kafka consumer error (librdkafka retries)", metadata: ["kafka.error": "\(error)"])
        }
    }

    private func topicName(_ rkt: OpaquePointer?) -> String {
        guard let rkt else { return "" }
        let cName = rd_kafka_topic_name(rkt)!
        if let cached = topicCache, cached.rkt == rkt, cached.name.withCString({ strcmp($0, cName) == 0 }) {
            return cached.name
        }
        let name = String(cString: cName)
        topicCache = (rkt, name)
        return name
    }

    // MARK: Offsets

    /// Synchronously commits explicit offsets, each with an optional metadata string stored by
    /// the group coordinator beside the offset, waiting at most
    /// ``KafkaConsumerConfig/commitTimeout``. See ``commit(_:timeout:)``.
    public func commit(_ offsets: [TopicPartition: (offset: Int64, metadata: String?)]) throws {
        try commit(offsets, timeout: config.commitTimeout)
    }

    /// Synchronously commits explicit offsets, each with an optional metadata string stored by
    /// the group coordinator beside the offset.
    ///
    /// `offset` is the next offset to read: after processing the record at offset `o`, commit
    /// `o + 1` (committed offset = last processed + 1; see librdkafka issue #2745).
    /// Per-partition results are checked: librdkafka's `rd_kafka_commit` reports success when only
    /// some partitions failed, so the commit is issued with `rd_kafka_commit_queue` on a private
    /// queue and its `RD_KAFKA_EVENT_OFFSET_COMMIT` result (with per-partition errors) is awaited,
    /// at most `timeout`: librdkafka itself waits for the group coordinator without bound.
    /// - Throws: ``KafkaError``. ``KafkaError/isGenerationMismatch`` tells that the group moved on
    ///   and this member must stop committing for those partitions. `timedOut` means the outcome
    ///   is unknown (the request may still be applied later).
    /// The corresponding C function is `rd_kafka_commit_queue`.
    public func commit(_ offsets: [TopicPartition: (offset: Int64, metadata: String?)], timeout: Duration) throws {
        let rk = try live("commit")
        guard !offsets.isEmpty else { return }
        let deadline = ContinuousClock.now.advanced(by: timeout)
        let list = RDKafkaTopicPartitionList(capacity: offsets.count)
        for (tp, value) in offsets.sorted(by: { $0.key < $1.key }) {
            list.add(tp, offset: value.offset, metadata: value.metadata)
        }
        let single = offsets.count == 1 ? offsets.keys.first : nil
        let queue = rd_kafka_queue_new(rk)!
        defer { rd_kafka_queue_destroy(queue) }
        // No callback: the result comes back as an event on `queue` (event API).
        let err = list.withListPointer { rd_kafka_commit_queue(rk, $0, queue, nil, nil) }
        if err == RD_KAFKA_RESP_ERR__FATAL {
            throw KafkaError.fatal(rk, operation: "commit") ?? KafkaError(err, operation: "commit")
        }
        try KafkaError.check(err, "commit", topic: single?.topic, partition: single?.partition)
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else {
                throw KafkaError(code: .timedOut, message: "no commit result within \(timeout); outcome unknown",
                                 operation: "commit", topic: single?.topic, partition: single?.partition)
            }
            guard let event = rd_kafka_queue_poll(queue, min(left.milliseconds, 1000)) else { continue }
            defer { rd_kafka_event_destroy(event) }
            guard rd_kafka_event_type(event) == RD_KAFKA_EVENT_OFFSET_COMMIT else { continue }
            let result = rd_kafka_event_error(event)
            if result == RD_KAFKA_RESP_ERR__FATAL {
                throw KafkaError.fatal(rk, operation: "commit") ?? KafkaError(result, operation: "commit")
            }
            for e in RDKafkaTopicPartitionList.elements(of: rd_kafka_event_topic_partition_list(event))
            where e.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError(e.err, operation: "commit", topic: e.tp.topic, partition: e.tp.partition)
            }
            if result != RD_KAFKA_RESP_ERR_NO_ERROR {
                var error = KafkaError(result, operation: "commit", topic: single?.topic, partition: single?.partition)
                if let text = rd_kafka_event_error_string(event) { error.message = String(cString: text) }
                throw error
            }
            break
        }
        logger.debug("kafka offsets committed", metadata: [
            "kafka.offsets": "\(offsets.sorted { $0.key < $1.key }.map { "\($0.key)@\($0.value.offset)" })"])
    }

    /// Reads the group's committed offsets and metadata strings from the coordinator.
    /// Partitions with nothing committed are absent from the result.
    /// The corresponding C function is `rd_kafka_committed`.
    public func committed(_ partitions: [TopicPartition], timeout: Duration)
        throws -> [TopicPartition: (offset: Int64, metadata: String?)] {
        let rk = try live("committed")
        guard !partitions.isEmpty else { return [:] }
        let list = RDKafkaTopicPartitionList(partitions)
        try KafkaError.check(list.withListPointer { rd_kafka_committed(rk, $0, timeout.milliseconds) }, "committed")
        try list.checkElements("committed")
        var out: [TopicPartition: (offset: Int64, metadata: String?)] = [:]
        for e in list.elements where e.offset >= 0 {
            out[e.tp] = (e.offset, e.metadata.flatMap { $0.isEmpty ? nil : $0 })
        }
        return out
    }

    /// Moves the fetch position of an assigned partition; the next message polled from it is at
    /// `offset` (or a ``KafkaOffset`` constant). Only valid for assigned partitions; to choose
    /// the start of a partition being assigned, return its offset from
    /// ``KafkaRebalanceHandler/partitionsAssigned(_:)`` instead.
    /// The corresponding C function is `rd_kafka_seek_partitions`.
    public func seek(_ tp: TopicPartition, to offset: Int64, timeout: Duration) throws {
        let rk = try live("seek")
        let list = RDKafkaTopicPartitionList([tp], offset: offset)
        if let error = list.withListPointer({ rd_kafka_seek_partitions(rk, $0, timeout.milliseconds) }) {
            var e = KafkaError(consuming: error, operation: "seek")
            e.topic = tp.topic
            e.partition = tp.partition
            throw e
        }
        try list.checkElements("seek")
    }

    /// Stops fetching from the partitions (backpressure); they stay assigned.
    /// The corresponding C function is `rd_kafka_pause_partitions`.
    public func pause(_ tps: [TopicPartition]) throws {
        let rk = try live("pause")
        let list = RDKafkaTopicPartitionList(tps)
        try KafkaError.check(list.withListPointer { rd_kafka_pause_partitions(rk, $0) }, "pause")
        try list.checkElements("pause")
    }

    /// Resumes fetching from paused partitions. The corresponding C function is `rd_kafka_resume_partitions`.
    public func resume(_ tps: [TopicPartition]) throws {
        let rk = try live("resume")
        let list = RDKafkaTopicPartitionList(tps)
        try KafkaError.check(list.withListPointer { rd_kafka_resume_partitions(rk, $0) }, "resume")
        try list.checkElements("resume")
    }

    /// The partitions currently assigned to this member, sorted.
    /// The corresponding C function is `rd_kafka_assignment`.
    public func assignment() throws -> [TopicPartition] {
        let rk = try live("assignment")
        var ptr: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        try KafkaError.check(rd_kafka_assignment(rk, &ptr), "assignment")
        guard let ptr else { return [] }
        return RDKafkaTopicPartitionList(adopting: ptr).elements.map(\.tp).sorted()
    }

    /// The low and high watermark of a partition (high = offset of the next record to be
    /// written). With `cached: true` the values from the last fetch response are returned without
    /// a request (``KafkaOffset/invalid`` when not known yet); otherwise the leader is asked.
    /// Lag = high - position.
    /// The corresponding C functions are `rd_kafka_get_watermark_offsets` and
    /// `rd_kafka_query_watermark_offsets`.
    public func watermarks(_ tp: TopicPartition, cached: Bool, timeout: Duration) throws -> (low: Int64, high: Int64) {
        let rk = try live("watermarks")
        var low: Int64 = KafkaOffset.invalid
        var high: Int64 = KafkaOffset.invalid
        let err = cached
            ? rd_kafka_get_watermark_offsets(rk, tp.topic, tp.partition, &low, &high)
            : rd_kafka_query_watermark_offsets(rk, tp.topic, tp.partition, &low, &high, timeout.milliseconds)
        try KafkaError.check(err, "watermarks", topic: tp.topic, partition: tp.partition)
        return (low, high)
    }

    /// The consumer's position in a partition (offset of the next record it will return), or nil
    /// when it has not consumed from it yet. The corresponding C function is `rd_kafka_position`.
    public func position(_ tp: TopicPartition) throws -> Int64? {
        let rk = try live("position")
        let list = RDKafkaTopicPartitionList([tp])
        try KafkaError.check(list.withListPointer { rd_kafka_position(rk, $0) }, "position",
                             topic: tp.topic, partition: tp.partition)
        guard let e = list.elements.first else { return nil }
        try KafkaError.check(e.err, "position", topic: tp.topic, partition: tp.partition)
        return e.offset >= 0 ? e.offset : nil
    }

    /// The fatal error this client raised, if any (`rd_kafka_fatal_error`).
    public var fatalError: KafkaError? { handle.flatMap { KafkaError.fatal($0, operation: "status") } }

    // MARK: Shutdown

    /// Leaves the group and destroys the client, waiting at most `timeout`.
    ///
    /// The final revoke (orderly, so commits are still allowed) is delivered to the rebalance
    /// handler on the calling thread, from inside this call. Idempotent.
    /// - Throws: ``KafkaError`` `timedOut` when the group could not be left within `timeout` (the
    ///   handle is destroyed anyway), or the close error librdkafka reported.
    /// The corresponding C functions are `rd_kafka_consumer_close_queue`, `rd_kafka_consumer_closed`
    /// and `rd_kafka_destroy`.
    public func close(timeout: Duration) throws {
        guard let rk = handle, !closing else { return }
        // The handle stays usable while the close queue is served, so the handler can still
        // commit from `partitionsRevoked`; `closing` only stops re-entrant close calls.
        closing = true
        defer {
            handle = nil
            closing = false
        }
        let deadline = ContinuousClock.now.advanced(by: timeout)
        var failure: KafkaError?
        var finished = false
        let queue = rd_kafka_queue_new(rk)!
        if let error = rd_kafka_consumer_close_queue(rk, queue) {
            failure = KafkaError(consuming: error, operation: "close")
        } else {
            while rd_kafka_consumer_closed(rk) == 0 {
                let left = ContinuousClock.now.duration(to: deadline)
                guard left > .zero else { break }
                guard let event = rd_kafka_queue_poll(queue, min(100, left.milliseconds)) else { continue }
                // With a rebalance_cb registered librdkafka normally calls it while serving the
                // queue; if it hands us the event instead, handle it the same way.
                if rd_kafka_event_type(event) == RD_KAFKA_EVENT_REBALANCE {
                    context.handleRebalance(rk, rd_kafka_event_error(event), rd_kafka_event_topic_partition_list(event))
                } else if rd_kafka_event_type(event) == RD_KAFKA_EVENT_ERROR {
                    logger.warning("kafka error while closing", metadata: [
                        "kafka.error": "\(String(cString: rd_kafka_event_error_string(event)))"])
                }
                rd_kafka_event_destroy(event)
            }
            finished = rd_kafka_consumer_closed(rk) != 0
            if !finished {
                failure = KafkaError(code: .timedOut, message: "consumer close did not finish within \(timeout)",
                                     operation: "close")
            }
        }
        rd_kafka_queue_destroy(queue)
        // A consumer that did not finish closing must not close again inside rd_kafka_destroy.
        rd_kafka_destroy_flags(rk, finished ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE)
        context.handler = nil
        contextRef.release()
        if let error = context.pendingError ?? failure {
            context.pendingError = nil
            throw error
        }
    }
}
