import Foundation
import KafkaSource
import Logging
import Manifest
import ObjectStore
import Parquet
import Synchronization
import TidemarkConfig

#if canImport(Glibc)
import Glibc
#endif

/// How the engine builds its clients: librdkafka's defaults, the S3 settings, and `--check`.
extension Engine {
    /// librdkafka properties the engine sets unless `[kafka.properties]` gives them: they bound
    /// the prefetched records and keep the poll thread fed (docs/operations.md, Memory; measured
    /// in docs/benchmarks.md). `etl-engine --help` lists them from here.
    public static let librdkafkaDefaults: [(key: String, value: String)] = [
        // librdkafka prefetches up to 64 MiB of records by default; half of that keeps the
        // consumer fed and the engine's memory bounded.
        ("queued.max.messages.kbytes", "32768"),
        // librdkafka 2.0.2 stops fetching once `queued.min.messages` records are queued (across
        // the consumer: the partitions' fetch queues forward to one) and re-decides only when its
        // broker thread wakes, at most every second (2.1 added `fetch.queue.backoff.ms` for this).
        // The queue must therefore hold about a second of records or the poll thread starves:
        // 100,000 (librdkafka's default) capped the engine at ~130k records/s with the poll
        // thread idle 40% of the time; 250,000 gives ~300-335k records/s. Each queued record
        // costs ~450 bytes in librdkafka.
        ("queued.min.messages", "250000"),
        // A fetch response stays in memory until its last record is consumed, and librdkafka
        // may fetch once more just below the threshold: 50 MiB responses (its default) made peak
        // RSS grow with the partition count (48 partitions: 279-323 MiB). 2 MiB responses pay
        // for the larger queue: 48 partitions 229-243 MiB. librdkafka raises it to
        // `message.max.bytes` if that is larger, and always returns at least one record.
        ("fetch.max.bytes", "2097152"),
        // librdkafka keeps one Fetch in flight per broker, and a broker holds a Fetch for up to
        // `fetch.wait.max.ms` when its partitions have nothing new (for example when the
        // partitions with data are paused by backpressure or were not fetchable yet); until it
        // answers, no partition on that broker is fetched. 100 ms instead of librdkafka's 500:
        // 3,000,000 records over 48 partitions to moto, 5 runs each, 324-334k -> 339-358k
        // records/s (10 ms: 343-372k, but up to 100 Fetch requests a second per broker when idle).
        ("fetch.wait.max.ms", "100"),
    ]

    /// Adds each of ``librdkafkaDefaults`` that `properties` does not set; the user's values win.
    public static func applyLibrdkafkaDefaults(to properties: inout [String: String]) {
        for (key, value) in librdkafkaDefaults where properties[key] == nil {
            properties[key] = value
        }
    }

    /// The S3 settings of the configuration. The region is `[sink] region`, else `AWS_REGION`,
    /// else `AWS_DEFAULT_REGION`, else the AWS profile's `region`, else `us-east-1`
    /// (``AWSRegion/resolve(explicit:profile:environment:)``).
    public static func s3Configuration(_ c: EngineConfig,
                                       environment: [String: String] = ProcessInfo.processInfo.environment)
        -> S3Configuration
    {
        var s3 = S3Configuration(bucket: "")
        s3.region = AWSRegion.resolve(explicit: c.sink.region, profile: nil, environment: environment).region
        s3.endpoint = c.sink.endpoint
        s3.pathStyle = c.sink.pathStyle ?? (c.sink.endpoint != nil)
        if let k = c.sink.accessKeyID, let s = c.sink.secretAccessKey {
            s3.credentials = AWSCredentials(accessKeyID: k, secretAccessKey: s, sessionToken: nil)
        }
        switch c.sink.sse {
        case "AES256": s3.serverSideEncryption = .aes256
        case "aws:kms": s3.serverSideEncryption = .kms(keyID: c.sink.sseKMSKeyID)
        default: s3.serverSideEncryption = .none
        }
        s3.caBundle = c.sink.caBundle
        s3.requestTimeout = TimeInterval(c.sink.requestTimeout.components.seconds)
        return s3
    }
}

extension Engine {
    /// `--check`: the manifest opened (lock, quick_check) in init; now the credential chain
    /// yields credentials (S3), the object store answers a listing, a multipart upload is
    /// created under `<prefix>/_tidemark_check/` and aborted (proving PutObject and
    /// AbortMultipartUpload on the prefix, and with `sse = "aws:kms"` the KMS key), S3 is probed
    /// for `If-None-Match: *` (unless `conditional_writes = "off"`), and Kafka answers a
    /// metadata request for every configured topic.
    /// - Returns: what was proved, one line each (the credential provider, the region, the
    ///   probe key); never a secret.
    @discardableResult
    public func check() throws -> [String] {
        var report: [String] = []
        // The engine's store counts requests for the metrics (InstrumentedObjectStore); the S3
        // facts are the wrapped store's.
        let s3Store = ((store as? InstrumentedObjectStore)?.base ?? store) as? S3Store
        if let s3 = s3Store {
            _ = try s3.currentCredentials()
            report.append("credentials: \(s3.credentialSource)")
            let region = AWSRegion.resolve(explicit: config.sink.region, profile: s3.configuration.profile)
            report.append("region: \(s3.configuration.region) (from \(region.source))")
        }
        _ = try store.listObjects(prefix: layout.prefix, startAfter: nil, continuationToken: nil, maxKeys: 1)
        let probeName = "_tidemark_check/\(UUID().uuidString.lowercased())"
        let probeKey = layout.prefix.isEmpty ? probeName : "\(layout.prefix)/\(probeName)"
        let uploadID = try store.createMultipartUpload(key: probeKey, metadata: ["tidemark-check": "1"])
        try store.abortMultipartUpload(key: probeKey, uploadID: uploadID)
        let kms = config.sink.sse == "aws:kms" ? ", SSE-KMS key \(config.sink.sseKMSKeyID ?? "default")" : ""
        report.append("object store: listed the prefix; created and aborted a multipart upload at \(probeKey) "
            + "(PutObject, AbortMultipartUpload\(kms))")
        if s3Store != nil {
            if config.sink.conditionalWrites == "off" {
                report.append("conditional writes: not probed (conditional_writes = \"off\")")
            } else {
                let key = Self.conditionalWritesProbeKey(layout)
                let honoured = try Self.probeConditionalWrites(store: store, key: key)
                report.append(honoured
                    ? "conditional writes: honoured (a second If-None-Match: * create of \(key) was refused)"
                    : "conditional writes: IGNORED by the store; conditional_writes = \"\(config.sink.conditionalWrites)\": "
                        + (config.sink.conditionalWrites == "auto" ? "HEAD before each commit" : "the engine will not start"))
            }
        }
        let kc = KafkaConsumerConfig(bootstrapServers: config.kafka.brokers, groupID: config.kafka.groupID,
                                     topics: config.kafka.topics, properties: config.kafka.properties)
        let probe = try KafkaConsumer(config: kc, rebalanceHandler: nil, logger: logger)
        defer { try? probe.close(timeout: .seconds(5)) }
        for topic in config.kafka.topics where !topic.hasPrefix("^") {
            _ = try probe.watermarks(TopicPartition(topic: topic, partition: 0), cached: false, timeout: .seconds(10))
        }
        report.append("kafka: metadata for \(config.kafka.topics.joined(separator: ", "))")
        manifest.close()
        return report
    }
}
