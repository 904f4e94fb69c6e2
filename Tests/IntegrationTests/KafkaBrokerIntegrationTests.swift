import Foundation
import TestSupport
import Testing

/// A Kafka broker in a separate process serves our librdkafka and the Python client (librdkafka
/// 2.16) alike: the local stack's dev broker (`etl-devbroker`, `tools/stack up`; our library is
/// Debian's 2.0.2), or the broker named by `TIDEMARK_KAFKA_BOOTSTRAP` (`make test`'s Tansu pass,
/// our library 2.16 through LD_LIBRARY_PATH): ``KafkaTestBroker``.
@Suite("Kafka broker in a separate process (dev broker, or TIDEMARK_KAFKA_BOOTSTRAP)")
struct KafkaBrokerIntegrationTests {
    @Test("1,000 records produced through librdkafka are consumed in a group, resumed at the committed offsets, and read back by the Python client")
    func produceConsumeCommitResume() throws {
        let broker = try KafkaTestBroker.current()
        let topic = uniqueName("smoke")
        let group = uniqueName("group")
        let values = (0..<1000).map { "value-\($0)" }
        try broker.createTopic(topic, partitions: 4)
        #expect(try RawKafka.produce(bootstrap: broker.bootstrap, topic: topic, values: values,
                                     properties: broker.clientProperties) == 1000)

        // First member: read everything, then commit only the first half of each partition.
        let first = try RawKafka.GroupConsumer(bootstrap: broker.bootstrap, group: group, topic: topic,
                                               properties: broker.clientProperties)
        let all = try first.consume(count: 1000, timeout: 60)
        #expect(all.count == 1000)
        let allValues = Set(all.map(\.value))
        #expect(allValues == Set(values), "\(Set(values).subtracting(allValues).count) values missing")
        let byPartition = Dictionary(grouping: all, by: \.partition)
        var commits: [Int32: Int64] = [:]
        for (p, records) in byPartition {
            let offsets = records.map(\.offset).sorted()
            #expect(offsets == Array(0..<Int64(offsets.count)), "partition \(p) offsets must be dense from 0")
            commits[p] = Int64(offsets.count / 2)   // next offset to read
        }
        try first.commit(topic: topic, offsets: commits)
        first.close()

        // A restarted member resumes exactly at the committed offsets.
        let expected = all.filter { $0.offset >= commits[$0.partition]! }
        let second = try RawKafka.GroupConsumer(bootstrap: broker.bootstrap, group: group, topic: topic,
                                                properties: broker.clientProperties)
        let resumed = try second.consume(count: expected.count, timeout: 60)
        second.close()
        #expect(resumed.count == expected.count)
        let resumedSet = Set(resumed)
        #expect(resumedSet == Set(expected), "resumed \(resumed.count) records, \(Set(expected).subtracting(resumedSet).count) expected ones missing")

        // The independent client sees the same 1,000 records at the same positions.
        let result = try runPythonTool("kafka_tool.py", [
            "consume", "--bootstrap", broker.bootstrap, "--topic", topic,
            "--group", uniqueName("py"), "--expect", "1000", "--timeout", "60",
        ])
        #expect(result.status == 0, "kafka_tool.py consume failed: \(result.stderr)")
        let rows = try #require(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[Any]])
        let seen = Set(rows.map { RawKafka.Record(partition: Int32($0[0] as! Int), offset: Int64($0[1] as! Int), value: $0[2] as! String) })
        #expect(seen == Set(all), "python saw \(seen.count) records, \(Set(all).subtracting(seen).count) missing")
    }

    @Test("records produced by the Python client (idempotent producer) are consumed by our librdkafka")
    func pythonProducerToSwiftConsumer() throws {
        let broker = try KafkaTestBroker.current()
        let topic = uniqueName("py2swift")
        try broker.createTopic(topic, partitions: 4)
        let result = try runPythonTool("kafka_tool.py", [
            "produce", "--bootstrap", broker.bootstrap, "--topic", topic, "--count", "500", "--partitions", "4",
        ])
        #expect(result.status == 0, "kafka_tool.py produce failed: \(result.stderr)")
        let consumer = try RawKafka.GroupConsumer(bootstrap: broker.bootstrap, group: uniqueName("g"), topic: topic,
                                                  properties: broker.clientProperties)
        defer { consumer.close() }
        let records = try consumer.consume(count: 500, timeout: 60)
        #expect(Set(records.map(\.value)) == Set((0..<500).map { "rec-\($0)" }))
        for r in records {
            let i = Int(r.value.dropFirst(4))!
            #expect(r.partition == Int32(i % 4), "record \(r.value) was sent to partition \(i % 4)")
        }
    }
}
