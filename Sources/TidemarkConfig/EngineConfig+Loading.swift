import Foundation

extension EngineConfig {
    /// Loads `path` (nil: defaults only), applies environment overrides, validates with
    /// `checks` (``validate(_:)``). Executables use Pipeline's `load(path:environment:)`, which
    /// passes `.pipeline`; there is deliberately no default here, so a caller cannot skip
    /// Pipeline's checks without saying so (`.configOnly`).
    public static func load(path: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
                            checks: Checks) throws -> EngineConfig {
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
        return try from(root: root, environment: environment, source: path ?? "(defaults)", checks: checks)
    }

    static func from(root: [String: TOMLValue], environment: [String: String], source: String, checks: Checks) throws -> EngineConfig {
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
        c.manifest.retention = try r.duration("manifest", "retention") ?? c.manifest.retention

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
        c.engine.encoderThreads = try r.int("engine", "encoder_threads") ?? c.engine.encoderThreads

        try c.validate(checks)
        return c
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
}
