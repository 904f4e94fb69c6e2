import Foundation

/// The engine's configuration: a TOML file (`--config tidemark.toml`), every key overridable by
/// an environment variable `TIDEMARK_<SECTION>_<KEY>` (upper case, e.g. `TIDEMARK_KAFKA_BROKERS`,
/// `TIDEMARK_BATCH_MAX_AGE`). Validated completely at start: an unknown key, a wrong type or an
/// out-of-range value is a ``ConfigError`` naming the key. docs/operations.md lists every key.
///
/// Any string value, in the file or in an override, may hold references resolved at load time:
/// `${NAME}` (the environment variable NAME) and `${file:/path}` (the file's content without
/// its trailing newline), so secrets such as `[kafka.properties] "sasl.password"` or
/// `[sink] secret_access_key` need not be in the file; `$${` is a literal `${`
/// (``References``).
public struct EngineConfig: Sendable, Equatable {
    public struct Kafka: Sendable, Equatable {
        /// `[kafka] brokers`: bootstrap servers, `host:port[,host:port...]`.
        public var brokers: String = ""
        /// `[kafka] topics`: topic names (a name starting with `^` is a regex subscription).
        public var topics: [String] = []
        /// `[kafka] group_id`.
        public var groupID: String = "tidemark"
        /// `[kafka] auto_offset_reset`: where a partition with no committed offset starts.
        public var autoOffsetReset: String = "earliest"
        /// `[kafka] rebalance_protocol`: `eager` (default) or `cooperative-sticky`. Eager is the
        /// default because librdkafka 2.0.2 (Debian 12) can abort in the cooperative-sticky
        /// assignor (`rd_kafka_sticky_assignor_state_destroy: Assertion assignor_state failed`)
        /// when a member closes before its first assignment completes.
        public var rebalanceProtocol: String = "eager"
        /// `[kafka] session_timeout`.
        public var sessionTimeout: Duration = .seconds(30)
        /// `[kafka.properties]`: passed to librdkafka as-is (security.protocol, sasl.*, ssl.*, ...).
        public var properties: [String: String] = [:]
        /// `[kafka] instance_id`: librdkafka's `group.instance.id` (static group membership). Nil
        /// (the default) derives one that is stable across restarts from the host name and the
        /// staging directory (``effectiveInstanceID(stagingDirectory:)``); "" turns static
        /// membership off.
        public var instanceID: String?
        /// `[kafka] on_data_loss`: what to do when records were deleted by retention before they
        /// were delivered (committed offset below the log start): `fail` (default: exit 4
        /// before committing past them) or `report` (record, log, count, go on).
        public var onDataLoss: String = "fail"

        /// The `group.instance.id` to use, or nil for none: `instance_id` when set and not
        /// empty, else `tidemark-<host>-<first 12 hex digits of SHA-256(staging dir)>` (two
        /// engines on one host have two staging directories, so two ids).
        public func effectiveInstanceID(stagingDirectory: String, hostName: String? = nil) -> String? {
            if let instanceID { return instanceID.isEmpty ? nil : instanceID }
            let host = (hostName ?? Self.hostName()).map { c -> Character in
                c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "-" || c == "_") ? c : "_"
            }
            let dir = (stagingDirectory as NSString).standardizingPath
            return "tidemark-\(String(host).prefix(64))-\(Self.fnv1a64Hex(dir).prefix(12))"
        }

        static func hostName() -> String {
            var buf = [CChar](repeating: 0, count: 256)
            guard gethostname(&buf, buf.count) == 0 else { return "host" }
            return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }

        /// A stable 64-bit hash (FNV-1a) as hex: the id must not change across releases.
        static func fnv1a64Hex(_ s: String) -> String {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
            let hex = String(h, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }
    }

