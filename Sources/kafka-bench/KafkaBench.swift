import ArgumentParser
import Foundation
import KafkaSource
import Logging

/// `kafka-bench`: consumes N records through ``KafkaConsumer`` doing nothing with them and
/// reports the rate. Used by `bench/kafka_bench.sh` beside `kcat`.
@main
struct KafkaBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka-bench",
        abstract: "Consume N records from a topic with KafkaConsumer (zero-copy path) and print the rate.",
        discussion: """
            Joins a fresh consumer group (never commits), reads from the beginning until --count \
            records arrived, touching only each record's length. Prints one JSON line: records, \
            bytes, seconds (from the partition assignment to the last record, i.e. excluding the \
            group join, which the mock broker delays by 3 s), records_per_s, mb_per_s (10^6 bytes \
            of values per second), and wall_seconds (including the join).
            """
    )

    @Option(help: "bootstrap.servers (host:port).")
    var bootstrap: String

    @Option(help: "Topic to read.")
    var topic: String

    @Option(help: "Number of records to read before stopping.")
    var count: Int = 1_000_000

    @Option(help: "Records per pollBatch call.")
    var batch: Int = 10_000

    @Option(help: "Seconds to wait for all records before failing.")
    var timeout: Double = 300

    @Option(help: "Log level for the client's own and librdkafka's messages.")
    var logLevel: String = "warning"

    @Flag(help: "Use the copying poll() instead of the zero-copy pollBatch().")
    var copying = false

    func run() throws {
        var logger = Logger(label: "kafka-bench")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .warning
        let config = KafkaConsumerConfig(
            bootstrapServers: bootstrap, groupID: "kafka-bench-\(UUID().uuidString.prefix(8))", topics: [topic],
            autoOffsetReset: "earliest", sessionTimeout: .seconds(10),
            properties: ["heartbeat.interval.ms": "500"])
        let clock = ContinuousClock()
        let assigned = AssignmentClock(clock)
        let consumer = try KafkaConsumer(config: config, rebalanceHandler: assigned, logger: logger)
        try consumer.subscribe()
        let start = clock.now
        let deadline = start.advanced(by: .seconds(timeout))
        var records = 0
        var bytes = 0
        while records < count {
            guard clock.now < deadline else {
                throw ValidationError("only \(records) of \(count) records within \(timeout) s")
            }
            let want = min(batch, count - records)
            if copying {
                let messages = try consumer.poll(maxMessages: want, timeout: .milliseconds(200))
                for m in messages { bytes += m.value.count }
                records += messages.count
            } else {
                records += try consumer.pollBatch(maxMessages: want, timeout: .milliseconds(200)) { view in
                    bytes &+= view.valueCount
                }
            }
        }
        let end = clock.now
        try consumer.close(timeout: .seconds(10))
        let seconds = Self.seconds((assigned.at ?? start).duration(to: end))
        let wall = Self.seconds(start.duration(to: end))
        let line = String(format: "{\"tool\": \"kafka-bench%@\", \"records\": %d, \"bytes\": %d, \"seconds\": %.3f, "
                            + "\"records_per_s\": %.0f, \"mb_per_s\": %.1f, \"wall_seconds\": %.3f}",
                          copying ? "-copying" : "", records, bytes, seconds, Double(records) / seconds,
                          Double(bytes) / seconds / 1e6, wall)
        print(line)
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

/// Notes when partitions were first assigned (the rebalance handler runs inside poll, on this thread).
final class AssignmentClock: KafkaRebalanceHandler {
    let clock: ContinuousClock
    var at: ContinuousClock.Instant?
    init(_ clock: ContinuousClock) { self.clock = clock }
    func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        if at == nil { at = clock.now }
        return [:]
    }
    func partitionsRevoked(_ partitions: [TopicPartition]) {}
    func partitionsLost(_ partitions: [TopicPartition]) {}
}
