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

/// The engine's exit codes (docs/operations.md). ArgumentParser's 64 stays for unknown flags.
public enum EngineExit {
    /// Stopped cleanly, or `--until-idle` drained everything assigned.
    public static let ok: Int32 = 0
    /// A runtime failure (the message names what failed).
    public static let failure: Int32 = 1
    /// A configuration or start-up error.
    public static let configuration: Int32 = 2
    /// `--until-idle`: no partition was assigned within `--assignment-timeout`.
    public static let noAssignment: Int32 = 3
    /// Records were deleted by retention before they were delivered and `[kafka] on_data_loss`
    /// is `fail`.
    public static let dataLoss: Int32 = 4
    /// The object store refused a step permanently (access denied, no such bucket, bad
    /// credentials, KMS refusal): retrying cannot fix it.
    public static let storeRefused: Int32 = 5
}

/// The running pipeline: Kafka → parse → Parquet staging → manifest → object store → offset
/// commit, as docs/protocol.md describes.
///
/// Threads: ``run(untilIdle:)`` is the poll thread; it alone uses the Kafka consumer (polling,
/// rebalance callbacks, seeks, pauses, and the offset reads/commits that upload workers request
/// through ``PollThreadOffsets``). Upload workers (``UploadScheduler``) drive sealed batches.
public final class Engine: @unchecked Sendable {
    // @unchecked Sendable: the mutable partition table and the consumer are touched only by the
    // poll thread; other threads reach the engine only through `requestStop()` (an atomic), the
    // offset channel (a mutex + semaphores) and `events` (a mutex).
    public let config: EngineConfig
    let logger: Logger
    let manifest: Manifest
    let store: any ObjectStore
    let layout: KeyLayout
    /// The configured input format and field mapping; one schema for the whole process.
    let parser: RecordParser
    let parquetOptions: ParquetWriterOptions
    /// The encoder shards (``EncoderShard``, `[engine] encoder_threads`): each owns the page
    /// scratch, ZSTD context and compression thread its partitions' open batches share, and an
    /// equal part of `[batch] memory_budget`. Each poll's records are handed to them by
    /// partition and handled on their threads (``dispatchHeld()``); pages are
    /// compressed on each shard's compression thread. The budget holds for all open batches
    /// together: when a shard's batches buffer more than its part, its largest row groups are
    /// written to their staged files early (the batches stay open, so batch boundaries and the
    /// commit protocol do not change).
    let shards: [EncoderShard]
    /// The current poll's records, held (not copied) until they are handed to the shards.
    let held = HeldMessages()
    /// Free slots for polls handed to the shards (``pollsInFlight``).
    let pollSlots = DispatchSemaphore(value: Engine.pollsInFlight)
    /// An error from handling records inside a rebalance callback, thrown after the poll.
    var heldError: (any Error)?
    /// When the cut checks were last posted to the shards.
    var lastCutsPosted = ContinuousClock.now
    let offsets = PollThreadOffsets()
    let executor: BatchExecutor
    let scheduler: UploadScheduler
    let stopRequested = Atomic<Bool>(false)
    let events = EventQueue()
    let stagingDir: String
    var consumer: KafkaConsumer!
    /// Per assigned partition. `PartitionState` is a class, so the per-record path updates it in
    /// place: as a struct, every record paid a hash lookup, a copy out and a write-back (with
    /// two String hashes of the topic), 14% of the poll thread at 48 partitions (perf, 3,000,000
    /// records).
    var partitions: [TopicPartition: PartitionState] = [:] { didSet { lastHandled = nil } }
    /// The partition of the previous record and its state: a fetch response hands over runs of
    /// one partition's records, so most records skip the dictionary. Dropped whenever
    /// `partitions` changes, so it never outlives an assignment.
    var lastHandled: (tp: TopicPartition, state: PartitionState)?
    var stats = Stats()
    /// `ingest_time` of the records of the current poll (microseconds since the epoch).
    var pollIngestMicros: Int64 = 0
    var lastActivity = ContinuousClock.now
    var everAssigned = false
    /// The exit code a fatal condition set (e.g. ``EngineExit/dataLoss``); nil for a clean stop.
    var fatalExit: Int32?
    /// Since when no partition is assigned (nil while some are).
    var unassignedSince: ContinuousClock.Instant?
    /// Metrics and health for the HTTP endpoints (`[engine] metrics_port`, served by the
    /// EngineHTTP module's server, which the etl-engine executable starts).
    public let metrics: EngineMetrics
    /// What the metrics last saw of the poll thread's tallies (added per poll, not per record).
    var polledForMetrics = (records: 0, rejected: 0, bytes: 0)
    var lastGaugeRefresh: ContinuousClock.Instant?
    /// A store reachability check (`/ready`) is running on a background thread.
    let storeCheckRunning = Atomic<Bool>(false)
    /// A manifest pruning pass is running on a background thread (``pruneManifestIfDue()``).
    let pruneRunning = Atomic<Bool>(false)
    /// When the last pruning pass started (the first is one interval after start).
    var lastPrune = ContinuousClock.now