    public struct Sink: Sendable, Equatable {
        /// `[sink] url`: `s3://bucket/prefix` or `file:///dir`.
        public var url: String = ""
        /// `[sink] endpoint`: custom S3 endpoint (MinIO, Ceph, R2, moto), e.g. `http://127.0.0.1:9000`.
        public var endpoint: String?
        /// `[sink] region`: the S3 signing region. Nil when not set: then `AWS_REGION`, else
        /// `AWS_DEFAULT_REGION`, else the AWS profile's `region`, else `us-east-1`
        /// (``Engine/s3Configuration(_:environment:)``).
        public var region: String?
        /// `[sink] path_style`: path-style addressing (default true when an endpoint is set).
        public var pathStyle: Bool?
        /// `[sink] sse`: `none`, `AES256` or `aws:kms`.
        public var sse: String = "none"
        /// `[sink] sse_kms_key_id`.
        public var sseKMSKeyID: String?
        /// `[sink] conditional_writes`: `required` (default: at start, S3 must refuse a second
        /// `If-None-Match: *` create with 412, else the engine does not start), `auto` (warn
        /// and fall back to HEAD before each commit) or `off` (no probe; trust the store).
        public var conditionalWrites: String = "required"
        /// `[sink] part_size`: multipart part size (>= 5 MiB).
        public var partSize: Int = 16 << 20
        /// `[sink] compression`: Parquet page compression, `zstd` (default), `snappy`, `gzip` or `none`.
        public var compression: String = "zstd"
        /// `[sink] zstd_level`: ZSTD level (1-19, default 3).
        public var zstdLevel: Int = 3
        /// `[sink] parquet_profile`: `modern` (default) or `compatible` (readers that predate
        /// Parquet 2.0 encodings and LogicalType; docs/parquet.md).
        public var parquetProfile: String = "modern"
        /// `[sink] upload_concurrency`: parts in flight per upload.
        public var uploadConcurrency: Int = 4
        /// `[sink] request_timeout`: time one S3 request may take before it is abandoned and retried.
        public var requestTimeout: Duration = .seconds(300)
        /// `[sink] ca_bundle`: PEM file for TLS verification.
        public var caBundle: String?
        /// `[sink] path`: the key's directory as a template over the record at a batch's start
        /// (``PathTemplate``), e.g. `{topic}/dt={event_date}/hour={event_hour}`; nil: the
        /// default `topic=<t>/dt=<kafka date>/partition=<p>` layout.
        public var path: String?
        /// `[sink] time_zone`: the zone `path` renders dates and hours in (``PathTimeZone``).
        public var timeZone: String = "UTC"
        /// `[sink] access_key_id` / `secret_access_key`: discouraged (a warning is logged); use
        /// the AWS environment variables or profile instead.
        public var accessKeyID: String?
        public var secretAccessKey: String?
    }

    public struct Staging: Sendable, Equatable {
        /// `[staging] dir`: where batches are written before upload (created 0700).
        public var dir: String = "./tidemark-data/staging"
        /// `[staging] manifest`: the SQLite manifest path (created 0600).
        public var manifest: String = "./tidemark-data/manifest.sqlite"
        /// `[staging] max_bytes`: staged-but-not-committed bytes above which partitions pause.
        public var maxBytes: Int64 = 4 << 30
    }

    public struct Batch: Sendable, Equatable {
        /// `[batch] max_records`.
        public var maxRecords: Int = 500_000
        /// `[batch] max_bytes`: uncompressed input bytes.
        public var maxBytes: Int = 128 << 20
        /// `[batch] max_age`.
        public var maxAge: Duration = .seconds(60)
        /// `[batch] max_in_flight`: sealed, uncommitted batches per partition before it pauses.
        public var maxInFlight: Int = 2
        /// `[batch] memory_budget`: memory for the row groups of all open batches together. Each
        /// open batch's row group is at most an equal share (between 1 MiB and 32 MiB); when the
        /// open batches together buffer more than the budget, the largest row groups are written
        /// to their staged files early (``ParquetMemoryBudget``), so the budget holds however
        /// many partitions are assigned.
        public var memoryBudget: Int = 64 << 20
    }

    public struct Input: Sendable, Equatable {
        /// `[input] format`: `seed` (default; `auto` is the same), `text`, `json`, `regex` or `raw`.
        public var format: InputFormat = .seed
        /// `[input] max_line_bytes`.
        public var maxLineBytes: Int = 1 << 20
        /// `[input] pattern`: the regular expression of `format = "regex"` (named groups `(?<name>...)`).
        public var pattern: String?

        /// The defaults (`format = "seed"`).
        public init() {}
    }

    public struct Engine: Sendable, Equatable {
        /// `[engine] status_interval`: how often the status line is logged (0 = never).
        public var statusInterval: Duration = .seconds(10)
        /// `[engine] metrics_port`: HTTP `/metrics`, `/healthz`, `/ready` on `metrics_host` (0 = off).
        public var metricsPort: Int = 0
        /// `[engine] metrics_host`.
        public var metricsHost: String = "127.0.0.1"
        /// `[engine] log_level`: trace, debug, info, notice, warning, error, critical.
        public var logLevel: String = "info"
        /// `[engine] log_format`: `text` (default: swift-log's stream format, one readable line
        /// per event) or `json` (one JSON object per line: ts, level, logger, msg, source and the
        /// metadata). Read by etl-engine, etl-recover and etl-audit.
        public var logFormat: String = "text"
        /// `[engine] orphan_upload_grace`: multipart uploads nobody owns older than this are aborted by recovery.
        public var orphanUploadGrace: Duration = .seconds(3600)
    }

