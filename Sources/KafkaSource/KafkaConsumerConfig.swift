/// Configuration of a ``KafkaConsumer`` (a consumer-group member with manual commits).
///
/// The typed fields map to librdkafka properties (names from librdkafka's CONFIGURATION.md):
/// `bootstrap.servers`, `group.id`, `auto.offset.reset`, `partition.assignment.strategy`,
/// `session.timeout.ms`. Any other librdkafka property (`security.protocol`, `sasl.*`, `ssl.*`,
/// `client.id`, `fetch.*`, ...) goes in ``properties`` and is passed through unchanged; librdkafka
/// validates every key and value when the consumer is created, and its own error text is
/// reported in the thrown ``KafkaError``.
///
/// Four properties are forced by the consumer, because the engine's exactly-once design depends
/// on them; setting any of them in ``properties`` is a configuration error naming the key:
///
/// | Property | Forced value | Why |
/// |---|---|---|
/// | `enable.auto.commit` | `false` | offsets are committed only by ``KafkaConsumer/commit(_:)``, after the data is durable |
/// | `enable.auto.offset.store` | `false` | nothing is committed implicitly from consumed positions |
/// | `isolation.level` | `read_committed` | records of aborted transactions are never delivered |
/// | `enable.partition.eof` | `true` | the consumer learns when it reached the end of a partition (drain mode, see ``KafkaConsumer/partitionsAtEOF``) |
public struct KafkaConsumerConfig: Sendable {
    /// The group rebalance protocol (librdkafka `partition.assignment.strategy`).
    public enum RebalanceProtocol: String, Sendable, CaseIterable {
        /// Stop-the-world: every rebalance revokes the whole assignment, then assigns a new one
        /// (`range,roundrobin`).
        case eager = "range,roundrobin"
        /// Incremental: only the partitions that move are revoked and assigned
        /// (`cooperative-sticky`).
        case cooperativeSticky = "cooperative-sticky"
    }

    /// `host:port[,host:port...]` (librdkafka `bootstrap.servers`).
    public var bootstrapServers: String
    /// The consumer group (librdkafka `group.id`).
    public var groupID: String
    /// Topics to subscribe to. A name starting with `^` is a regular expression matched against
    /// all topics in the cluster (librdkafka's rule for `rd_kafka_subscribe`).
    public var topics: [String]
    /// Where to start when the group has no committed offset for a partition
    /// (librdkafka `auto.offset.reset`: `earliest`, `latest` or `error`).
    public var autoOffsetReset: String
    /// The rebalance protocol; all members of a group must use the same one.
    public var rebalanceProtocol: RebalanceProtocol
    /// How long the coordinator waits for a heartbeat before evicting this member
    /// (librdkafka `session.timeout.ms`).
    public var sessionTimeout: Duration
    /// Any other librdkafka property, passed through as is. Must not contain ``forcedProperties``
    /// keys nor the keys of the typed fields above.
    public var properties: [String: String]

    public init(bootstrapServers: String, groupID: String, topics: [String], autoOffsetReset: String = "earliest",
                rebalanceProtocol: RebalanceProtocol = .eager, sessionTimeout: Duration = .seconds(45),
                properties: [String: String] = [:]) {
        self.bootstrapServers = bootstrapServers
        self.groupID = groupID
        self.topics = topics
        self.autoOffsetReset = autoOffsetReset
        self.rebalanceProtocol = rebalanceProtocol
        self.sessionTimeout = sessionTimeout
        self.properties = properties
    }

    /// Properties the consumer always sets; they cannot be overridden (see the type's documentation).
    public static let forcedProperties: [String: String] = [
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
        "isolation.level": "read_committed",
        "enable.partition.eof": "true",
    ]

    /// Keys owned by the typed fields; setting them in ``properties`` is ambiguous and rejected.
    static let typedKeys: [String] = [
        "bootstrap.servers", "metadata.broker.list", "group.id", "auto.offset.reset",
        "partition.assignment.strategy", "session.timeout.ms",
    ]

    /// The full librdkafka property set, in the order it is applied (pass-through first, then
    /// typed fields, then forced keys).
    /// - Throws: ``KafkaError`` (code `invalidArgument`) naming a forced or typed key found in ``properties``.
    func librdkafkaProperties() throws(KafkaError) -> [(String, String)] {
        for key in properties.keys.sorted() {
            if let forced = Self.forcedProperties[key] {
                throw KafkaError(code: .invalidArgument,
                                 message: "\(key) is forced to \(forced) by KafkaConsumer and cannot be set",
                                 operation: "configure \(key)")
            }
            if Self.typedKeys.contains(key) {
                throw KafkaError(code: .invalidArgument,
                                 message: "\(key) is set through a KafkaConsumerConfig field, not properties",
                                 operation: "configure \(key)")
            }
        }
        var out = properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        out.append(("bootstrap.servers", bootstrapServers))
        out.append(("group.id", groupID))
        out.append(("auto.offset.reset", autoOffsetReset))
        out.append(("partition.assignment.strategy", rebalanceProtocol.rawValue))
        out.append(("session.timeout.ms", String(sessionTimeout.milliseconds)))
        out += Self.forcedProperties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return out
    }
}

extension Duration {
    /// Whole milliseconds, rounded up, clamped to Int32 (librdkafka's timeout type).
    var milliseconds: Int32 {
        let (s, atto) = components
        let ms = s * 1000 + (atto + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(clamping: max(0, ms))
    }
}