    /// The most records one poll hands to the encoder shards.
    static let pollMaxMessages = 10_000
    /// The most records one poll hands out while staging is above half of `staging.max_bytes`;
    /// each such poll is handled before the next (``nearStagingLimit``).
    static let pollMaxMessagesNearLimit = 1_000

    /// Staged bytes are above half of `staging.max_bytes`: records handed to the shards but not
    /// handled yet are staged after the backpressure check, so near the bound the poll thread
    /// hands out small polls and waits for each, and the bound is overshot by at most one of
    /// them (and the open batches), as with one thread. (Found by tools/chaos.py's disk scenario:
    /// with 20,000-record polls a 4 MiB staging file system filled up again after a restart.)
    var nearStagingLimit: Bool { scheduler.stagedBytes > config.staging.maxBytes / 2 }

    enum Event: Sendable {
        case reseek(TopicPartition, Int64, String)
        case batchDone(TopicPartition)
        case fatal(PermanentStoreError)
    }

    /// Events from upload workers to the poll thread.
    final class EventQueue: Sendable {
        private let items = Mutex<[Event]>([])
        func post(_ e: Event) { items.withLock { $0.append(e) } }
        func drain() -> [Event] { items.withLock { e in defer { e.removeAll() }; return e } }
    }

    /// One assigned partition's state. @unchecked Sendable: the record-path fields belong to
    /// the partition's encoder shard's thread, and to the poll thread only while the shards are
    /// quiesced (``quiesce()``); `paused` is the poll thread's.
    final class PartitionState: @unchecked Sendable {
        /// The encoder shard handling this partition while it is assigned (``EncoderShard``).
        let shard: Int
        init(shard: Int) { self.shard = shard }
        var open: StagedBatchWriter?
        /// The times of the open batch's first record (its key is computed from them) and their
        /// path bucket: a record of another bucket cuts the batch (`[sink] path` with time).
        var openTimes = PathTemplate.Times(eventMicros: nil, kafkaMillis: nil)
        var openBucket: PathTemplate.Bucket?
        var needsProbe = true
        var skipUntil: Int64?
        /// A seek was asked for during a fork and is made after it: the partition's other held
        /// records are skipped (the seek discards what was prefetched).
        var seekPending = false
        /// The chain position: where the next batch starts (the committed offset, a seek target,
        /// or the last batch's end + 1). Offsets are not dense (transaction markers, compaction),
        /// so the first record read from here may lie beyond it; the batch still starts here, so
        /// the objects' ranges tile the partition. Nil until known (no committed offset yet: the
        /// first record read).
        var position: Int64?
        /// Live manifest batches at or after the start position: their offsets are delivered by
        /// them, so consumption skips them and a new batch never runs into them.
        var knownRanges: [ClosedRange<Int64>] = []
        var paused = false
        /// Records past a retention loss are not read (`on_data_loss = fail`): the engine stops.
        var halted = false
        var lastOffset: Int64?
        /// The Kafka timestamp and event time (when the path layout reads it) of the last
        /// record read: a sealed batch's newest, for the freshness gauges.
        var lastKafkaMillis: Int64?
        var lastEventMicros: Int64?
        /// The end-of-partition cut of `--until-idle` for the open batch.
        var drainWatch = DrainWatch()
    }


    /// The Parquet writer options of every batch file: `[sink] compression`, `zstd_level` and
    /// `parquet_profile` (already validated by `EngineConfig`), the row group size from `[batch]`.
    public static func parquetOptions(_ config: EngineConfig) -> ParquetWriterOptions {
        var options = ParquetWriterOptions()
        options.rowGroupMaxBytes = min(32 << 20, config.batch.maxBytes)
        // Pages are compressed by the encoder shard's one thread, shared by its open batches: a
        // writer's own compression threads (and their ZSTD contexts) would be per open batch, so
        // memory and threads would grow with the assigned partitions (32: +80 MiB peak RSS, measured).
        options.compressionThreads = 0
        options.createdBy = "tidemark version \(tidemarkVersion) (build release)"
        switch config.sink.compression {
        case "none": options.compression = .uncompressed
        case "snappy": options.compression = .snappy
        case "gzip": options.compression = .gzip(level: 6)  // zlib's default level
        default: options.compression = .zstd(level: Int32(config.sink.zstdLevel))
        }
        options.profile = ParquetProfile(rawValue: config.sink.parquetProfile) ?? .modern
        return options
    }