    public var kafka = Kafka()
    public var sink = Sink()
    public var staging = Staging()
    public var batch = Batch()
    public var input = Input()
    /// `[schema]` and `[[schema.fields]]`.
    public var schema = SchemaOptions()
    public var engine = Engine()
    /// Non-fatal remarks found while loading (e.g. secrets in the file).
    public var warnings: [String] = []

    public init() {}

    /// The documented keys: section -> key -> help (also drives env overrides and unknown-key errors).
    public static let keys: [String: [String: String]] = [
        "kafka": ["brokers": "bootstrap servers", "topics": "topics (list)", "group_id": "consumer group",
                  "auto_offset_reset": "earliest|latest", "rebalance_protocol": "cooperative-sticky|eager",
                  "session_timeout": "duration", "properties": "table of librdkafka properties",
                  "instance_id": "static membership id (default derived from host and staging dir; \"\" = off)",
                  "on_data_loss": "fail|report"],
        "sink": ["url": "s3://bucket/prefix or file:///dir", "endpoint": "S3 endpoint URL", "region": "S3 region",
                 "path_style": "bool", "sse": "none|AES256|aws:kms", "sse_kms_key_id": "KMS key id",
                 "conditional_writes": "required|auto|off",
                 "part_size": "size", "upload_concurrency": "int", "ca_bundle": "path", "request_timeout": "duration",
                 "compression": "zstd|snappy|gzip|none", "zstd_level": "int",
                 "parquet_profile": "modern|compatible",
                 "path": "key directory template, e.g. {topic}/dt={event_date}/hour={event_hour}",
                 "time_zone": "UTC|+HH:MM|IANA name for path",
                 "access_key_id": "discouraged", "secret_access_key": "discouraged"],
        "staging": ["dir": "path", "manifest": "path", "max_bytes": "size"],
        "batch": ["max_records": "int", "max_bytes": "size", "max_age": "duration", "max_in_flight": "int", "memory_budget": "size"],
        "input": ["format": "seed|json|regex|raw (also auto = seed, text)", "max_line_bytes": "size",
                  "pattern": "regex with named groups (format = regex)"],
        "schema": ["fields": "[[schema.fields]] list: name, source, type, timestamp_format, required, default",
                   "unmapped": "attributes|drop", "include_key": "bool", "include_headers": "bool",
                   "event_time_field": "name of a timestamp field"],
        "engine": ["status_interval": "duration", "metrics_port": "int", "metrics_host": "address",
                   "log_level": "level", "log_format": "text|json", "orphan_upload_grace": "duration"],
    ]

    /// Loads `path` (nil: defaults only), applies environment overrides, validates.
    public static func load(path: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> EngineConfig {
        var root: [String: TOMLValue] = [:]
        if let path {
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw ConfigError(key: nil, message: "cannot read config file \(path): \(error.localizedDescription)")
            }
            do {
                root = try TOML.parse(text)
            } catch let e as TOMLError {
                throw ConfigError(key: nil, message: "\(path): \(e)")
            }
        }
        return try from(root: root, environment: environment, source: path ?? "(defaults)")
    }

