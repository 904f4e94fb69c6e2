import Foundation
import KafkaSource
import TestSupport
import Testing

/// The consumer and producer against a Kafka broker in a separate process, with the Python
/// confluent-kafka client (its own librdkafka 2.16) as the independent peer. The broker is the
/// local stack's dev broker (`etl-devbroker`, `tools/stack up`), or the one named by
/// `TIDEMARK_KAFKA_BOOTSTRAP` (`make test`'s Tansu pass on librdkafka 2.16): ``KafkaTestBroker``.
/// Nothing here uses dev-broker fault injection (that is in SmokeTests and EngineTests).
@Suite("KafkaSource against a Kafka broker (dev broker, or TIDEMARK_KAFKA_BOOTSTRAP)")
struct KafkaBrokerTests {
    struct ToolRecord: Hashable { var partition: Int32; var offset: Int64; var value: String }

    static func decodeRecords(_ stdout: String) throws -> [ToolRecord] {
        let json = try #require(try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [[Any]])
        return try json.map { row in
            ToolRecord(partition: Int32(try #require(row[0] as? Int)), offset: Int64(try #require(row[1] as? Int)),
                       value: try #require(row[2] as? String))
        }
    }

    static func config(_ broker: KafkaTestBroker, topic: String, group: String) -> KafkaConsumerConfig {
        KafkaConsumerConfig(bootstrapServers: broker.bootstrap, groupID: group, topics: [topic],
                            sessionTimeout: .seconds(6), commitTimeout: .seconds(10),
                            properties: ["heartbeat.interval.ms": "500", "topic.metadata.refresh.interval.ms": "1000"]
                                .merging(broker.clientProperties) { $1 })
    }

    @Test("the process runs on the expected librdkafka (TIDEMARK_EXPECT_LIBRDKAFKA, else the headers' version)")
    func loadedLibrdkafka() throws {
        let loaded = LibrdkafkaVersion.current
        #expect(loaded.string == KafkaTestBroker.loadedLibrdkafka)
        #expect(KafkaTestBroker.version(loaded.string, matches: KafkaTestBroker.expectedLibrdkafka),
                "loaded librdkafka \(loaded), expected \(KafkaTestBroker.expectedLibrdkafka)")
        try KafkaTestBroker.checkLoadedLibrdkafka()
    }

    @Test("100,000 records over 4 partitions are consumed exactly once in a group with manual commits, across a restart")
    func exactlyOnceAcrossRestart() throws {
        let broker = try KafkaTestBroker.current()
        let topic = uniqueName("kafka-eo")
        let group = uniqueName("g-eo")
        let total = 100_000
        // The producer addresses partition i % 4 explicitly and fails if one is missing.
        try broker.createTopic(topic, partitions: 4)
        let produced = try runPythonTool("kafka_tool.py", [
            "produce", "--bootstrap", broker.bootstrap, "--topic", topic, "--count", "\(total)",
            "--partitions", "4", "--prefix", "r"])
        try #require(produced.status == 0, "\(produced.stderr)")
        #expect(produced.stdout.contains("\"produced\": \(total)"))

        let log = EventLog()
        var processed: [KafkaMessage] = []
        // First run: process about half, committing every 10,000 records and before closing.
        let first = try Member("run1", log: log, config: Self.config(broker, topic: topic, group: group))
        first.commitOnRevoke = false
        try first.consumer.subscribe()
        var lastCommit = 0
        try pollUntil([first], limit: .seconds(120)) {
            if first.received.count - lastCommit >= 10_000 {
                try? first.commitProcessed(metadata: "run1-\(first.received.count)")
                lastCommit = first.received.count
            }
            return first.received.count >= total / 2
        }
        try first.commitProcessed(metadata: "run1-final")
        try first.consumer.close(timeout: .seconds(15))
        processed += first.received
        #expect(processed.count >= total / 2 && processed.count < total)

        // Restart: a new member of the same group resumes at the committed offsets.
        let second = try Member("run2", log: log, config: Self.config(broker, topic: topic, group: group))
        second.commitOnRevoke = false
        try second.consumer.subscribe()
        #expect(try pollUntil([second], limit: .seconds(120)) { processed.count + second.received.count >= total })
        try second.commitProcessed(metadata: "run2-final")
        let committed = try second.consumer.committed(
            (0..<4).map { TopicPartition(topic: topic, partition: $0) }, timeout: .seconds(10))
        try second.consumer.close(timeout: .seconds(15))
        processed += second.received

        #expect(processed.count == total)
        #expect(Set(processed.map(\.id)).count == total)
        #expect(Set(processed.map(\.text)) == Set((0..<total).map { "r-\($0)" }))
        for p in Int32(0)..<4 {
            let offsets = processed.filter { $0.partition == p }.map(\.offset).sorted()
            #expect(offsets == Array(0..<Int64(total / 4)))
            #expect(committed[TopicPartition(topic: topic, partition: p)]?.offset == Int64(total / 4))
            // run2 commits only the partitions it read from; a partition run1 already read to
            // its end keeps run1's final commit. Tansu 0.6 never returns commit metadata
            // (KafkaTestBroker.returnsCommitMetadata): there it must read back as nil.
            let owner = second.received.contains { $0.partition == p } ? "run2-final" : "run1-final"
            #expect(committed[TopicPartition(topic: topic, partition: p)]?.metadata == (broker.returnsCommitMetadata ? owner : nil))
        }

        // Another client (Python, librdkafka 2.16) in the same group sees our commits: it gets
        // only records produced after them.
        let more = try runPythonTool("kafka_tool.py", [
            "produce", "--bootstrap", broker.bootstrap, "--topic", topic, "--count", "8",
            "--partitions", "4", "--prefix", "r", "--start", "\(total)"])
        try #require(more.status == 0, "\(more.stderr)")
        let after = try runPythonTool("kafka_tool.py", [
            "consume", "--bootstrap", broker.bootstrap, "--topic", topic, "--group", group,
            "--expect", "8", "--timeout", "60"])
        try #require(after.status == 0, "\(after.stderr)")
        let records = try Self.decodeRecords(after.stdout)
        #expect(Set(records.map(\.value)) == Set((total..<(total + 8)).map { "r-\($0)" }))
        #expect(records.allSatisfy { $0.offset >= Int64(total / 4) })
    }

    @Test("records sent by KafkaProducer are read back by the Python client with their values and partitions")
    func producerToPython() throws {
        let broker = try KafkaTestBroker.current()
        let topic = uniqueName("kafka-prod")
        try broker.createTopic(topic, partitions: 4)
        let producer = try KafkaProducer(bootstrapServers: broker.bootstrap, properties: ["linger.ms": "5"],
                                         logger: testLogger("producer"))
        for i in 0..<1000 {
            try producer.send(topic: topic, partition: Int32(i % 4), key: Array("k\(i)".utf8), value: Array("v-\(i)".utf8),
                              headers: [("n", Array("\(i)".utf8))])
        }
        try producer.flush(timeout: .seconds(30))
        #expect(producer.deliveredCount == 1000)
        let tail = try producer.lastMessages(topic: topic, partition: 3, count: 2, timeout: .seconds(30))
        #expect(tail.map(\.text) == ["v-995", "v-999"])
        #expect(tail.first?.headers.first?.0 == "n")
        producer.close()

        let result = try runPythonTool("kafka_tool.py", [
            "consume", "--bootstrap", broker.bootstrap, "--topic", topic, "--group", uniqueName("g-py"),
            "--expect", "1000", "--timeout", "60"])
        try #require(result.status == 0, "\(result.stderr)")
        let records = try Self.decodeRecords(result.stdout)
        #expect(records.count == 1000)
        #expect(Set(records.map(\.value)) == Set((0..<1000).map { "v-\($0)" }))
        for r in records {
            let i = try #require(Int(r.value.dropFirst(2)))
            #expect(r.partition == Int32(i % 4))
        }
    }
}