    /// Opens the manifest (taking its lock), the object store and the staging directory, and
    /// checks the configuration. Nothing is consumed until ``run(untilIdle:)``.
    ///
    /// The configured output schema is compared with the manifest's current one (the schema
    /// change rule, ``SchemaDescription/incompatibility(with:)``): an incompatible change is a
    /// ``ConfigError`` (key `schema`) unless `acceptSchemaChange` (`--accept-schema-change`).
    public init(config: EngineConfig, logger: Logger, acceptSchemaChange: Bool = false) throws {
        self.config = config
        self.logger = logger
        let metrics = EngineMetrics()
        self.metrics = metrics
        stagingDir = config.staging.dir
        try FileManager.default.createDirectory(atPath: stagingDir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        chmod(stagingDir, 0o700)
        manifest = try Manifest.open(path: config.staging.manifest)
        let location = try ObjectStoreLocation(parsing: config.sink.url)
        layout = try config.keyLayout(prefix: location.prefix)
        parser = try RecordParser(input: config.input, schema: config.schema)
        try Self.checkSchemaChange(parser.layout.description, manifest: manifest, accept: acceptSchemaChange, logger: logger)
        store = try Self.openStore(config: config, location: location, layout: layout, metrics: metrics, logger: logger)
        parquetOptions = Self.parquetOptions(config)
        let encoders = Self.encoderCount(config)
        shards = (0..<encoders).map {
            EncoderShard(index: $0, scratch: ParquetWriterScratch(compressionThreads: 1,
                                                                   memoryBudget: config.batch.memoryBudget / encoders))
        }
        executor = BatchExecutor(manifest: manifest, store: store, layout: layout, offsets: offsets,
                                 partSize: Int64(config.sink.partSize), concurrency: config.sink.uploadConcurrency,
                                 quarantineDirectory: stagingDir + "/quarantine", logger: logger,
                                 observer: metrics)
        let events = self.events
        scheduler = UploadScheduler(executor: executor, workers: 4, logger: logger,
            onReseek: { tp, offset, why in events.post(.reseek(tp, offset, why)) },
            onBatchDone: { b, outcome in
                switch outcome {
                case .committed?:
                    metrics.committed(batchID: b.id, sinceSealed: Date().timeIntervalSince(b.createdAt))
                case .abandoned?: metrics.batchOutcome("abandoned"); metrics.forget(batchID: b.id)
                case .superseded?: metrics.batchOutcome("superseded"); metrics.forget(batchID: b.id)
                default: metrics.forget(batchID: b.id)
                }
                events.post(.batchDone(TopicPartition(topic: b.topic, partition: b.partition)))
            },
            onFatal: { e in events.post(.fatal(e)) })
    }


    /// Enforces the schema change rule against the manifest's current schema, then records the
    /// configured one as current.
    static func checkSchemaChange(_ configured: SchemaDescription, manifest: Manifest, accept: Bool, logger: Logger) throws {
        if let current = try manifest.currentSchema(), current.fingerprint != configured.fingerprint {
            let previous = SchemaDescription(json: current.json)
            if let problem = configured.incompatibility(with: previous) {
                guard accept else {
                    throw ConfigError(key: "schema", message: "the configured output schema is not compatible with the one this "
                        + "manifest's objects were written with (\(current.fingerprint.prefix(12))): \(problem). Only optional fields "
                        + "appended at the end may be added. To proceed, write to a new sink prefix (sink.url) with a new "
                        + "staging.manifest, or start once with etl-engine --accept-schema-change (readers must then reconcile both "
                        + "schemas; see docs/operations.md \"Schema changes\")")
                }
                logger.warning("incompatible schema change accepted (--accept-schema-change)", metadata: [
                    "change": "\(problem)", "previous": "\(current.fingerprint)", "schema": "\(configured.fingerprint)"])
            } else {
                logger.notice("output schema extended (optional fields appended)", metadata: [
                    "previous": "\(current.fingerprint)", "schema": "\(configured.fingerprint)"])
            }
        }
        try manifest.recordSchema(fingerprint: configured.fingerprint, json: configured.json)
    }

    /// Asks the engine to stop gracefully (safe from any thread, e.g. a signal handler thread).
    public func requestStop() { stopRequested.store(true, ordering: .relaxed) }

    /// Runs until stopped (or, with `untilIdle`, until no record arrived for that long while
    /// partitions were assigned and everything read is committed). Returns the process exit code
    /// (``EngineExit``). With `untilIdle`, a run that is not assigned any partition within
    /// `assignmentTimeout` exits with ``EngineExit/noAssignment``: it never calls itself idle
    /// before the group has assigned it.
    public func run(untilIdle: Duration? = nil, assignmentTimeout: Duration = .seconds(300)) throws -> Int32 {
        try cleanStagingDirectory()
        metrics.health.beat()
        offsets.bind(self)
        scheduler.start()

        var kc = KafkaConsumerConfig(bootstrapServers: config.kafka.brokers, groupID: config.kafka.groupID,
                                     topics: config.kafka.topics, autoOffsetReset: config.kafka.autoOffsetReset,
                                     rebalanceProtocol: config.kafka.rebalanceProtocol == "eager" ? .eager : .cooperativeSticky,
                                     sessionTimeout: config.kafka.sessionTimeout, properties: config.kafka.properties)
        if kc.properties["client.id"] == nil { kc.properties["client.id"] = "tidemark-\(getpid())" }
        if kc.properties["group.instance.id"] == nil, let id = config.kafka.effectiveInstanceID(stagingDirectory: stagingDir) {
            // Static membership: a restart after kill -9 takes its old place at once instead of
            // waiting for the dead member's session to time out.
            kc.properties["group.instance.id"] = id
        }
        Self.applyLibrdkafkaDefaults(to: &kc.properties)
        let handler = Rebalance(engine: self)
        consumer = try KafkaConsumer(config: kc, rebalanceHandler: handler, logger: logger)
        try consumer.subscribe()
        // Finish what an earlier run left (STAGED/UPLOADING → UPLOADED; commits wait for
        // ownership). Queued only now: each partition's machine first asks the consumer for the
        // committed offset, its chain's start.
        for b in try manifest.unfinishedBatches() { scheduler.enqueue(b) }
        let rdkafka = LibrdkafkaVersion.current
        if rdkafka.isBelowRecommended {
            logger.warning("librdkafka \(rdkafka) is older than 2.2: it cannot talk to some brokers and makes Kafka 4 brokers disable features; run on a newer librdkafka.so.1 (docs/kafka.md)")
        }
        logger.info("engine started", metadata: ["librdkafka": "\(rdkafka)", "topics": "\(config.kafka.topics)", "group": "\(config.kafka.groupID)",
                                                 "sink": "\(config.sink.url)", "manifest": "\(config.staging.manifest)"])
        lastActivity = .now
        var idleFlushed = false
        startEncoders()
        // Whatever way run() ends, the shards finish and stop (and every held message is
        // released) while the consumer still exists; a normal shutdown has done it already.
        defer { stopEncoders(); held.release() }
        while !stopRequested.load(ordering: .relaxed) {
            let loopStarted = ContinuousClock.now
            metrics.health.beat(now: loopStarted)
            offsets.serve()
            stats.serveTime += ContinuousClock.now - loopStarted
            do {
                try takeShardOutcomes()
            } catch let e as PermanentStoreError {
                stopFatally(e)
                break
            }
            makeRequestedSeeks()
            drainEvents()
            // While batches are in flight, upload workers wait on this thread for offset reads
            // and commits: poll briefly and, when nothing came, wait on their requests instead,
            // so a commit is served within milliseconds rather than after a 100 ms poll.
            let busy = scheduler.pendingTotal > 0
            // One wall-clock reading per poll: every record of the poll gets it as ingest_time.
            pollIngestMicros = Int64(Date().timeIntervalSince1970 * 1_000_000)
            let n: Int
            do {
                let pollStarted = ContinuousClock.now
                let near = nearStagingLimit
                n = try consumer.pollHeld(into: held, maxMessages: near ? Self.pollMaxMessagesNearLimit : Self.pollMaxMessages,
                                          timeout: busy ? .milliseconds(2) : .milliseconds(100))
                if n > 0 { stats.fetchTime += ContinuousClock.now - pollStarted }
                if let e = heldError { heldError = nil; throw e }
                let dispatchStarted = ContinuousClock.now
                dispatchHeld()
                if near { quiesce() }
                stats.dispatchTime += ContinuousClock.now - dispatchStarted
            } catch let e as PermanentStoreError {
                held.release()
                stopFatally(e)
                break
            }
            flushPollMetrics()  // the shards publish after each job, also between polls
            if n == 0 {
                stats.idleTime += ContinuousClock.now - loopStarted
                if busy {
                    let waited = ContinuousClock.now
                    offsets.serve(wait: .milliseconds(20))
                    stats.serveTime += ContinuousClock.now - waited
                }
            }
            if n > 0 { lastActivity = .now; idleFlushed = false; stats.lastRecordAt = lastActivity }
            if ContinuousClock.now - lastCutsPosted >= .milliseconds(50) {
                lastCutsPosted = .now
                postCuts(drained: untilIdle != nil ? consumer.partitionsAtEOF : nil)
            }
            try applyBackpressure()
            // A partition paused by backpressure has records waiting in Kafka: not idle. (Found
            // by tools/chaos.py's S3 scenario: during an S3 outage the engine paused its
            // partition, the pause counted as idle, and once the outage ended and the two
            // in-flight batches committed it exited 0 with 2,900 records unread.)
            if partitions.values.contains(where: { $0.paused }) { lastActivity = .now }
            report()
            refreshMetrics()
            pruneManifestIfDue()
            // Idle counts only while partitions are assigned: before the first assignment (the
            // coordinator may be waiting out a crashed predecessor's session) and while a
            // rebalance leaves none, records may be waiting that this run has not seen. (Found by
            // a user's failpoint crash, etl-recover, --until-idle 4s: exit 0 with 40,000 of
            // 60,000 records unread.)
            if partitions.isEmpty {
                lastActivity = .now
                let since = unassignedSince ?? .now
                unassignedSince = since
                if ContinuousClock.now - since >= assignmentTimeout {
                    let why = "no partition assigned within \(assignmentTimeout) (group \(config.kafka.groupID)): the group may be waiting out a dead member's session ([kafka] session_timeout = \(config.kafka.sessionTimeout)), have more members than partitions, or the topics may not exist"
                    if untilIdle != nil {
                        logger.error("\(why); exiting", metadata: ["exit_code": "\(EngineExit.noAssignment)"])
                        try shutdown()
                        return EngineExit.noAssignment
                    }
                    logger.warning("\(why)")
                    unassignedSince = .now
                }
            } else {
                unassignedSince = nil
            }
            if let idle = untilIdle, ContinuousClock.now - lastActivity >= idle {
                if !idleFlushed {
                    try sealAll(reason: "idle")
                    idleFlushed = true
                }
                quiesce()
                if scheduler.pendingTotal == 0 && partitions.values.allSatisfy({ $0.open == nil }) {
                    let waiting = scheduler.waitingTotal
                    if waiting > 0 {
                        logger.warning("batches left in the manifest: the offsets before them are not delivered yet (a partition this engine does not own, or a hole its owner reads again)",
                                       metadata: ["batches": "\(waiting)"])
                    }
                    logger.info("idle and everything committed; exiting", metadata: ["idle": "\(idle)"])
                    break
                }
            }
        }
        try shutdown()
        return fatalExit ?? EngineExit.ok
    }

    // MARK: Shutdown

    /// The store refused a step permanently: stop with ``EngineExit/storeRefused``, saying what
    /// to check. Everything durable stays in the manifest for the next start.
    func stopFatally(_ e: PermanentStoreError) {
        if fatalExit == nil {
            logger.critical("\(e.description) Stopping (exit \(EngineExit.storeRefused)); the manifest keeps every batch for the next start.")
        }
        fatalExit = fatalExit ?? EngineExit.storeRefused
        metrics.health.setFatal(e.description)
        requestStop()
    }

    func shutdown() throws {
        held.release()
        quiesce()
        do { try takeShardOutcomes() } catch {
            logger.error("an encoder shard failed before the stop", metadata: ["error": "\(error)"])
        }
        logger.info("stopping: sealing open batches and waiting for commits")
        if fatalExit == EngineExit.storeRefused {
            // Uploads cannot succeed: leave the open batches unsealed (their records are read
            // again) and the staged ones in the manifest for the next start.
            for st in partitions.values { st.open?.discard(); st.open = nil }
        } else {
            try sealAll(reason: "shutdown")
        }
        while scheduler.pendingTotal > 0 && fatalExit != EngineExit.storeRefused {
            metrics.health.beat()  // draining is progress: /healthz stays 200
            offsets.serve(wait: .milliseconds(50))
            drainEvents()
        }
        offsets.setOwned([])
        try? consumer.close(timeout: .seconds(10))
        stopEncoders()
        offsets.closeChannel()
        scheduler.stop()
        report(force: true)
        summarize()
        flushPollMetrics()
        refreshMetrics(force: true, stopped: true)
        waitForPrune()
        manifest.close()
    }

}