    static func from(root: [String: TOMLValue], environment: [String: String], source: String) throws -> EngineConfig {
        var c = EngineConfig()
        let references = References(environment: environment)
        // Unknown keys first: a misspelt key is reported as such even when its value holds a
        // reference that does not resolve.
        try Reader(root: root, env: [:], source: source, references: references).checkUnknown()
        // Resolve references in the file's strings and in the overrides before reading types, so
        // `max_age = "${MAX_AGE}"` works like any other string. TIDEMARK_KAFKA_PROPERTIES is
        // resolved per value, after it is split at its commas (a secret may hold a comma).
        var fromReference: Set<String> = []
        let resolvedRoot = try references.resolve(root, referenced: &fromReference)
        var resolvedEnv: [String: String] = [:]
        for (section, known) in keys {
            for key in known.keys where !(section == "kafka" && key == "properties") && !(section == "schema" && key == "fields") {
                let name = Reader.envName(section, key)
                if let e = environment[name] { resolvedEnv[name] = try references.resolve(e, key: "\(section).\(key)").value }
            }
        }
        if let e = environment[Reader.envName("kafka", "properties")] { resolvedEnv[Reader.envName("kafka", "properties")] = e }
        let r = Reader(root: resolvedRoot, env: resolvedEnv, source: source, references: references)

        c.kafka.brokers = try r.string("kafka", "brokers") ?? c.kafka.brokers
        c.kafka.topics = try r.stringList("kafka", "topics") ?? c.kafka.topics
        c.kafka.groupID = try r.string("kafka", "group_id") ?? c.kafka.groupID
        c.kafka.autoOffsetReset = try r.string("kafka", "auto_offset_reset") ?? c.kafka.autoOffsetReset
        c.kafka.rebalanceProtocol = try r.string("kafka", "rebalance_protocol") ?? c.kafka.rebalanceProtocol
        c.kafka.sessionTimeout = try r.duration("kafka", "session_timeout") ?? c.kafka.sessionTimeout
        c.kafka.properties = try r.stringTable("kafka", "properties") ?? [:]
        c.kafka.instanceID = try r.string("kafka", "instance_id") ?? c.kafka.instanceID
        c.kafka.onDataLoss = try r.string("kafka", "on_data_loss") ?? c.kafka.onDataLoss

        c.sink.url = try r.string("sink", "url") ?? c.sink.url
        c.sink.endpoint = try r.string("sink", "endpoint")
        c.sink.region = try r.string("sink", "region") ?? c.sink.region
        c.sink.pathStyle = try r.bool("sink", "path_style")
        c.sink.sse = try r.string("sink", "sse") ?? c.sink.sse
        c.sink.sseKMSKeyID = try r.string("sink", "sse_kms_key_id")
        c.sink.conditionalWrites = try r.string("sink", "conditional_writes") ?? c.sink.conditionalWrites
        c.sink.partSize = Int(try r.size("sink", "part_size") ?? Int64(c.sink.partSize))
        c.sink.uploadConcurrency = try r.int("sink", "upload_concurrency") ?? c.sink.uploadConcurrency
        c.sink.requestTimeout = try r.duration("sink", "request_timeout") ?? c.sink.requestTimeout
        c.sink.compression = try r.string("sink", "compression") ?? c.sink.compression
        c.sink.zstdLevel = try r.int("sink", "zstd_level") ?? c.sink.zstdLevel
        c.sink.parquetProfile = try r.string("sink", "parquet_profile") ?? c.sink.parquetProfile
        c.sink.caBundle = try r.string("sink", "ca_bundle")
        c.sink.path = try r.string("sink", "path")
        c.sink.timeZone = try r.string("sink", "time_zone") ?? c.sink.timeZone
        c.sink.accessKeyID = try r.string("sink", "access_key_id")
        c.sink.secretAccessKey = try r.string("sink", "secret_access_key")
        // A reference keeps the secret out of the file: no warning for it.
        if r.fileHas("sink", "secret_access_key") && !fromReference.contains("sink.secret_access_key") {
            c.warnings.append("[sink] secret_access_key is set in \(source): prefer AWS_SECRET_ACCESS_KEY or an AWS profile")
        }

        c.staging.dir = try r.string("staging", "dir") ?? c.staging.dir
        c.staging.manifest = try r.string("staging", "manifest") ?? c.staging.manifest
        c.staging.maxBytes = try r.size("staging", "max_bytes") ?? c.staging.maxBytes

        c.batch.maxRecords = try r.int("batch", "max_records") ?? c.batch.maxRecords
        c.batch.maxBytes = Int(try r.size("batch", "max_bytes") ?? Int64(c.batch.maxBytes))
        c.batch.maxAge = try r.duration("batch", "max_age") ?? c.batch.maxAge
        c.batch.maxInFlight = try r.int("batch", "max_in_flight") ?? c.batch.maxInFlight
        c.batch.memoryBudget = Int(try r.size("batch", "memory_budget") ?? Int64(c.batch.memoryBudget))

        if let f = try r.string("input", "format") {
            guard let v = InputFormat(rawValue: f) else {
                throw ConfigError(key: "input.format", message: "'\(f)' is not one of seed, json, regex, raw (or auto, text)")
            }
            c.input.format = v
        }
        c.input.maxLineBytes = Int(try r.size("input", "max_line_bytes") ?? Int64(c.input.maxLineBytes))
        c.input.pattern = try r.string("input", "pattern")

        c.schema.unmapped = try r.string("schema", "unmapped") ?? c.schema.unmapped
        c.schema.includeKey = try r.bool("schema", "include_key") ?? c.schema.includeKey
        c.schema.includeHeaders = try r.bool("schema", "include_headers") ?? c.schema.includeHeaders
        c.schema.eventTimeField = try r.string("schema", "event_time_field")
        c.schema.fields = try r.schemaFields()

        c.engine.statusInterval = try r.duration("engine", "status_interval") ?? c.engine.statusInterval
        c.engine.metricsPort = try r.int("engine", "metrics_port") ?? c.engine.metricsPort
        c.engine.metricsHost = try r.string("engine", "metrics_host") ?? c.engine.metricsHost
        c.engine.logLevel = try r.string("engine", "log_level") ?? c.engine.logLevel
        c.engine.logFormat = try r.string("engine", "log_format") ?? c.engine.logFormat
        c.engine.orphanUploadGrace = try r.duration("engine", "orphan_upload_grace") ?? c.engine.orphanUploadGrace

        try c.validate()
        return c
    }

