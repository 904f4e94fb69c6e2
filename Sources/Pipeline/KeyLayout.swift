import KafkaSource
import TidemarkConfig

/// Object keys: a pure function of (topic, partition, start offset, and the record at the start
/// offset: its Kafka timestamp, and with an event-time ``PathTemplate`` its event time), so any
/// instance can compute the key of the batch that starts at a given offset. See
/// docs/protocol.md ("Key").
///
/// ```
/// <prefix>/topic=<topic>/dt=<YYYY-MM-DD>/partition=<p>/<topic>+<p>+<start, 20 digits>.parquet
/// <prefix>/_rejected/topic=<topic>/dt=<YYYY-MM-DD>/partition=<p>/<topic>+<p>+<start>+<end>.jsonl
/// ```
/// (default layout), or with `[sink] path`:
/// ```
/// <prefix>/<template rendered>/<topic>+<p>+<start, 20 digits>.parquet
/// <prefix>/_rejected/<template rendered>/<topic>+<p>+<start>+<end>.jsonl
/// ```
public struct KeyLayout: Sendable, Equatable {
    /// The sink prefix without leading or trailing slashes ("" for the store root).
    public let prefix: String
    /// `[sink] path`, nil for the default layout.
    public let template: PathTemplate?

    public init(prefix: String, template: PathTemplate? = nil) {
        var p = Substring(prefix)
        while p.hasPrefix("/") { p = p.dropFirst() }
        while p.hasSuffix("/") { p = p.dropLast() }
        self.prefix = String(p)
        self.template = template
    }

    /// Kafka's rule for topic names (`[a-zA-Z0-9._-]{1,249}`, not "." or ".."). A valid topic
    /// contains no `/`, so a key can never leave the prefix.
    /// The rule itself is the `[kafka] topics` check's, ``EngineConfig/Kafka/isValidTopic(_:)``.
    public static func isValidTopic(_ topic: String) -> Bool {
        EngineConfig.Kafka.isValidTopic(topic)
    }

    /// `YYYY-MM-DD` (UTC) of a Kafka timestamp in milliseconds; timestamps before the epoch or
    /// missing (-1) map to 1970-01-01.
    public static func date(kafkaTimestampMillis ms: Int64?) -> String {
        let days = Int(max(0, ms ?? 0) / 86_400_000)
        let (y, m, d) = civilFromDays(days)
        func pad(_ v: Int, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))"
    }

    /// The directory of the batch whose first record has `times`.
    public func directory(topic: String, partition: Int32, times: PathTemplate.Times) -> String {
        if let template { return template.render(topic: topic, partition: partition, times: times) }
        return "topic=\(topic)/dt=\(Self.date(kafkaTimestampMillis: times.kafkaMillis))/partition=\(partition)"
    }

    /// The Parquet object key of the batch starting at `start` whose first record has `times`.
    public func objectKey(topic: String, partition: Int32, start: Int64, times: PathTemplate.Times) -> String {
        join(directory(topic: topic, partition: partition, times: times) + "/"
            + "\(topic)+\(partition)+\(Self.offset20(start)).parquet")
    }

    /// The dead-letter object key of the batch `[start, end]` whose first record has `times`.
    public func rejectedKey(topic: String, partition: Int32, start: Int64, end: Int64, times: PathTemplate.Times) -> String {
        join("_rejected/" + directory(topic: topic, partition: partition, times: times) + "/"
            + "\(topic)+\(partition)+\(Self.offset20(start))+\(Self.offset20(end)).jsonl")
    }

    /// ``objectKey(topic:partition:start:times:)`` of a record known only by its Kafka timestamp
    /// (the default layout's key; a template's event-time variables fall back to it).
    public func objectKey(topic: String, partition: Int32, start: Int64, startTimestampMillis: Int64?) -> String {
        objectKey(topic: topic, partition: partition, start: start, times: .init(eventMicros: nil, kafkaMillis: startTimestampMillis))
    }

    /// ``rejectedKey(topic:partition:start:end:times:)`` of a record known only by its Kafka timestamp.
    public func rejectedKey(topic: String, partition: Int32, start: Int64, end: Int64, startTimestampMillis: Int64?) -> String {
        rejectedKey(topic: topic, partition: partition, start: start, end: end,
                    times: .init(eventMicros: nil, kafkaMillis: startTimestampMillis))
    }

    /// The listing prefix of one topic's objects (all dates and partitions): callers list
    /// `topicPrefix(topic)` and keep the keys ``belongs(_:to:)`` accepts. With a template whose
    /// first segment varies, this is the whole sink prefix.
    public func topicPrefix(_ topic: String) -> String {
        guard let template else { return join("topic=\(topic)/") }
        let p = template.listingPrefix(topic: topic)
        return prefix.isEmpty ? p : prefix + "/" + p
    }

    /// Whether `key` is a Parquet or dead-letter object of `tp`, judged by its file name (the
    /// directory depends on the layout; the name does not).
    public func belongs(_ key: String, to tp: TopicPartition) -> Bool {
        if let k = parseObjectKey(key) { return k.topic == tp.topic && k.partition == tp.partition }
        if let d = DeadLetterOrphans.parse(key) { return d.topic == tp.topic && d.partition == tp.partition }
        return false
    }

    /// The dead-letter listing prefix.
    public var rejectedPrefix: String { join("_rejected/") }

    /// Parses a Parquet object key written by ``objectKey(topic:partition:start:startTimestampMillis:)``.
    public func parseObjectKey(_ key: String) -> (topic: String, partition: Int32, start: Int64)? {
        guard key.hasSuffix(".parquet") else { return nil }
        let name = key.split(separator: "/").last.map(String.init) ?? ""
        let fields = name.dropLast(".parquet".count).split(separator: "+")
        guard fields.count == 3, let p = Int32(fields[1]), let s = Int64(fields[2]) else { return nil }
        return (String(fields[0]), p, s)
    }

    private func join(_ rest: String) -> String { prefix.isEmpty ? rest : prefix + "/" + rest }

    static func offset20(_ v: Int64) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, 20 - s.count)) + s
    }

    /// Inverse of days-from-civil (Howard Hinnant's algorithm).
    static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}
