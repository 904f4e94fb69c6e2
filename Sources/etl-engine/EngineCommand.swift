import ArgumentParser
import EngineHTTP
import Foundation
import KafkaSource
import Logging
import ObjectStore
import Pipeline
import TidemarkConfig
import TidemarkLogging

#if canImport(Glibc)
import Glibc
#endif

/// `etl-engine`: runs the pipeline (a thin shell over `Pipeline.Engine`).
@main
struct EngineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "etl-engine",
        abstract: "Move log records from Kafka to S3 as Parquet, exactly once.",
        discussion: """
            Consumes the configured topics with manual offsets, parses each record (text lines \
            '<serial> <ISO-8601 time> <LEVEL> <message>' or JSON lines) into typed columns, writes \
            each micro-batch as a Parquet file in the staging directory, records it in the SQLite \
            manifest, uploads it with a conditional create under a deterministic key, and only \
            then commits the Kafka offsets. Records that do not parse go to dead-letter objects \
            under <prefix>/_rejected/ with their reason. See docs/protocol.md.

            Runs until SIGTERM or SIGINT: open batches are finished and committed, then it exits \
            0. A second signal exits at once (safe: the next start, or etl-recover, finishes the \
            work from the manifest).

            Every config key can be overridden by TIDEMARK_<SECTION>_<KEY>, e.g. \
            TIDEMARK_KAFKA_BROKERS=127.0.0.1:9092 or TIDEMARK_SINK_URL=file:///tmp/lake. S3 \
            credentials come from the AWS chain, first match wins: [sink] access_key_id; \
            AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN; web identity \
            (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN); the profile (AWS_PROFILE, else default) \
            in AWS_CONFIG_FILE/AWS_SHARED_CREDENTIALS_FILE (keys, role_arn + source_profile or \
            web_identity_token_file, credential_process); ECS container credentials \
            (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI); EC2 IMDSv2 (off with \
            AWS_EC2_METADATA_DISABLED=true). Temporary credentials are refreshed 5 minutes before \
            they expire. [sink] region defaults to AWS_REGION, AWS_DEFAULT_REGION, the profile's \
            region, then us-east-1. --check names the credential provider (never a secret). At \
            start the engine probes that S3 honours If-None-Match: * ([sink] conditional_writes = \
            "required" (default) refuses to start without it, "auto" warns and falls back to HEAD \
            before each commit, "off" skips the probe). \
            TIDEMARK_FAILPOINTS=name[@N] arms crash points for \
            testing (docs/protocol.md).

            Secrets: any string value (in the file or in a TIDEMARK_* override) may be or hold \
            ${NAME}, replaced by the environment variable NAME, or ${file:/path}, replaced by \
            the file's content without its trailing newline, e.g. \
            [kafka.properties] "sasl.password" = "${file:/run/secrets/kafka}" or [sink] \
            secret_access_key = "${AWS_SECRET}". $${ is a literal ${. An unset variable or an \
            unreadable file stops the start (exit 2) naming the key and the reference, never a \
            value.

            Logs go to stderr: [engine] log_format = "text" (default) or "json", one JSON object \
            per line with ts (RFC 3339 UTC, milliseconds), level, logger, msg, source and every \
            metadata key (a key that collides with one of those is written as meta.<key>). With \
            "json" the start-up and check failures printed after the configuration is loaded are \
            JSON lines too; configuration errors are plain text.

            Memory is bounded by settings, not data volume (docs/operations.md, Memory): [batch] \
            memory_budget (default 64MiB) for the open batches, and librdkafka's prefetch, set to \
            \(Engine.librdkafkaDefaults.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")) \
            unless [kafka.properties] gives them (fewer queued records: less memory, and below \
            about a second's worth, less throughput; fetch.wait.max.ms below librdkafka's 500 \
            keeps a Fetch the broker holds for idle partitions from delaying the others). glibc's mmap threshold is fixed at 256 KiB unless \
            GLIBC_TUNABLES sets mmap_threshold.

            Example config (tidemark.toml):
              [kafka]
              brokers = "127.0.0.1:9092"
              topics = ["logs"]
              group_id = "tidemark"
              [sink]
              url = "s3://my-bucket/lake/logs"    # or "file:///var/lib/lake"
              [staging]
              dir = "/var/lib/tidemark/staging"
              manifest = "/var/lib/tidemark/manifest.sqlite"
              [manifest]
              retention = "7d"                    # final batch rows kept; 0 = forever
              [batch]
              max_records = 500000
              max_bytes = "128MiB"
              max_age = "60s"

            Input formats ([input] format): "seed" (default, the same as "auto": the generator's \
            text line, or the seed JSON when the line starts with "{"; "text" is the text line \
            only), "json" (with [[schema.fields]]: a mapping of \
            JSON paths such as "@timestamp" or "http.status" to typed columns; without: the seed \
            JSON), "regex" ([input] pattern with named groups, e.g. nginx access logs) and "raw" \
            (the whole value as one string column). Records that do not map go to the dead-letter \
            store with a reason naming the field. See tidemark.example.toml and docs/operations.md.

            Static group membership: [kafka] instance_id sets librdkafka's group.instance.id, so a \
            restart after kill -9 takes its old place without waiting for the session timeout. \
            By default it is derived from the host name and the staging directory (stable across \
            restarts, distinct per deployment); instance_id = "" turns it off.

            The manifest keeps each final batch row for [manifest] retention (default 7d; 0 = \
            forever), then the engine prunes it every min(retention, 10 min), at most 5,000 rows a \
            pass; the unfinished rows and each partition's newest committed row are always kept, \
            and etl-audit counts objects below a partition's pruned horizon as before_horizon \
            (docs/protocol.md, Manifest retention).

            Records deleted by retention before they were delivered (committed offset below the \
            log start offset) are recorded in the manifest and logged as an error naming the \
            topic, partition and range; [kafka] on_data_loss = "fail" (default) exits 4 before \
            committing past them, "report" goes on. etl-audit reports them.

            Exit codes: 0 stopped cleanly (or --until-idle drained everything assigned); 1 runtime \
            failure; 2 configuration or start-up error (the message names the key, file or \
            address at fault); 3 --until-idle and no partition was assigned within \
            --assignment-timeout; 4 records lost to retention and on_data_loss = "fail"; 5 the \
            object store refused a step permanently (access denied, no such bucket, bad \
            credentials, KMS): the message says what to check. Transient failures (5xx, \
            throttling, timeouts) are retried with exponential backoff and jitter (at most 30 s \
            apart), counted in tidemark_retries_total.
            """,
        version: tidemarkVersion
    )

    @Option(name: .long, help: ArgumentHelp("The TOML configuration file.", valueName: "path"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp(
        "Exit 0 once no record arrived for this long and everything read is committed (e.g. 5s). In this mode a partition at its end, with no record read, for 250 ms seals its open batch at once.",
        valueName: "duration"))
    var untilIdle: String?

    @Option(name: .long, help: ArgumentHelp(
        "With --until-idle: how long to wait for the group to assign a partition before exiting 3 (default 5m). Idle time counts only while partitions are assigned.",
        valueName: "duration"))
    var assignmentTimeout: String?

    @Flag(name: .long, help: "Validate the configuration and connectivity (manifest, object store, Kafka), then exit.")
    var check = false

    @Flag(name: .long, help: "Start even though the configured output schema changes incompatibly from the manifest's current one (removed, renamed or retyped fields, optional->required, another format); see docs/operations.md \"Schema changes\".")
    var acceptSchemaChange = false

    @Flag(name: .long, help: "Print the failpoint names TIDEMARK_FAILPOINTS accepts, one per line in commit-protocol order, then exit 0 (no configuration needed).")
    var listFailpoints = false

    @Option(name: .long, help: ArgumentHelp("Override [engine] log_level (trace, debug, info, warning, error).", valueName: "level"))
    var logLevel: String?

    @Option(name: .long, help: ArgumentHelp(
        "Serve HTTP on [engine] metrics_host (default 127.0.0.1) port PORT: /metrics (Prometheus text), /healthz (200 while the poll loop runs, else 503), /ready (200 when partitions are assigned, the object store answers and no fatal error; else 503 naming why). Overrides [engine] metrics_port; 0 = off.",
        valueName: "port"))
    var metricsPort: Int?

    func run() throws {
        if listFailpoints {
            print(Failpoint.allCases.map(\.rawValue).joined(separator: "\n"))
            return
        }
        var cfg: EngineConfig
        do {
            cfg = try EngineConfig.load(path: config)
            if let level = logLevel { cfg.engine.logLevel = level }
            if let port = metricsPort { cfg.engine.metricsPort = port }
            try cfg.validate()
        } catch {
            FileHandle.standardError.write(Data("etl-engine: \(error)\n".utf8))
            throw ExitCode(2)
        }
        var idle: Duration?
        if let untilIdle {
            guard let d = EngineConfig.parseDuration(untilIdle) else {
                FileHandle.standardError.write(Data("etl-engine: --until-idle '\(untilIdle)' is not a duration (e.g. 5s)\n".utf8))
                throw ExitCode(2)
            }
            idle = d
        }
        var assignmentWait: Duration = .seconds(300)
        if let assignmentTimeout {
            guard let d = EngineConfig.parseDuration(assignmentTimeout) else {
                FileHandle.standardError.write(Data("etl-engine: --assignment-timeout '\(assignmentTimeout)' is not a duration (e.g. 5m)\n".utf8))
                throw ExitCode(2)
            }
            assignmentWait = d
        }
        let level = Logger.Level(rawValue: cfg.engine.logLevel) ?? .info
        let format = LogFormat(rawValue: cfg.engine.logFormat) ?? .text
        LoggingSystem.bootstrap { label in format.makeHandler(label: label, level: level) }
        let logger = Logger(label: "tidemark.engine")
        // A failure after start-up: a log line in json format, the plain line otherwise.
        func failure(_ text: String) {
            if format == .json { logger.critical("\(text)") } else { FileHandle.standardError.write(Data("etl-engine: \(text)\n".utf8)) }
        }
        for w in cfg.warnings { logger.warning("\(w)") }

        // Block the shutdown signals in every thread; a dedicated thread receives them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_BLOCK, &set, nil)

        HeapTuning.limitHeapRetention()
        let engine: Engine
        do {
            engine = try Engine(config: cfg, logger: logger, acceptSchemaChange: acceptSchemaChange)
        } catch {
            failure("cannot start: \(error)")
            throw ExitCode(2)
        }
        if check {
            do {
                for line in try engine.check() { print("etl-engine: \(line)") }
                print("etl-engine: configuration OK; manifest, object store and Kafka reachable")
                return
            } catch {
                failure("check failed: \(error)")
                throw ExitCode(2)
            }
        }
        let blocked = set
        let signals = Thread {
            var s = blocked
            var sig: Int32 = 0
            sigwait(&s, &sig)
            logger.notice("signal \(sig): finishing open batches (send it again to exit at once)")
            engine.requestStop()
            sigwait(&s, &sig)
            FileHandle.standardError.write(Data("etl-engine: second signal, exiting now\n".utf8))
            _exit(130)
        }
        signals.start()
        // The HTTP endpoints run on their own event loop thread and stop when the engine has
        // shut down (after its last commit), whatever way run() ends.
        var http: EngineHTTPServer?
        if cfg.engine.metricsPort > 0 {
            do {
                http = try EngineHTTPServer.start(host: cfg.engine.metricsHost, port: cfg.engine.metricsPort,
                                                  metrics: engine.metrics, logger: logger)
            } catch {
                failure("cannot start: \(error) ([engine] metrics_host, metrics_port / --metrics-port)")
                throw ExitCode(2)
            }
            logger.info("metrics at http://\(cfg.engine.metricsHost):\(http!.port)/metrics (and /healthz, /ready)")
        }
        defer { http?.stop() }
        do {
            let code = try engine.run(untilIdle: idle, assignmentTimeout: assignmentWait)
            if code != 0 { throw ExitCode(code) }
        } catch let e as ExitCode {
            throw e
        } catch {
            logger.critical("engine failed: \(error)")
            throw ExitCode(1)
        }
    }
}