    /// Range and consistency checks; each error names its key.
    public func validate() throws {
        func need(_ ok: Bool, _ key: String, _ message: String) throws {
            if !ok { throw ConfigError(key: key, message: message) }
        }
        try need(!kafka.brokers.isEmpty, "kafka.brokers", "is required (e.g. \"127.0.0.1:9092\")")
        try need(!kafka.topics.isEmpty, "kafka.topics", "is required (e.g. [\"logs\"])")
        for t in kafka.topics where !t.hasPrefix("^") {
            try need(KeyLayout.isValidTopic(t), "kafka.topics", "'\(t)' is not a valid Kafka topic name ([a-zA-Z0-9._-], 1-249 chars)")
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
        _ = try keyLayout(prefix: "")
        try need(!staging.dir.isEmpty, "staging.dir", "must not be empty")
        try need(!staging.manifest.isEmpty, "staging.manifest", "must not be empty")
        try need(staging.maxBytes > 0, "staging.max_bytes", "must be positive")
        try need(batch.maxRecords >= 1, "batch.max_records", "must be >= 1")
        try need(batch.maxBytes >= 1024, "batch.max_bytes", "must be >= 1KiB")
        try need(batch.maxAge > .zero, "batch.max_age", "must be positive")
        try need((1...16).contains(batch.maxInFlight), "batch.max_in_flight", "must be 1...16")
        try need(batch.memoryBudget >= 8 << 20, "batch.memory_budget", "must be >= 8MiB")
        try need(input.maxLineBytes >= 64, "input.max_line_bytes", "must be >= 64")
        let parser = try RecordParser(input: input, schema: schema)
        try need(try keyLayout(prefix: "").template?.usesEventTime != true || parser.hasEventTime, "sink.path",
                 "'\(sink.path ?? "")' uses {event_…} but records of format \(input.format.rawValue) have no event time: "
                 + "set [schema] event_time_field to a timestamp field, or use {kafka_…}")
        try need((0...65535).contains(engine.metricsPort), "engine.metrics_port", "must be 0...65535")
        try need(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(engine.logLevel),
                 "engine.log_level", "'\(engine.logLevel)' is not a log level")
        try need(["text", "json"].contains(engine.logFormat), "engine.log_format", "'\(engine.logFormat)' must be text or json")
    }

    /// The key layout for the sink prefix `prefix`: the default one, or `[sink] path` in
    /// `[sink] time_zone`.
    /// - Throws: ``ConfigError`` naming `sink.path` or `sink.time_zone`.
    public func keyLayout(prefix: String) throws -> KeyLayout {
        let zone = try PathTimeZone(parsing: sink.timeZone)
        return KeyLayout(prefix: prefix, template: try sink.path.map { try PathTemplate($0, zone: zone) })
    }

    /// Parses `500ms`, `5s`, `2m`, `1h`, `1d` (a bare number is seconds).
    public static func parseDuration(_ text: String) -> Duration? {
        let t = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            let num = t.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            if suffix == "s", num.hasSuffix("m") { continue }
            guard let v = Double(num), v >= 0, v.isFinite else { return nil }
            return .milliseconds(Int64((v * scale * 1000).rounded()))
        }
        guard let v = Double(t), v >= 0, v.isFinite else { return nil }
        return .milliseconds(Int64((v * 1000).rounded()))
    }

