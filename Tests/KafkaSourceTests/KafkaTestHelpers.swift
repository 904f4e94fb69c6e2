import Foundation
import KafkaMock
import KafkaSource
import Logging
import Testing

/// A logger for tests: warnings and above reach stderr.
func testLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = ProcessInfo.processInfo.environment["KAFKA_TEST_LOG"] == "info" ? .info : .warning
    return logger
}

/// Consumer settings that make group joins fast against librdkafka's mock cluster.
let mockFriendlyProperties: [String: String] = [
    "heartbeat.interval.ms": "500",
    "topic.metadata.refresh.interval.ms": "500",
    "fetch.wait.max.ms": "50",
    "reconnect.backoff.ms": "50",
    "reconnect.backoff.max.ms": "500",
    "log.connection.close": "false",
]

/// What a rebalance handler was told, in the order it happened, across every member of a test.
final class EventLog {
    enum Kind: String { case assigned, revoked, lost }
    struct Event { var member: String; var kind: Kind; var partitions: Set<TopicPartition> }
    private(set) var events: [Event] = []
    func append(_ member: String, _ kind: Kind, _ partitions: [TopicPartition]) {
        events.append(Event(member: member, kind: kind, partitions: Set(partitions)))
    }
}

/// A group member as the engine would run it: processes each message as it is delivered
/// (recording `offset + 1` as the next offset to commit) and commits on an orderly revoke.
final class Member: KafkaRebalanceHandler {
    let name: String
    let log: EventLog
    private(set) var consumer: KafkaConsumer!
    private(set) var owned: Set<TopicPartition> = []
    private(set) var received: [KafkaMessage] = []
    /// Records delivered while `partitionsAtEOF` still listed their partition (must stay empty:
    /// a record means its partition is not at its end).
    private(set) var deliveredAtEOF: [KafkaMessage] = []
    /// Next offset to read per partition (last processed + 1), since the last assignment.
    private(set) var next: [TopicPartition: Int64] = [:]
    /// Offsets returned from `partitionsAssigned` (where each partition must resume).
    var startOffsets: [TopicPartition: Int64] = [:]
    var commitOnRevoke = true
    private(set) var revokeCommitErrors: [any Error] = []
    /// Callbacks that ran outside a poll/close call of this member, or on another thread.
    private(set) var misplacedCallbacks = 0
    /// Callbacks that found librdkafka's assignment already changed (they must run before).
    private(set) var lateCallbacks = 0
    private var inConsumerCall = false
    private var ownerThread: pthread_t?

    private func noteCallback() {
        if !inConsumerCall || ownerThread.map({ pthread_equal($0, pthread_self()) == 0 }) ?? true {
            misplacedCallbacks += 1
        }
    }

    private func during<T>(_ body: () throws -> T) rethrows -> T {
        inConsumerCall = true
        ownerThread = pthread_self()
        defer { inConsumerCall = false }
        return try body()
    }

    /// Closes the consumer (the final revoke is delivered inside this call).
    func close(timeout: Duration = .seconds(10)) throws {
        try during { try consumer.close(timeout: timeout) }
    }

    init(_ name: String, log: EventLog, config: KafkaConsumerConfig) throws {
        self.name = name
        self.log = log
        self.consumer = try KafkaConsumer(config: config, rebalanceHandler: self, logger: testLogger(name))
    }

    func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        noteCallback()
        if let current = try? consumer.assignment(), !Set(current).isDisjoint(with: partitions) { lateCallbacks += 1 }
        log.append(name, .assigned, partitions)
        owned.formUnion(partitions)
        return startOffsets.filter { partitions.contains($0.key) }
    }

    func partitionsRevoked(_ partitions: [TopicPartition]) {
        noteCallback()
        if let current = try? consumer.assignment(), !Set(partitions).isSubset(of: current) { lateCallbacks += 1 }
        log.append(name, .revoked, partitions)
        let toCommit = next.filter { partitions.contains($0.key) }.mapValues { (offset: $0, metadata: Optional("revoke-\(name)")) }
        if commitOnRevoke && !toCommit.isEmpty {
            do { try consumer.commit(toCommit) } catch { revokeCommitErrors.append(error) }
        }
        owned.subtract(partitions)
        for tp in partitions { next[tp] = nil }
    }

    func partitionsLost(_ partitions: [TopicPartition]) {
        noteCallback()
        if let current = try? consumer.assignment(), !Set(partitions).isSubset(of: current) { lateCallbacks += 1 }
        log.append(name, .lost, partitions)
        owned.subtract(partitions)
        for tp in partitions { next[tp] = nil }
    }

    /// Polls once (up to `timeout`), processing each message as it arrives.
    @discardableResult
    func pollOnce(timeout: Duration = .milliseconds(100)) throws -> Int {
        try during {
            try consumer.pollBatch(maxMessages: 1000, timeout: timeout) { view in
                if consumer.partitionsAtEOF.contains(view.topicPartition) { deliveredAtEOF.append(view.makeMessage()) }
                received.append(view.makeMessage())
                next[view.topicPartition] = view.offset + 1
            }
        }
    }

    /// Commits everything processed so far, with `metadata`.
    func commitProcessed(metadata: String?) throws {
        try consumer.commit(next.mapValues { (offset: $0, metadata: metadata) })
    }
}

/// Polls the members in turn until `condition` holds or `limit` passes; returns whether it held.
@discardableResult
func pollUntil(_ members: [Member], limit: Duration = .seconds(60), _ condition: () -> Bool) throws -> Bool {
    let deadline = ContinuousClock.now.advanced(by: limit)
    while ContinuousClock.now < deadline {
        for m in members { try m.pollOnce() }
        if condition() { return true }
    }
    return condition()
}

/// A mock cluster with one topic, filled through ``KafkaProducer`` with values `"p{partition}-{i}"`.
struct MockTopic {
    let cluster: MockCluster
    let topic: String
    let partitions: Int32

    init(partitions: Int32 = 4) throws {
        cluster = try MockCluster(brokers: 1)
        topic = "t-" + UUID().uuidString.prefix(8).lowercased()
        self.partitions = partitions
        try cluster.createTopic(topic, partitions: Int(partitions))
    }

    var all: Set<TopicPartition> { Set((0..<partitions).map { TopicPartition(topic: topic, partition: $0) }) }

    /// Produces `perPartition` records to every partition, numbered from `start`.
    func produce(perPartition: Int, start: Int = 0) throws {
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers,
                                         properties: ["linger.ms": "5"], logger: testLogger("producer"))
        defer { producer.close() }
        for p in 0..<partitions {
            for i in start..<(start + perPartition) {
                try producer.send(topic: topic, partition: p, key: Array("k\(i)".utf8), value: Array("p\(p)-\(i)".utf8))
            }
        }
        try producer.flush(timeout: .seconds(30))
    }

    func config(group: String, protocol proto: KafkaConsumerConfig.RebalanceProtocol = .eager,
                extra: [String: String] = [:]) -> KafkaConsumerConfig {
        KafkaConsumerConfig(bootstrapServers: cluster.bootstrapServers, groupID: group, topics: [topic],
                            rebalanceProtocol: proto, sessionTimeout: .seconds(6), commitTimeout: .seconds(5),
                            properties: mockFriendlyProperties.merging(extra) { $1 })
    }
}

extension KafkaMessage {
    var text: String { String(decoding: value, as: UTF8.self) }
    var id: String { "\(partition)@\(offset)" }
}
