import Foundation

/// The engine's configuration: a TOML file (`--config tidemark.toml`), every key overridable by
/// an environment variable `TIDEMARK_<SECTION>_<KEY>` (upper case, e.g. `TIDEMARK_KAFKA_BROKERS`,
/// `TIDEMARK_BATCH_MAX_AGE`). Validated completely at start: an unknown key, a wrong type or an
/// out-of-range value is a ``ConfigError`` naming the key. docs/operations.md lists every key.
///
/// This module (TidemarkConfig) reads, resolves and checks the file on its own; the checks that
/// need the record parser or the key layout are Pipeline's, passed in as ``Checks``
/// (``validate(_:)``, ``load(path:environment:checks:)``).
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

        /// Kafka's rule for topic names (`[a-zA-Z0-9._-]{1,249}`, not "." or ".."). A valid topic
        /// contains no `/`, so a key can never leave the prefix.
        public static func isValidTopic(_ topic: String) -> Bool {
            guard !topic.isEmpty, topic.utf8.count <= 249, topic != ".", topic != ".." else { return false }
            return topic.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                    || c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
            }
        }
    }

    public struct Sink: Sendable, Equatable {
        /// `[sink] url`: `s3://bucket/prefix` or `file:///dir`.
        public var url: String = ""
        /// `[sink] endpoint`: custom S3 endpoint (MinIO, Ceph, R2, moto), e.g. `http://127.0.0.1:9000`.
        public var endpoint: String?
        /// `[sink] region`: the S3 signing region. Nil when not set: then `AWS_REGION`, else
        /// `AWS_DEFAULT_REGION`, else the AWS profile's `region`, else `us-east-1`
        /// (Pipeline's `Engine.s3Configuration(_:environment:)`).
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
        /// (Pipeline's `PathTemplate`), e.g. `{topic}/dt={event_date}/hour={event_hour}`; nil: the
        /// default `topic=<t>/dt=<kafka date>/partition=<p>` layout.
        public var path: String?
        /// `[sink] time_zone`: the zone `path` renders dates and hours in (Pipeline's `PathTimeZone`).
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
        /// to their staged files early (Parquet's `ParquetMemoryBudget`), so the budget holds however
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
        /// `[engine] encoder_threads`: threads that parse and encode records at once, each for its
        /// own share of the assigned partitions; 0 (default) = one per available core, at most 4.
        public var encoderThreads: Int = 0
    }

    public struct ManifestOptions: Sendable, Equatable {
        /// `[manifest] retention`: how long a final (COMMITTED, ABANDONED, SUPERSEDED) batch row
        /// stays in the manifest before the engine prunes it (docs/protocol.md, "Manifest
        /// retention"); 0 keeps every row. Default 7 days: a week of history for audits
        /// (`etl-audit --since`), incident forensics (the event log) and the staging janitor,
        /// while the manifest stays bounded (docs/scaling.md).
        public var retention: Duration = .seconds(7 * 86_400)

        /// How often the engine prunes: `min(retention, 10 min)`, at least 1 s; nil when off.
        public var pruneInterval: Duration? {
            retention == .zero ? nil : max(.seconds(1), min(retention, .seconds(600)))
        }
    }

    public var kafka = Kafka()
    public var sink = Sink()
    public var staging = Staging()
    /// `[manifest]`.
    public var manifest = ManifestOptions()
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
        "manifest": ["retention": "duration final batch rows are kept (0 = forever)"],
        "batch": ["max_records": "int", "max_bytes": "size", "max_age": "duration", "max_in_flight": "int", "memory_budget": "size"],
        "input": ["format": "seed|json|regex|raw (also auto = seed, text)", "max_line_bytes": "size",
                  "pattern": "regex with named groups (format = regex)"],
        "schema": ["fields": "[[schema.fields]] list: name, source, type, timestamp_format, required, default",
                   "unmapped": "attributes|drop", "include_key": "bool", "include_headers": "bool",
                   "event_time_field": "name of a timestamp field"],
        "engine": ["status_interval": "duration", "metrics_port": "int", "metrics_host": "address",
                   "log_level": "level", "log_format": "text|json", "orphan_upload_grace": "duration",
                   "encoder_threads": "int (0 = one per core, at most 4)"],
    ]
}