    /// Parses `64MiB`, `1GiB`, `512KiB`, `10MB`, `1KB`, or plain bytes.
    public static func parseSize(_ text: String) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Int64)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
                                        ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            let num = t.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            guard let v = Double(num), v >= 0, v * Double(scale) < 9e18 else { return nil }
            return Int64(v * Double(scale))
        }
        return Int64(t).flatMap { $0 >= 0 ? $0 : nil }
    }

    /// Reads typed values from the TOML root, with environment overrides taking precedence.
    struct Reader {
        let root: [String: TOMLValue]
        let env: [String: String]
        let source: String
        /// Resolves references in the values of TIDEMARK_KAFKA_PROPERTIES (the other overrides
        /// arrive resolved).
        let references: References

        func checkUnknown() throws {
            for (section, value) in root {
                guard let known = EngineConfig.keys[section] else {
                    throw ConfigError(key: section, message: "unknown section [\(section)] in \(source); known: "
                        + EngineConfig.keys.keys.sorted().joined(separator: ", "))
                }
                guard case .table(let table) = value else {
                    throw ConfigError(key: section, message: "must be a table ([\(section)])")
                }
                for key in table.keys where known[key] == nil {
                    throw ConfigError(key: "\(section).\(key)", message: "unknown key in \(source); [\(section)] takes: "
                        + known.keys.sorted().joined(separator: ", "))
                }
            }
        }

        static func envName(_ section: String, _ key: String) -> String {
            "TIDEMARK_\(section.uppercased())_\(key.uppercased())"
        }

        func fileHas(_ section: String, _ key: String) -> Bool {
            if case .table(let t)? = root[section], t[key] != nil { return true }
            return false
        }

        func raw(_ section: String, _ key: String) -> (TOMLValue?, String?) {
            if let e = env[Self.envName(section, key)] { return (nil, e) }
            if case .table(let t)? = root[section] { return (t[key], nil) }
            return (nil, nil)
        }

        func wrong(_ section: String, _ key: String, _ expected: String, _ v: TOMLValue) -> ConfigError {
            ConfigError(key: "\(section).\(key)", message: "expected \(expected), found \(v.typeName)")
        }

        func string(_ s: String, _ k: String) throws -> String? {
            switch raw(s, k) {
            case (_, let e?): return e
            case (.string(let v)?, _): return v
            case (let v?, _): throw wrong(s, k, "a string", v)
            default: return nil
            }
        }

        func stringList(_ s: String, _ k: String) throws -> [String]? {
            switch raw(s, k) {
            case (_, let e?): return e.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            case (.array(let items)?, _):
                return try items.map {
                    guard case .string(let v) = $0 else { throw wrong(s, k, "a list of strings", $0) }
                    return v
                }
            case (.string(let v)?, _): return [v]
            case (let v?, _): throw wrong(s, k, "a list of strings", v)
            default: return nil
            }
        }

        func stringTable(_ s: String, _ k: String) throws -> [String: String]? {
            var out: [String: String] = [:]
            if case .table(let t)? = root[s], let v = t[k] {
                guard case .table(let props) = v else { throw wrong(s, k, "a table", v) }
                for (pk, pv) in Self.flatten(props) { out[pk] = pv }
            }
            // TIDEMARK_KAFKA_PROPERTIES="a.b=c,d=e"
            if let e = env[Self.envName(s, k)] {
                for item in e.split(separator: ",") {
                    let kv = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    guard kv.count == 2 else {
                        throw ConfigError(key: "\(s).\(k)", message: "\(Self.envName(s, k)) expects key=value[,key=value]")
                    }
                    out[kv[0]] = try references.resolve(kv[1], key: "\(s).\(k).\(kv[0])").value
                }
            }
            return out
        }

        /// Dotted TOML keys (`ssl.ca.location = "..."`) arrive nested; librdkafka wants them flat.
        static func flatten(_ t: [String: TOMLValue], prefix: String = "") -> [(String, String)] {
            t.flatMap { key, value -> [(String, String)] in
                let full = prefix.isEmpty ? key : prefix + "." + key
                switch value {
                case .table(let sub): return flatten(sub, prefix: full)
                case .string(let v): return [(full, v)]
                case .integer(let v): return [(full, String(v))]
                case .float(let v): return [(full, String(v))]
                case .boolean(let v): return [(full, v ? "true" : "false")]
                case .array(let items):
                    return [(full, items.map { if case .string(let v) = $0 { return v } else { return "\($0)" } }.joined(separator: ","))]
                }
            }
        }

        func int(_ s: String, _ k: String) throws -> Int? {
            switch raw(s, k) {
            case (_, let e?):
                guard let v = Int(e.replacingOccurrences(of: "_", with: "")) else {
                    throw ConfigError(key: "\(s).\(k)", message: "\(Self.envName(s, k))='\(e)' is not an integer")
                }
                return v
            case (.integer(let v)?, _): return Int(v)
            case (let v?, _): throw wrong(s, k, "an integer", v)
            default: return nil
            }
        }

        func bool(_ s: String, _ k: String) throws -> Bool? {
            switch raw(s, k) {
            case (_, let e?):
                switch e.lowercased() {
                case "true", "1", "yes": return true
                case "false", "0", "no": return false
                default: throw ConfigError(key: "\(s).\(k)", message: "\(Self.envName(s, k))='\(e)' is not a boolean")
                }
            case (.boolean(let v)?, _): return v
            case (let v?, _): throw wrong(s, k, "a boolean", v)
            default: return nil
            }
        }

        /// `[[schema.fields]]`: each table's keys checked, typed and named in errors as
        /// `schema.fields[i].key`.
        func schemaFields() throws -> [SchemaField] {
            guard case .table(let t)? = root["schema"], let v = t["fields"] else { return [] }
            guard case .array(let items) = v else { throw wrong("schema", "fields", "a list of tables ([[schema.fields]])", v) }
            let known = ["name", "source", "type", "timestamp_format", "required", "default"]
            return try items.enumerated().map { i, item in
                let key = "schema.fields[\(i)]"
                guard case .table(let f) = item else {
                    throw ConfigError(key: key, message: "expected a table ([[schema.fields]]), found \(item.typeName)")
                }
                for k in f.keys where !known.contains(k) {
                    throw ConfigError(key: "\(key).\(k)", message: "unknown key; a field takes: \(known.joined(separator: ", "))")
                }
                func text(_ k: String) throws -> String? {
                    switch f[k] {
                    case nil: return nil
                    case .string(let s)?: return s
                    case let other?: throw ConfigError(key: "\(key).\(k)", message: "expected a string, found \(other.typeName)")
                    }
                }
                guard let name = try text("name") else { throw ConfigError(key: "\(key).name", message: "is required") }
                var field = SchemaField(name: name, source: try text("source"))
                if let t = try text("type") {
                    guard let type = FieldType(rawValue: t) else {
                        throw ConfigError(key: "\(key).type", message: "'\(t)' is not one of string, int64, double, bool, timestamp")
                    }
                    field.type = type
                }
                if let t = try text("timestamp_format") {
                    guard let format = TimestampFormat(config: t) else {
                        throw ConfigError(key: "\(key).timestamp_format", message: "'\(t)' is not rfc3339, epoch_s, epoch_ms, "
                            + "epoch_us or a strftime pattern of %Y %m %d %e %j %H %M %S %f %b %z %T %%")
                    }
                    field.timestampFormat = format
                }
                switch f["required"] {
                case nil: break
                case .boolean(let b)?: field.required = b
                case let other?: throw ConfigError(key: "\(key).required", message: "expected a boolean, found \(other.typeName)")
                }
                switch f["default"] {
                case nil: break
                case .string(let s)?: field.defaultText = s
                case .integer(let n)?: field.defaultText = String(n)
                case .float(let d)?: field.defaultText = String(d)
                case .boolean(let b)?: field.defaultText = b ? "true" : "false"
                case let other?: throw ConfigError(key: "\(key).default", message: "expected a string, number or boolean, found \(other.typeName)")
                }
                return field
            }
        }

        func duration(_ s: String, _ k: String) throws -> Duration? {
            let text: String
            switch raw(s, k) {
            case (_, let e?): text = e
            case (.string(let v)?, _): text = v
            case (.integer(let v)?, _): text = String(v)
            case (let v?, _): throw wrong(s, k, "a duration string like \"5s\"", v)
            default: return nil
            }
            guard let d = EngineConfig.parseDuration(text) else {
                throw ConfigError(key: "\(s).\(k)", message: "'\(text)' is not a duration (e.g. 500ms, 5s, 2m, 1h)")
            }
            return d
        }

        func size(_ s: String, _ k: String) throws -> Int64? {
            let text: String
            switch raw(s, k) {
            case (_, let e?): text = e
            case (.string(let v)?, _): text = v
            case (.integer(let v)?, _): text = String(v)
            case (let v?, _): throw wrong(s, k, "a size like \"64MiB\" or bytes", v)
            default: return nil
            }
            guard let v = EngineConfig.parseSize(text) else {
                throw ConfigError(key: "\(s).\(k)", message: "'\(text)' is not a size (e.g. 64MiB, 1GiB, 1048576)")
            }
            return v
        }
    }
}

