import ArgumentParser
import Foundation
import KafkaSource
import Logging
import Manifest
import ObjectStore
import Pipeline
import TidemarkConfig
import TidemarkLogging

#if canImport(Glibc)
import Glibc
#endif

/// `etl-audit`: proves the sink matches the manifest and Kafka (a thin shell over `Pipeline.Auditor`).
@main
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "etl-audit",
        abstract: "Check that S3 matches the manifest and that every offset is delivered exactly once.",
        discussion: """
            Reads the manifest (without locking it: safe beside a running etl-engine), lists the \
            objects under the sink prefix (sizes and ETags come with the listing; only objects the \
            manifest does not know are HEADed), and reads the consumer group's committed offsets. \
            It reports, with the key, partition and offsets at fault:
              missing_object, size_mismatch, etag_mismatch     a delivered batch whose object is absent, or was overwritten
              unknown_object                                   an object the manifest does not know (another writer, manual upload)
              gap, overlap                                     offsets in no batch / in two batches (also across objects)
              offset_behind, offset_ahead                      Kafka's committed offset disagrees with the chain's end + 1
              rejected_missing                                 a dead-letter object the manifest records is absent
              orphan_rejected                                  a dead-letter object no delivered batch accounts for \
            (its records are also in the winner's; etl-recover deletes it)
              chain_start                                      offsets below Kafka's committed offset in no object, \
            from where this manifest's first batch of the partition began (committed, never delivered)
              lost_to_retention                                offsets deleted by retention before delivery, as the \
            engine recorded them (never deliverable)
            With --deep it also HEADs every object and downloads it (8 MiB ranges, parallel, \
            bounded memory), recomputes its SHA-256 and reads its Parquet footer:
              sha256_mismatch, rejected_count_mismatch         object metadata disagrees with the manifest
              content_sha256_mismatch, row_count_mismatch, offset_stats_mismatch, unreadable_parquet

            With --fleet it needs no manifest: it audits the whole consumer group (every engine of \
            the fleet, each with its own manifest) from the store alone. It lists the sink prefix, \
            HEADs every .parquet object (parallel, --concurrency) to rebuild each partition's chain \
            from the objects' tidemark metadata, and checks it against the group's committed offsets \
            and the partitions' log start offsets (the config still gives the sink and Kafka):
              overlap                                          offsets in two objects
              gap                                              offsets in no object that Kafka still holds (between objects, \
            before the first object from the log start, after the last one up to the committed offset)
              lost_to_retention                                offsets in no object below the log start offset: never deliverable
              orphan_rejected, rejected_missing                dead-letter objects without / missing for their batch
              stale_upload                                     multipart uploads older than [engine] orphan_upload_grace
              bad_metadata, unknown_object                     objects whose metadata is unusable / that are not the pipeline's

            Exit codes: 0 consistent; 1 discrepancies found; 2 could not run (bad option value, \
            config, manifest missing, store or Kafka unreachable); 64 unknown command-line flag.

            Logs (warnings and errors) go to stderr in the engine configuration's [engine] \
            log_format: "text" (default) or "json" (one JSON object per line: ts, level, logger, \
            msg, source, metadata); with "json" the "cannot run" failure is a JSON line too. \
            ${NAME} and ${file:/path} references in the configuration are resolved as for \
            etl-engine.
            """,
        version: tidemarkVersion
    )

    @Option(name: .long, help: ArgumentHelp("The engine's TOML configuration file.", valueName: "path"))
    var config: String?

    @Flag(name: .long, help: "Download every object: recompute SHA-256 and check the Parquet footer.")
    var deep = false

    @Option(name: .long, help: ArgumentHelp("Only batches updated within this long (e.g. 24h).", valueName: "duration"))
    var since: String?

    @Option(name: .long, help: ArgumentHelp("Only one partition, as TOPIC:PARTITION.", valueName: "topic:partition"))
    var partition: String?

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    @Flag(name: .long, help: "Audit the whole group from object metadata, without a manifest (see below).")
    var fleet = false

    @Option(name: .long, help: ArgumentHelp("Parallel requests (HEADs with --fleet, downloads with --deep).", valueName: "n"))
    var concurrency: Int?

    func run() throws {
        let cfg: EngineConfig
        var options = AuditOptions()
        do {
            // Checked here rather than in validate(): a bad argument value is "could not run" (2),
            // not ArgumentParser's usage exit code (64, kept for unknown flags).
            if since != nil && partition != nil { throw ValidationError("--since and --partition cannot be combined") }
            if fleet && (deep || since != nil) { throw ValidationError("--fleet cannot be combined with --deep or --since") }
            if let concurrency, !(1...256).contains(concurrency) { throw ValidationError("--concurrency must be 1...256") }
            cfg = try EngineConfig.load(path: config)
            options.deep = deep
            if let concurrency { options.concurrency = concurrency }
            if let since {
                guard let d = EngineConfig.parseDuration(since) else { throw ValidationError("--since '\(since)' is not a duration") }
                options.since = d
            }
            if let partition {
                let parts = partition.split(separator: ":")
                guard parts.count == 2, let p = Int32(parts[1]) else { throw ValidationError("--partition expects TOPIC:PARTITION, e.g. logs:0") }
                options.partition = TopicPartition(topic: String(parts[0]), partition: p)
            }
        } catch {
            FileHandle.standardError.write(Data("etl-audit: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let format = LogFormat(rawValue: cfg.engine.logFormat) ?? .text
        LoggingSystem.bootstrap { label in format.makeHandler(label: label, level: .warning) }
        let logger = Logger(label: "tidemark.audit")
        // A failure after start-up: a log line in json format, the plain line otherwise.
        func failure(_ text: String) {
            if format == .json { logger.critical("\(text)") } else { FileHandle.standardError.write(Data("etl-audit: \(text)\n".utf8)) }
        }
        let report: AuditReport
        if fleet {
            report = try runFleet(cfg, only: options.partition, logger: logger)
        } else {
        do {
            let manifest = try Manifest.openReadOnly(path: cfg.staging.manifest)
            let location = try ObjectStoreLocation(parsing: cfg.sink.url)
            let store = try makeObjectStore(location: location, s3: Engine.s3Configuration(cfg), logger: logger)
            let tps = Set(try manifest.batches().map { TopicPartition(topic: $0.topic, partition: $0.partition) })
                .union(try manifest.horizons().map { TopicPartition(topic: $0.topic, partition: $0.partition) })
                .filter { options.partition == nil || $0 == options.partition }
            var committed: [TopicPartition: Int64] = [:]
            if !tps.isEmpty {
                let kc = KafkaConsumerConfig(bootstrapServers: cfg.kafka.brokers, groupID: cfg.kafka.groupID,
                                             topics: cfg.kafka.topics, properties: cfg.kafka.properties)
                let consumer = try KafkaConsumer(config: kc, rebalanceHandler: nil, logger: logger)
                committed = try consumer.committed(Array(tps), timeout: .seconds(30)).mapValues(\.offset)
                try? consumer.close(timeout: .seconds(5))
            }
            let tty = isatty(2) == 1 && !json
            if tty {
                options.progress = { done, total, bytes in
                    let pct = total == 0 ? 100 : done * 100 / total
                    let mb = Double(bytes) / 1_048_576
                    FileHandle.standardError.write(Data("\r  checking objects \(done)/\(total) (\(pct)%) \(String(format: "%.1f", mb)) MiB   ".utf8))
                }
            }
            report = try Auditor(manifest: manifest, store: store, layout: try cfg.keyLayout(prefix: location.prefix),
                                 committed: committed, options: options).run()
            if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        } catch {
            failure("cannot run: \(error)")
            throw ExitCode(2)
        }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            var doc = try JSONSerialization.jsonObject(with: encoder.encode(report)) as? [String: Any] ?? [:]
            doc["counts"] = report.counts
            doc["consistent"] = report.isConsistent
            if fleet { doc["mode"] = "fleet" }
            let data = try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(Self.render(report, fleet: fleet))
        }
        if !report.isConsistent { throw ExitCode(1) }
    }

    /// `--fleet`: the store and Kafka only (Pipeline.FleetAuditor); exit 2 when either is unreachable.
    func runFleet(_ cfg: EngineConfig, only: TopicPartition?, logger: Logger) throws -> AuditReport {
        do {
            let location = try ObjectStoreLocation(parsing: cfg.sink.url)
            let store = try makeObjectStore(location: location, s3: Engine.s3Configuration(cfg), logger: logger)
            var options = FleetAuditOptions()
            options.partition = only
            options.orphanUploadGrace = cfg.engine.orphanUploadGrace
            if let concurrency { options.concurrency = concurrency }
            let tty = isatty(2) == 1 && !json
            if tty {
                options.progress = { listed, headed in
                    FileHandle.standardError.write(Data("\r  listed \(listed) objects, HEADed \(headed) .parquet objects   ".utf8))
                }
            }
            let report = try FleetAuditor(store: store, layout: try cfg.keyLayout(prefix: location.prefix), options: options).run { found in
                if tty { FileHandle.standardError.write(Data("\r\u{1B}[K  reading Kafka offsets of \(found.count)+ partitions".utf8)) }
                return try FleetKafkaOffsets.read(cfg, partitions: found, only: only, logger: logger)
            }
            if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            return report
        } catch {
            FileHandle.standardError.write(Data("etl-audit: cannot run: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }

    static func render(_ r: AuditReport, fleet: Bool = false) -> String {
        var lines = [
            "etl-audit (\(fleet ? "fleet" : r.deep ? "deep" : "shallow"))",
            "  partitions  \(r.partitions)",
            "  batches     \(r.batches)",
            "  objects     \(r.objects)",
            "  bytes       \(r.bytes)",
            "  records     \(r.records) in Parquet, \(r.rejectedRecords) in dead-letter objects",
        ]
        if r.beforeHorizon > 0 {
            lines.append("  before horizon \(r.beforeHorizon) objects at offsets whose manifest rows were pruned ([manifest] retention): judged by the lake (--deep: against their own metadata; --fleet: the whole chain)")
        }
        if r.isConsistent {
            lines.append("  result      CONSISTENT: no discrepancies")
        } else {
            lines.append("  result      \(r.discrepancies.count) DISCREPANCIES")
            for (kind, n) in r.counts.sorted(by: { $0.key < $1.key }) { lines.append("    \(kind): \(n)") }
            lines.append("")
            for x in r.discrepancies {
                var where_ = ""
                if let t = x.topic, let p = x.partition { where_ = " \(t)[\(p)]" }
                if let s = x.startOffset, let e = x.endOffset { where_ += " \(s)...\(e)" }
                lines.append("  \(x.kind.rawValue)\(where_)\(x.key.map { " \($0)" } ?? ""): \(x.detail)")
            }
        }
        return lines.joined(separator: "\n")
    }
}
