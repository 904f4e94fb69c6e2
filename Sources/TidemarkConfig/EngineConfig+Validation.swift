import Foundation

extension EngineConfig {
    /// The checks ``validate(_:)`` cannot make from the configuration alone, because they need
    /// the code that will use it: the record parser (`[input]`, `[schema]`) and the key layout
    /// (`[sink] path`, `[sink] time_zone`) live in the Pipeline module, which depends on this
    /// one. Pipeline supplies them as `Checks.pipeline`; its `EngineConfig.load(path:environment:)`
    /// and `validate()` use them, so every executable validates completely at start.
    ///
    /// Each check runs at a fixed place among this module's own checks (the order they had
    /// when they were one function), so a configuration with several problems reports the
    /// same first one whichever way it is validated completely.
    public struct Checks: Sendable {
        /// Runs after the `[sink]` checks, before `[staging]`: the key layout (`[sink] time_zone`,
        /// then `[sink] path`).
        public var keyLayout: @Sendable (EngineConfig) throws -> Void
        /// Runs after `[input] max_line_bytes`, before `[engine]`: the record parser (`[input]`,
        /// `[schema]`) and whether `[sink] path`'s event-time variables have an event time.
        public var records: @Sendable (EngineConfig) throws -> Void

        /// Checks that run `keyLayout` and `records` at their places.
        public init(keyLayout: @escaping @Sendable (EngineConfig) throws -> Void,
                    records: @escaping @Sendable (EngineConfig) throws -> Void) {
            self.keyLayout = keyLayout
            self.records = records
        }

        /// This module's checks only: for code that reads a configuration but never runs the
        /// pipeline over it (and for this module's tests). A configuration that passes them may
        /// still be refused by Pipeline's checks (`[schema]`, `[input] pattern`, `[sink] path`).
        public static let configOnly = Checks(keyLayout: { _ in }, records: { _ in })
    }

    /// Range and consistency checks, with `checks` at their places (``Checks``); each error is
    /// a ``ConfigError`` naming its key. Pipeline's `validate()` is `validate(.pipeline)`.
    public func validate(_ checks: Checks) throws {
        func need(_ ok: Bool, _ key: String, _ message: String) throws {
            if !ok { throw ConfigError(key: key, message: message) }
        }
        try need(!kafka.brokers.isEmpty, "kafka.brokers", "is required (e.g. \"127.0.0.1:9092\")")
        try need(!kafka.topics.isEmpty, "kafka.topics", "is required (e.g. [\"logs\"])")
        for t in kafka.topics where !t.hasPrefix("^") {
            try need(Kafka.isValidTopic(t), "kafka.topics", "'\(t)' is not a valid Kafka topic name ([a-zA-Z0-9._-], 1-249 chars)")
        }
        try need(!kafka.groupID.isEmpty, "kafka.group_id", "must not be empty")
        try need(["earliest", "latest", "smallest", "largest", "beginning", "end", "error"].contains(kafka.autoOffsetReset),
                 "kafka.auto_offset_reset", "'\(kafka.autoOffsetReset)' must be earliest or latest")
        try need(["fail", "report"].contains(kafka.onDataLoss),
                 "kafka.on_data_loss", "'\(kafka.onDataLoss)' must be fail or report")
        try need(kafka.instanceID.map { $0.count <= 249 && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_") } } ?? true,
                 "kafka.instance_id", "must be at most 249 characters of a-z A-Z 0-9 . _ -")
        try need(["cooperative-sticky", "eager"].contains(kafka.rebalanceProtocol),
                 "kafka.rebalance_protocol", "'\(kafka.rebalanceProtocol)' must be cooperative-sticky or eager")
        try need(!sink.url.isEmpty, "sink.url", "is required (s3://bucket/prefix or file:///dir)")
        try need(sink.url.hasPrefix("s3://") || sink.url.hasPrefix("file://"), "sink.url",
                 "'\(sink.url)' must start with s3:// or file://")
        try need(["none", "AES256", "aws:kms"].contains(sink.sse), "sink.sse", "'\(sink.sse)' must be none, AES256 or aws:kms")
        try need(sink.sse != "aws:kms" || sink.sseKMSKeyID != nil, "sink.sse_kms_key_id", "is required when sse = \"aws:kms\"")
        try need(["required", "auto", "off"].contains(sink.conditionalWrites), "sink.conditional_writes",
                 "'\(sink.conditionalWrites)' must be required, auto or off")
        try need(sink.partSize >= 5 << 20 && sink.partSize <= 5 << 30, "sink.part_size", "must be between 5MiB and 5GiB")
        try need((1...64).contains(sink.uploadConcurrency), "sink.upload_concurrency", "must be 1...64")
        try need(sink.requestTimeout >= .seconds(1) && sink.requestTimeout <= .seconds(3600), "sink.request_timeout",
                 "must be between 1s and 1h")
        try need(["zstd", "snappy", "gzip", "none"].contains(sink.compression), "sink.compression",
                 "'\(sink.compression)' must be zstd, snappy, gzip or none")
        try need(["modern", "compatible"].contains(sink.parquetProfile), "sink.parquet_profile",
                 "'\(sink.parquetProfile)' must be modern or compatible")
        try need((1...19).contains(sink.zstdLevel), "sink.zstd_level", "must be 1...19")
        try need((sink.accessKeyID == nil) == (sink.secretAccessKey == nil), "sink.access_key_id",
                 "access_key_id and secret_access_key must be set together")
        try checks.keyLayout(self)
        try need(!staging.dir.isEmpty, "staging.dir", "must not be empty")
        try need(!staging.manifest.isEmpty, "staging.manifest", "must not be empty")
        try need(staging.maxBytes > 0, "staging.max_bytes", "must be positive")
        try need(manifest.retention == .zero || manifest.retention >= .seconds(1), "manifest.retention",
                 "must be 0 (keep every row) or at least 1s")
        try need(batch.maxRecords >= 1, "batch.max_records", "must be >= 1")
        try need(batch.maxBytes >= 1024, "batch.max_bytes", "must be >= 1KiB")
        try need(batch.maxAge > .zero, "batch.max_age", "must be positive")
        try need((1...16).contains(batch.maxInFlight), "batch.max_in_flight", "must be 1...16")
        try need(batch.memoryBudget >= 8 << 20, "batch.memory_budget", "must be >= 8MiB")
        try need(input.maxLineBytes >= 64, "input.max_line_bytes", "must be >= 64")
        try checks.records(self)
        try need((0...65535).contains(engine.metricsPort), "engine.metrics_port", "must be 0...65535")
        try need((0...64).contains(engine.encoderThreads), "engine.encoder_threads", "must be 0 (one per core) ... 64")
        try need(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(engine.logLevel),
                 "engine.log_level", "'\(engine.logLevel)' is not a log level")
        try need(["text", "json"].contains(engine.logFormat), "engine.log_format", "'\(engine.logFormat)' must be text or json")
    }
}