extension EngineConfig {
    /// Resolves the references in configuration strings, at load time:
    ///
    /// - `${NAME}`: the value of the environment variable NAME (`[A-Za-z_][A-Za-z0-9_]*`); set
    ///   but empty is the empty string, unset is an error.
    /// - `${file:PATH}`: the content of the file PATH (relative paths are relative to the working
    ///   directory) without one trailing newline (`\n` or `\r\n`); it must be UTF-8 text of at
    ///   most ``maxFileBytes``.
    /// - `$${`: a literal `${`. A `$` not followed by `{` is itself.
    ///
    /// Resolved text is inserted as it is, never scanned again. Errors are ``ConfigError``s that
    /// name the key and the reference (``ConfigError/reference``), never a resolved value.
    public struct References: Sendable {
        /// Where `${NAME}` looks NAME up.
        public var environment: [String: String]
        /// The largest file `${file:...}` reads (1 MiB): a secret, not a data file.
        public static let maxFileBytes = 1 << 20

        /// References resolved from `environment`.
        public init(environment: [String: String]) {
            self.environment = environment
        }

        /// `text` with its references replaced, and whether it held any. `key` (`section.key`)
        /// names the value in errors.
        public func resolve(_ text: String, key: String) throws -> (value: String, hadReference: Bool) {
            guard text.utf8.contains(UInt8(ascii: "$")) else { return (text, false) }
            let b = Array(text.utf8)
            let dollar = UInt8(ascii: "$"), open = UInt8(ascii: "{"), close = UInt8(ascii: "}")
            var out: [UInt8] = []
            out.reserveCapacity(b.count)
            var had = false
            var i = 0
            while i < b.count {
                if b[i] == dollar, i + 2 < b.count, b[i + 1] == dollar, b[i + 2] == open {
                    out += [dollar, open]
                    i += 3
                } else if b[i] == dollar, i + 1 < b.count, b[i + 1] == open {
                    guard let end = b[(i + 2)...].firstIndex(of: close) else {
                        throw ConfigError(key: key, message: "'${' at byte \(i + 1) has no closing '}' "
                            + "(a reference is ${NAME} or ${file:/path}; write $${ for a literal ${)")
                    }
                    out += Array(try value(of: String(decoding: b[(i + 2)..<end], as: UTF8.self), at: i + 1, key: key).utf8)
                    had = true
                    i = end + 1
                } else {
                    out.append(b[i])
                    i += 1
                }
            }
            return (String(decoding: out, as: UTF8.self), had)
        }

