import ArgumentParser
import Foundation
import KafkaSource
import Logging
import Manifest
import ObjectStore
import Pipeline
import TidemarkConfig
import TidemarkLogging

/// `etl-recover`: reconciles the manifest, staging directory, multipart uploads and Kafka
/// offsets after a failure (a thin shell over `Pipeline.Reconciler`).
@main
struct RecoverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "etl-recover",
        abstract: "Bring a crashed pipeline back to a consistent state, and say exactly what was done.",
        discussion: """
            Run it with the engine's configuration while the engine is stopped (it refuses to run \
            while an engine holds the manifest lock, and names that process). For every manifest \
            batch that is not final it runs the engine's own commit protocol:
              STAGED     re-hash the staged file; upload it (or ABANDON and quarantine it when missing
                         or corrupt, so its records are read again from Kafka)
              UPLOADING  ListParts; keep parts whose checksum/ETag match the manifest, upload the rest,
                         complete; a vanished upload is checked against the object (HEAD) first
              UPLOADED   commit end+1 to Kafka if the group allows (it does while no engine is a member)
            It also aborts multipart uploads under the sink prefix that no batch owns and that are \
            older than [engine] orphan_upload_grace (default 1h), quarantines staged files no \
            manifest row refers to, deletes leftovers of committed batches, advances Kafka offsets \
            that are behind the manifest, and reports offsets that are ahead of it (gap risk).
            Every action is logged in the manifest's event table. A second run right after a \
            successful one does nothing and says so.

            Exit codes: 0 consistent (or made consistent); 1 needs attention (reasons printed); \
            2 could not run (config, lock held by a live engine, store or Kafka unreachable).

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

    @Flag(name: .long, help: "Compute and print the plan; change nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    @Flag(name: .long, help: "Never prompt. etl-recover does not prompt today (it deletes no data: it moves, uploads, aborts orphan uploads); the flag keeps scripts valid.")
    var yes = false

    @Flag(name: .long, help: "Leave STAGED batches for the engine to upload.")
    var noUpload = false

    func run() throws {
        let cfg: EngineConfig
        do {
            cfg = try EngineConfig.load(path: config)
        } catch {
            FileHandle.standardError.write(Data("etl-recover: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let format = LogFormat(rawValue: cfg.engine.logFormat) ?? .text
        LoggingSystem.bootstrap { label in format.makeHandler(label: label, level: .warning) }
        let logger = Logger(label: "tidemark.recover")
        // A failure after start-up: a log line in json format, the plain line otherwise.
        func failure(_ text: String) {
            if format == .json { logger.critical("\(text)") } else { FileHandle.standardError.write(Data("etl-recover: \(text)\n".utf8)) }
        }
        let report: RecoveryReport
        do {
            let manifest: Manifest
            do {
                manifest = dryRun ? try Manifest.openReadOnly(path: cfg.staging.manifest) : try Manifest.open(path: cfg.staging.manifest)
            }
            if dryRun, let pid = Manifest.lockHolder(path: cfg.staging.manifest) {
                throw ManifestError.locked(path: cfg.staging.manifest, holderPID: pid)
            }
            defer { manifest.close() }
            let location = try ObjectStoreLocation(parsing: cfg.sink.url)
            let store = try makeObjectStore(location: location, s3: Engine.s3Configuration(cfg), logger: logger)
            let kc = KafkaConsumerConfig(bootstrapServers: cfg.kafka.brokers, groupID: cfg.kafka.groupID,
                                         topics: cfg.kafka.topics, properties: cfg.kafka.properties)
            let consumer = try KafkaConsumer(config: kc, rebalanceHandler: nil, logger: logger)
            defer { try? consumer.close(timeout: .seconds(5)) }
            let tps = Set(try manifest.batches().map { TopicPartition(topic: $0.topic, partition: $0.partition) })
            let committed = tps.isEmpty ? [:] : try consumer.committed(Array(tps), timeout: .seconds(30)).mapValues(\.offset)
            let grace = Double(cfg.engine.orphanUploadGrace.components.seconds)
            report = try Reconciler(manifest: manifest, store: store, layout: try cfg.keyLayout(prefix: location.prefix),
                                    stagingDirectory: cfg.staging.dir, offsets: DirectOffsets(consumer: consumer),
                                    committed: committed, orphanUploadGrace: grace, partSize: Int64(cfg.sink.partSize),
                                    concurrency: cfg.sink.uploadConcurrency, logger: logger)
                .run(dryRun: dryRun, upload: !noUpload)
        } catch let e as ManifestError {
            failure("cannot run: \(e)")
            throw ExitCode(2)
        } catch {
            failure("cannot run: \(error)")
            throw ExitCode(2)
        }
        if json {
            var doc = (try JSONSerialization.jsonObject(with: JSONEncoder().encode(report))) as? [String: Any] ?? [:]
            doc["consistent"] = report.alreadyConsistent
            doc["needs_attention"] = report.needsAttention
            print(String(decoding: try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
        } else {
            print(Self.render(report))
        }
        if report.needsAttention { throw ExitCode(1) }
    }

    static func render(_ r: RecoveryReport) -> String {
        var lines = ["etl-recover\(r.dryRun ? " --dry-run (nothing changed)" : "")"]
        if r.actions.isEmpty {
            lines.append("  nothing to do: manifest, staging directory, uploads and Kafka offsets are consistent")
            return lines.joined(separator: "\n")
        }
        func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: max(n, s.count), withPad: " ", startingAt: 0) }
        lines.append("  \(pad("action", 22)) \(pad("batch", 6)) \(pad("partition offsets", 22)) \(pad("state", 24)) detail")
        for a in r.actions {
            let batch = a.batchID.map(String.init) ?? "-"
            var range = "-"
            if let t = a.topic, let p = a.partition {
                range = "\(t)[\(p)]" + (a.startOffset.map { s in " \(s)...\(a.endOffset.map(String.init) ?? "")" } ?? "")
            }
            let state = a.stateBefore.map { "\($0) -> \(a.stateAfter ?? (r.dryRun ? "(planned)" : "?"))" } ?? "-"
            lines.append("  \(pad(a.kind.rawValue, 22)) \(pad(batch, 6)) \(pad(range, 22)) \(pad(state, 24)) \(a.detail)\(a.key.map { " [\($0)]" } ?? "")")
        }
        let counts = Dictionary(grouping: r.actions, by: \.kind.rawValue).mapValues(\.count)
        lines.append("  summary: " + counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                     + (r.needsAttention ? "  (NEEDS ATTENTION)" : "")
                     + (r.alreadyConsistent ? "  — nothing changed" : ""))
        return lines.joined(separator: "\n")
    }
}