        /// Resolves every string in a TOML tree (tables and arrays included); `referenced`
        /// collects the dotted keys (`sink.secret_access_key`, `kafka.properties.sasl.password`)
        /// whose value held a reference.
        func resolve(_ root: [String: TOMLValue], referenced: inout Set<String>) throws -> [String: TOMLValue] {
            func walk(_ v: TOMLValue, _ key: String) throws -> TOMLValue {
                switch v {
                case .string(let text):
                    let (value, had) = try resolve(text, key: key)
                    if had { referenced.insert(key) }
                    return .string(value)
                case .array(let items): return .array(try items.map { try walk($0, key) })
                case .table(let t): return .table(try t.reduce(into: [:]) { $0[$1.key] = try walk($1.value, key + "." + $1.key) })
                case .integer, .float, .boolean: return v
                }
            }
            return try root.reduce(into: [:]) { $0[$1.key] = try walk($1.value, $1.key) }
        }

        /// The text one reference (`inner` is what stands between `${` and `}`) stands for.
        func value(of inner: String, at byte: Int, key: String) throws -> String {
            if inner.hasPrefix("file:") {
                let path = String(inner.dropFirst(5))
                let reference = "${file:\(path)}"
                guard !path.isEmpty else {
                    throw ConfigError(key: key, message: "${file:} names no file (e.g. ${file:/run/secrets/name})", reference: reference)
                }
                return try Self.readFile(path, reference: reference, key: key)
            }
            // An invalid name is not echoed: the text may be a literal secret that happens to
            // hold `${` (escape it as `$${`).
            guard let first = inner.utf8.first, first == UInt8(ascii: "_") || Self.isLetter(first),
                  inner.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || Self.isLetter($0) || (0x30...0x39).contains($0) }) else {
                throw ConfigError(key: key, message: "'${' at byte \(byte) does not start a reference: write ${NAME} "
                    + "(an environment variable), ${file:/path}, or $${ for a literal ${")
            }
            guard let v = environment[inner] else {
                throw ConfigError(key: key, message: "references ${\(inner)}, but the environment variable \(inner) is not set",
                                  reference: "${\(inner)}")
            }
            return v
        }

        static func isLetter(_ c: UInt8) -> Bool { (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) }

        static func readFile(_ path: String, reference: String, key: String) throws -> String {
            func fail(_ why: String) -> ConfigError {
                ConfigError(key: key, message: "cannot read \(reference): \(why)", reference: reference)
            }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw fail(String(cString: strerror(errno))) }
            defer { close(fd) }
            var data: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw fail(String(cString: strerror(errno)))
                }
                if n == 0 { break }
                data += chunk[0..<n]
                if data.count > maxFileBytes { throw fail("larger than \(maxFileBytes >> 20) MiB (a secret file is expected)") }
            }
            if data.last == 0x0A {
                data.removeLast()
                if data.last == 0x0D { data.removeLast() }
            }
            let text = String(decoding: data, as: UTF8.self)
            guard text.utf8.elementsEqual(data) else { throw fail("not UTF-8 text") }
            return text
        }
    }
}

/// A configuration problem, naming the key (`section.key`) when there is one.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    /// The key at fault, `section.key` (`kafka.properties.<name>` for a librdkafka property).
    public var key: String?
    /// What is wrong; never a value that came from a reference.
    public var message: String
    /// The `${...}` reference that could not be resolved, when that is the problem.
    public var reference: String?

    /// An error about `key` (nil: the file as a whole).
    public init(key: String?, message: String, reference: String? = nil) {
        self.key = key
        self.message = message
        self.reference = reference
    }

    public var description: String {
        guard let key else { return "config: \(message)" }
        // The override of `kafka.properties.<name>` is TIDEMARK_KAFKA_PROPERTIES: the variable
        // is named by the first two parts.
        let parts = key.split(separator: ".").map(String.init)
        let env = parts.count < 2 ? "" : " (env \(EngineConfig.Reader.envName(parts[0], parts[1])))"
        return "config: \(key)\(env): \(message)"
    }
}
