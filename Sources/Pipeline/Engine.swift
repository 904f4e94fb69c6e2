import Foundation
import KafkaSource
import Logging
import Manifest
import ObjectStore
import Parquet
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

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
    let parser: LogRecordParser
    let parquetOptions: ParquetWriterOptions
    /// One page scratch, ZSTD context and compression thread for every open batch: all writers
    /// live on the poll thread (created in `handle`, sealed or discarded there and in the
    /// rebalance callbacks it runs), so one set serves them all instead of one per assigned
    /// partition. The poll thread parses and encodes; pages are compressed on the other core.
    let writerScratch = ParquetWriterScratch(compressionThreads: 1)
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
    private var lastHandled: (tp: TopicPartition, state: PartitionState)?
    var stats = Stats()
    /// `ingest_time` of the records of the current poll (microseconds since the epoch).
    private var pollIngestMicros: Int64 = 0
    var lastActivity = ContinuousClock.now
    var everAssigned = false
    /// Counters for the Prometheus endpoint (`[engine] metrics_port`).
    public let metrics = EngineMetrics()
    var metricsServer: MetricsServer?

    enum Event: Sendable {
        case reseek(TopicPartition, Int64, String)
        case batchDone(TopicPartition)
    }

    /// Events from upload workers to the poll thread.
    final class EventQueue: Sendable {
        private let items = Mutex<[Event]>([])
        func post(_ e: Event) { items.withLock { $0.append(e) } }
        func drain() -> [Event] { items.withLock { e in defer { e.removeAll() }; return e } }
    }

    final class PartitionState {
        var open: StagedBatchWriter?
        var needsProbe = true
        var skipUntil: Int64?
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
        var lastOffset: Int64?
        /// When this partition was first seen drained with an open batch (`--until-idle` only).
        var drainedSince: ContinuousClock.Instant?
    }

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

    /// The state of `message`'s partition, or nil when it is not (or no longer) assigned.
    private func state(of message: borrowing KafkaMessageView) -> (TopicPartition, PartitionState)? {
        if let last = lastHandled, last.tp.partition == message.partition, last.tp.topic == message.topic {
            return last
        }
        let tp = message.topicPartition
        guard let st = partitions[tp] else { return nil }
        lastHandled = (tp, st)
        return (tp, st)
    }

    struct Stats {
        var records = 0
        var rejected = 0
        var bytes = 0
        var batchesSealed = 0
        /// When this run consumed its first record and last committed an offset: the end-to-end
        /// window of the run summary (and of `make bench`).
        var startedAt = ContinuousClock.now
        var firstRecordAt: ContinuousClock.Instant?
        /// End of the last poll that returned records (poll granularity: no clock read per record).
        var lastRecordAt: ContinuousClock.Instant?
        var lastCommitAt: ContinuousClock.Instant?
        /// Poll-thread time in polls that returned records (fetch hand-off, parse, column
        /// append) and in sealing (finishing the Parquet file, fsync, hash, manifest row).
        var pollTime = Duration.zero
        var sealTime = Duration.zero
        /// Poll-thread time in polls that returned nothing (waiting for fetches, or every
        /// partition paused) and in serving offset requests for upload workers.
        var idleTime = Duration.zero
        var serveTime = Duration.zero
        var lastReport = ContinuousClock.now
        var recordsAtLastReport = 0
        var bytesAtLastReport = 0
    }

    /// Opens the manifest (taking its lock), the object store and the staging directory, and
    /// checks the configuration. Nothing is consumed until ``run(untilIdle:)``.
    public init(config: EngineConfig, logger: Logger) throws {
        self.config = config
        self.logger = logger
        stagingDir = config.staging.dir
        try FileManager.default.createDirectory(atPath: stagingDir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        chmod(stagingDir, 0o700)
        manifest = try Manifest.open(path: config.staging.manifest)
        let location = try ObjectStoreLocation(parsing: config.sink.url)
        layout = KeyLayout(prefix: location.prefix)
        store = try makeObjectStore(location: location, s3: Self.s3Configuration(config), logger: logger)
        parser = LogRecordParser(format: config.input.format, maxLineBytes: config.input.maxLineBytes)
        var options = ParquetWriterOptions()
        options.rowGroupMaxBytes = min(32 << 20, config.batch.maxBytes)
        // Pages are compressed by `writerScratch`'s one thread, shared by every open batch: a
        // writer's own compression threads (and their ZSTD contexts) would be per open batch, so
        // memory and threads would grow with the assigned partitions (32: +80 MiB peak RSS, measured).
        options.compressionThreads = 0
        options.createdBy = "tidemark version \(tidemarkVersion) (build release)"
        options.compression = config.sink.compression == "none" ? .uncompressed : .zstd(level: Int32(config.sink.zstdLevel))
        parquetOptions = options
        executor = BatchExecutor(manifest: manifest, store: store, layout: layout, offsets: offsets,
                                 partSize: Int64(config.sink.partSize), concurrency: config.sink.uploadConcurrency,
                                 quarantineDirectory: stagingDir + "/quarantine", logger: logger)
        let events = self.events
        let metrics = self.metrics
        scheduler = UploadScheduler(executor: executor, workers: 4, logger: logger,
            onReseek: { tp, offset, why in events.post(.reseek(tp, offset, why)) },
            onBatchDone: { b, outcome in
                switch outcome {
                case .committed?:
                    metrics.batchesCommitted.add(1, ordering: .relaxed)
                    metrics.uploadSeconds.add(Int(Date().timeIntervalSince(b.createdAt) * 1e6), ordering: .relaxed)
                    metrics.uploadCount.add(1, ordering: .relaxed)
                case .abandoned?: metrics.batchesAbandoned.add(1, ordering: .relaxed)
                case .superseded?: metrics.batchesSuperseded.add(1, ordering: .relaxed)
                default: break
                }
                events.post(.batchDone(TopicPartition(topic: b.topic, partition: b.partition)))
            })
    }

    /// The S3 settings of the configuration.
    public static func s3Configuration(_ c: EngineConfig) -> S3Configuration {
        var s3 = S3Configuration(bucket: "")
        s3.region = c.sink.region
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

    /// Asks the engine to stop gracefully (safe from any thread, e.g. a signal handler thread).
    public func requestStop() { stopRequested.store(true, ordering: .relaxed) }

    /// Runs until stopped (or, with `untilIdle`, until no record arrived for that long and
    /// everything read is committed). Returns the process exit code.
    public func run(untilIdle: Duration? = nil) throws -> Int32 {
        try cleanStagingDirectory()
        if config.engine.metricsPort > 0 {
            let metrics = self.metrics
            let executor = self.executor
            metricsServer = try MetricsServer(host: config.engine.metricsHost, port: config.engine.metricsPort, logger: logger) {
                metrics.render(bytesUploaded: executor.bytesUploaded.load(ordering: .relaxed))
            }
            logger.info("metrics at http://\(config.engine.metricsHost):\(metricsServer!.port)/metrics")
        }
        offsets.bind(self)
        scheduler.start()

        var kc = KafkaConsumerConfig(bootstrapServers: config.kafka.brokers, groupID: config.kafka.groupID,
                                     topics: config.kafka.topics, autoOffsetReset: config.kafka.autoOffsetReset,
                                     rebalanceProtocol: config.kafka.rebalanceProtocol == "eager" ? .eager : .cooperativeSticky,
                                     sessionTimeout: config.kafka.sessionTimeout, properties: config.kafka.properties)
        if kc.properties["client.id"] == nil { kc.properties["client.id"] = "tidemark-\(getpid())" }
        Self.applyLibrdkafkaDefaults(to: &kc.properties)
        let handler = Rebalance(engine: self)
        consumer = try KafkaConsumer(config: kc, rebalanceHandler: handler, logger: logger)
        try consumer.subscribe()
        // Finish what an earlier run left (STAGED/UPLOADING → UPLOADED; commits wait for
        // ownership). Queued only now: each partition's machine first asks the consumer for the
        // committed offset, its chain's start.
        for b in try manifest.unfinishedBatches() { scheduler.enqueue(b) }
        logger.info("engine started", metadata: ["topics": "\(config.kafka.topics)", "group": "\(config.kafka.groupID)",
                                                 "sink": "\(config.sink.url)", "manifest": "\(config.staging.manifest)"])
        lastActivity = .now
        var idleFlushed = false
        while !stopRequested.load(ordering: .relaxed) {
            let loopStarted = ContinuousClock.now
            offsets.serve()
            stats.serveTime += ContinuousClock.now - loopStarted
            drainEvents()
            // While batches are in flight, upload workers wait on this thread for offset reads
            // and commits: poll briefly and, when nothing came, wait on their requests instead,
            // so a commit is served within milliseconds rather than after a 100 ms poll.
            let busy = scheduler.pendingTotal > 0
            var firstInPoll: ContinuousClock.Instant?
            // One wall-clock reading per poll: every record of the poll gets it as ingest_time.
            pollIngestMicros = Int64(Date().timeIntervalSince1970 * 1_000_000)
            let n = try consumer.pollBatch(maxMessages: 5000, timeout: busy ? .milliseconds(2) : .milliseconds(100)) { message in
                if firstInPoll == nil { firstInPoll = .now }
                try self.handle(message)
            }
            if let firstInPoll { stats.pollTime += ContinuousClock.now - firstInPoll }
            if n == 0 {
                stats.idleTime += ContinuousClock.now - loopStarted
                if busy {
                    let waited = ContinuousClock.now
                    offsets.serve(wait: .milliseconds(20))
                    stats.serveTime += ContinuousClock.now - waited
                }
            }
            if n > 0 { lastActivity = .now; idleFlushed = false; stats.lastRecordAt = lastActivity }
            try cutAgedBatches()
            if untilIdle != nil { try sealDrainedPartitions() }
            try applyBackpressure()
            // A partition paused by backpressure has records waiting in Kafka: not idle. (Found
            // by tools/chaos.py's S3 scenario: during an S3 outage the engine paused its
            // partition, the pause counted as idle, and once the outage ended and the two
            // in-flight batches committed it exited 0 with 2,900 records unread.)
            if partitions.values.contains(where: { $0.paused }) { lastActivity = .now }
            report()
            // Before the first assignment, allow for the group coordinator to wait out the
            // session of a member that died without leaving (a crashed predecessor).
            let idleLimit = untilIdle.map { everAssigned ? $0 : $0 + config.kafka.sessionTimeout + .seconds(5) }
            if let idle = idleLimit, ContinuousClock.now - lastActivity >= idle {
                if !idleFlushed {
                    try sealAll(reason: "idle")
                    idleFlushed = true
                }
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
        return 0
    }

    // MARK: Records

    private func handle(_ message: borrowing KafkaMessageView) throws {
        guard let (tp, st) = state(of: message) else { return }
        let offset = message.offset
        if let skip = st.skipUntil {
            if offset < skip { return }
            st.skipUntil = nil
        }
        if let i = st.knownRanges.firstIndex(where: { $0.contains(offset) }) {
            let r = st.knownRanges.remove(at: i)
            if let open = st.open {
                // The offsets between the open batch's last record and the known range hold no
                // record (markers): the open batch covers them, so the chain stays contiguous.
                open.coverThrough(r.lowerBound - 1)
                try seal(tp, st, reason: "fence")
            }
            try seek(tp, st, to: r.upperBound + 1, why: "offsets \(r) belong to a batch in the manifest")
            return
        }
        if st.open == nil {
            if let p = st.position, offset < p { return }   // delivered or staged already
            let ts = message.timestamp.milliseconds
            var start = st.position ?? offset
            if st.needsProbe && offset > start {
                start = try startAfterGap(tp, from: start, firstRecord: offset)
                st.position = start
            }
            if st.needsProbe {
                let key = layout.objectKey(topic: tp.topic, partition: tp.partition, start: start, startTimestampMillis: ts)
                if let head = try probe(key), let end = head.metadata[BatchMetadataKey.end].flatMap({ Int64($0) }), end >= start {
                    logger.info("object already holds this start offset; skipping past it",
                                metadata: ["key": "\(key)", "end": "\(end)"])
                    scheduler.objectFound(tp, start: start, end: end)
                    try seek(tp, st, to: end + 1, why: "probe found \(key)")
                    return
                }
                st.needsProbe = false
            }
            let dir = stagingDir + "/\(tp.topic)/\(tp.partition)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            st.open = try StagedBatchWriter(directory: dir, topic: tp.topic, partition: tp.partition,
                                            startOffset: start, startTimestampMillis: ts, options: rowGroupOptions(),
                                            shared: writerScratch)
        }
        let batch = st.open!
        let before = batch.rejectedCount
        try batch.add(message, parser: parser, ingestMicros: pollIngestMicros)
        if stats.records == 0 { stats.firstRecordAt = .now }
        stats.records += 1
        stats.bytes += message.valueCount
        metrics.recordsIn.add(1, ordering: .relaxed)
        metrics.bytesIn.add(message.valueCount, ordering: .relaxed)
        if batch.rejectedCount > before {
            stats.rejected += 1
            metrics.recordsRejected.add(1, ordering: .relaxed)
        }
        st.lastOffset = offset
        let fenceNext = st.knownRanges.first.map { $0.lowerBound == offset + 1 } ?? false
        if batch.recordCount >= config.batch.maxRecords || batch.inputBytes >= config.batch.maxBytes || fenceNext {
            try seal(tp, st, reason: fenceNext ? "fence" : "size")
        }
    }

    /// HEAD with retries: the probe decides whether data is written twice, so it never guesses.
    private func probe(_ key: String) throws -> ObjectInfo? {
        var delay = 0.2
        while true {
            do {
                return try store.headObject(key: key)
            } catch {
                if stopRequested.load(ordering: .relaxed) { throw error }
                logger.warning("S3 probe failed; retrying", metadata: ["key": "\(key)", "error": "\(error)"])
                usleep(UInt32(delay * 1_000_000))
                delay = min(delay * 2, 10)
            }
        }
    }

    /// The first record after the chain position `from` is at `firstRecord > from`. Offsets in
    /// between hold no record the consumer returns: transaction markers, aborted or compacted
    /// records (the batch covers them), or records deleted by retention before they were
    /// delivered (a loss: logged as an error, and the chain restarts at the log start, so
    /// `etl-audit` reports the hole between the committed offset and the first object).
    private func startAfterGap(_ tp: TopicPartition, from: Int64, firstRecord: Int64) throws -> Int64 {
        guard let w = try? consumer.watermarks(tp, cached: false, timeout: .seconds(5)), w.low > from else { return from }
        let start = min(w.low, firstRecord)
        logger.error("records deleted by retention before they were delivered", metadata: [
            "partition": "\(tp)", "lost": "\(from)...\(start - 1)", "log_start": "\(w.low)"])
        return start
    }

    private func seek(_ tp: TopicPartition, _ st: PartitionState, to offset: Int64, why: String) throws {
        st.open?.discard()
        st.open = nil
        st.skipUntil = offset
        st.position = offset
        st.needsProbe = true
        st.knownRanges.removeAll { $0.upperBound < offset }
        logger.info("seek", metadata: ["partition": "\(tp)", "offset": "\(offset)", "why": "\(why)"])
        do {
            try consumer.seek(tp, to: offset, timeout: .seconds(10))
        } catch {
            // librdkafka can time a seek out while the group rebalances (found by tools/chaos.py's
            // rebalance scenario: the engine exited 1). Not fatal: `skipUntil` drops every record
            // below `offset` as it arrives, so the outcome is the same, only slower.
            logger.warning("seek did not complete; records below the target offset are skipped as they arrive",
                           metadata: ["partition": "\(tp)", "offset": "\(offset)", "error": "\(error)"])
        }
    }

    /// Writer options for a new batch: the memory budget shared equally by the assigned
    /// partitions' open batches (each buffers at most one row group), 1 MiB to 32 MiB a row
    /// group, pages no larger than a quarter of it.
    private func rowGroupOptions() -> ParquetWriterOptions {
        var options = parquetOptions
        let share = config.batch.memoryBudget / max(1, partitions.count)
        options.rowGroupMaxBytes = min(options.rowGroupMaxBytes, max(1 << 20, share))
        options.dataPageMaxBytes = min(options.dataPageMaxBytes, max(256 << 10, options.rowGroupMaxBytes / 4))
        return options
    }

    // MARK: Sealing

    private func seal(_ tp: TopicPartition, _ st: PartitionState, reason: String) throws {
        guard let batch = st.open else { return }
        st.open = nil
        guard batch.recordCount > 0 else { batch.discard(); return }
        let sealStarted = ContinuousClock.now
        defer { stats.sealTime += ContinuousClock.now - sealStarted }
        let key = layout.objectKey(topic: tp.topic, partition: tp.partition, start: batch.startOffset,
                                   startTimestampMillis: batch.startTimestampMillis)
        let rejectedKey = batch.rejectedCount > 0
            ? layout.rejectedKey(topic: tp.topic, partition: tp.partition, start: batch.startOffset, end: batch.endOffset,
                                 startTimestampMillis: batch.startTimestampMillis) : nil
        // A file cannot carry its own hash: key_value_metadata has every batch fact but the
        // sha256, which the object metadata (and the manifest) carry.
        var kv: [(key: String, value: String)] = [
            (BatchMetadataKey.topic, tp.topic), (BatchMetadataKey.partition, String(tp.partition)),
            (BatchMetadataKey.start, String(batch.startOffset)), (BatchMetadataKey.end, String(batch.endOffset)),
            (BatchMetadataKey.records, String(batch.goodCount)), (BatchMetadataKey.rejected, String(batch.rejectedCount)),
            (BatchMetadataKey.engineVersion, tidemarkVersion),
        ]
        if let rejectedKey { kv.append((BatchMetadataKey.rejectedKey, rejectedKey)) }
        let sealed = try batch.seal(keyValueMetadata: kv)
        st.position = batch.endOffset + 1
        Failpoints.shared.hit(.afterStageWrite)
        let id = try manifest.insertStaged(NewBatch(
            topic: tp.topic, partition: tp.partition, startOffset: batch.startOffset, endOffset: batch.endOffset,
            goodCount: batch.goodCount, rejectedCount: batch.rejectedCount, objectKey: key, rejectedKey: rejectedKey,
            filePath: sealed.parquetPath, fileSHA256: sealed.sha256, fileSize: sealed.size,
            rejectedPath: sealed.rejectedPath, rejectedSHA256: sealed.rejectedSHA256, rejectedSize: sealed.rejectedSize))
        Failpoints.shared.hit(.afterManifestStaged)
        stats.batchesSealed += 1
        metrics.batchesStaged.add(1, ordering: .relaxed)
        logger.debug("batch staged", metadata: ["batch": "\(id)", "partition": "\(tp)", "start": "\(batch.startOffset)",
                                               "end": "\(batch.endOffset)", "bytes": "\(sealed.size)", "reason": "\(reason)"])
        if let record = try manifest.batch(id: id) {
            scheduler.enqueue(record, freshlyStaged: true)
        }
    }

    private func sealAll(reason: String) throws {
        for (tp, st) in partitions where st.open != nil {
            try seal(tp, st, reason: reason)
        }
    }

    private func cutAgedBatches() throws {
        let now = ContinuousClock.now
        for (tp, st) in partitions {
            guard let open = st.open, now - open.openedAt >= config.batch.maxAge else { continue }
            try seal(tp, st, reason: "age")
        }
    }

    /// `--until-idle` (a catch-up run that exits once drained): a partition that has been at its
    /// end (`_PARTITION_EOF`, nothing received since) for 250 ms seals its open batch instead of
    /// waiting for the idle limit or `max_age`, so the run's last commit follows its last record.
    /// The 250 ms keep a topic that is still being written from being cut into a batch per poll.
    /// A continuously running engine cuts by size and age only.
    private func sealDrainedPartitions() throws {
        let drained = consumer.partitionsAtEOF
        let now = ContinuousClock.now
        for (tp, st) in partitions where st.open != nil {
            if !drained.contains(tp) {
                st.drainedSince = nil
            } else if let since = st.drainedSince {
                guard now - since >= .milliseconds(250) else { continue }
                st.drainedSince = nil
                try seal(tp, st, reason: "end of partition")
            } else {
                st.drainedSince = now
            }
        }
    }

    // MARK: Backpressure

    /// Pauses a partition while it has `max_in_flight` sealed, uncommitted batches, and every
    /// partition while staged bytes exceed `staging.max_bytes`; resumes when they drain.
    private func applyBackpressure() throws {
        let stagingFull = scheduler.stagedBytes > config.staging.maxBytes
        var toPause: [TopicPartition] = []
        var toResume: [TopicPartition] = []
        for (tp, st) in partitions {
            let busy = stagingFull || scheduler.pending(tp) >= config.batch.maxInFlight
            if busy && !st.paused { toPause.append(tp) }
            if !busy && st.paused { toResume.append(tp) }
        }
        if !toPause.isEmpty {
            try consumer.pause(toPause)
            for tp in toPause { partitions[tp]?.paused = true }
            logger.debug("paused (backpressure)", metadata: ["partitions": "\(toPause)", "staging_full": "\(stagingFull)"])
        }
        if !toResume.isEmpty {
            try consumer.resume(toResume)
            for tp in toResume { partitions[tp]?.paused = false }
        }
    }

    // MARK: Events from workers

    private func drainEvents() {
        for event in events.drain() {
            switch event {
            case .reseek(let tp, let offset, let why):
                guard let st = partitions[tp] else {
                    scheduler.reread(tp, from: offset)   // not ours any more; a later assignment starts afresh
                    continue
                }
                st.knownRanges.removeAll { $0.lowerBound >= offset || $0.contains(offset) }
                do { try seek(tp, st, to: offset, why: why) } catch {
                    logger.error("seek failed", metadata: ["partition": "\(tp)", "error": "\(error)"])
                }
                scheduler.reread(tp, from: offset)
            case .batchDone:
                break
            }
        }
    }

    // MARK: Rebalance (poll thread, inside poll)

    func onAssigned(_ tps: [TopicPartition]) -> [TopicPartition: Int64] {
        var starts: [TopicPartition: Int64] = [:]
        let read = try? consumer.committed(tps, timeout: .seconds(30))
        let committed = read ?? [:]
        for tp in tps {
            // The partition's chain starts at the committed offset; when it could not be read,
            // the partition machine asks again before any batch of it is uploaded.
            if read != nil { scheduler.assigned(tp, committed: committed[tp]?.offset) } else { scheduler.resetChain(tp) }
            let st = PartitionState()
            let position = committed[tp]?.offset
            do {
                let live = try manifest.batches(topic: tp.topic, partition: tp.partition,
                                                states: [.staged, .uploading, .uploaded])
                for b in live {
                    scheduler.enqueue(b)   // finish (and, now that we own it, commit) first
                    if b.endOffset >= (position ?? 0) { st.knownRanges.append(b.startOffset...b.endOffset) }
                }
            } catch {
                logger.error("manifest read failed on assignment", metadata: ["partition": "\(tp)", "error": "\(error)"])
            }
            st.knownRanges.sort { $0.lowerBound < $1.lowerBound }
            st.position = position
            if let position { starts[tp] = position }
            partitions[tp] = st
            logger.info("partition assigned", metadata: [
                "partition": "\(tp)", "committed": "\(position.map(String.init) ?? "none")",
                "manifest_batches_ahead": "\(st.knownRanges.count)"])
        }
        offsets.setOwned(Set(partitions.keys))
        lastActivity = .now
        everAssigned = true
        return starts
    }

    func onRevoked(_ tps: [TopicPartition]) {
        for tp in tps {
            guard let st = partitions[tp] else { continue }
            do { try seal(tp, st, reason: "revoke") } catch {
                logger.error("seal on revoke failed", metadata: ["partition": "\(tp)", "error": "\(error)"])
                st.open?.discard()
                st.open = nil
            }
        }
        // Give in-flight batches of these partitions a bounded time to commit while we still own them.
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline && tps.contains(where: { scheduler.pending($0) > 0 }) {
            offsets.serve(wait: .milliseconds(50))
        }
        for tp in tps { partitions[tp] = nil }
        offsets.setOwned(Set(partitions.keys))
        waitForReassignment()
        logger.info("partitions revoked", metadata: ["partitions": "\(tps)"])
    }

    /// With no partition left (a rebalance in progress, or the session lost while the broker
    /// was unreachable), `--until-idle` must not count the wait for the next assignment as idle
    /// time: records not consumed yet would be left behind by an exit that reports "everything
    /// committed". The idle clock restarts and allows for the coordinator, as before the first
    /// assignment. (Found by tools/chaos.py's broker scenario: a broker down past the session
    /// timeout made the engine exit 0 with 16,000 records unread.)
    private func waitForReassignment() {
        lastActivity = .now
        if partitions.isEmpty { everAssigned = false }
    }

    func onLost(_ tps: [TopicPartition]) {
        for tp in tps {
            partitions[tp]?.open?.discard()
            partitions[tp] = nil
        }
        offsets.setOwned(Set(partitions.keys))
        waitForReassignment()
        logger.warning("partitions lost (not committing for them)", metadata: ["partitions": "\(tps)"])
    }

    // MARK: Shutdown

    private func shutdown() throws {
        logger.info("stopping: sealing open batches and waiting for commits")
        try sealAll(reason: "shutdown")
        while scheduler.pendingTotal > 0 {
            offsets.serve(wait: .milliseconds(50))
            drainEvents()
        }
        offsets.setOwned([])
        try? consumer.close(timeout: .seconds(10))
        offsets.closeChannel()
        scheduler.stop()
        report(force: true)
        summarize()
        metricsServer?.stop()
        manifest.close()
    }

    /// Removes `*.tmp` files (a batch being written when the process died: nothing refers to
    /// them) and the leftover files of final batches (a crash between the manifest's COMMITTED
    /// or SUPERSEDED and the delete), and quarantines sealed files no manifest row refers to.
    private func cleanStagingDirectory() throws {
        guard let walker = FileManager.default.enumerator(atPath: stagingDir) else { return }
        let files = (walker.allObjects as? [String] ?? []).filter {
            !$0.hasPrefix("quarantine") && ($0.hasSuffix(".tmp") || $0.hasSuffix(".parquet") || $0.hasSuffix(".jsonl"))
        }
        // The usual start finds nothing to clean: do not read a manifest of many batches for it.
        guard !files.isEmpty else { return }
        let all = try manifest.batches()
        let live = Set(all.filter { !$0.state.isFinal }.flatMap { [$0.filePath, $0.rejectedPath].compactMap { $0 } })
        let done = Set(all.filter { $0.state == .committed || $0.state == .superseded }
            .flatMap { [$0.filePath, $0.rejectedPath].compactMap { $0 } })
        var orphans: [String] = []
        for rel in files {
            let path = stagingDir + "/" + rel
            if rel.hasSuffix(".tmp") || done.contains(path) {
                unlink(path)
            } else if rel.hasSuffix(".parquet") || rel.hasSuffix(".jsonl"), !live.contains(path) {
                orphans.append(path)
            }
        }
        if !orphans.isEmpty {
            let q = stagingDir + "/quarantine"
            try FileManager.default.createDirectory(atPath: q, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            for path in orphans {
                _ = rename(path, q + "/" + (path as NSString).lastPathComponent)
                try manifest.logEvent(batchID: nil, kind: "QUARANTINE", detail: "staged file with no live manifest row: \(path)")
            }
            logger.warning("quarantined staged files with no manifest row", metadata: ["count": "\(orphans.count)", "dir": "\(q)"])
        }
    }

    // MARK: Status

    /// Logs the run's totals and its end-to-end rate: from the first record consumed to the last
    /// offset committed (what `make bench` quotes).
    private func summarize() {
        var meta: Logger.Metadata = ["records": "\(stats.records)", "rejected": "\(stats.rejected)",
                                     "bytes": "\(stats.bytes)", "batches": "\(stats.batchesSealed)",
                                     "uploaded_bytes": "\(executor.bytesUploaded.load(ordering: .relaxed))"]
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        if let first = stats.firstRecordAt {
            // Start-up cost: opening the manifest, recovery, group join, first fetch.
            meta["first_record_after_seconds"] = "\(String(format: "%.3f", seconds(first - stats.startedAt)))"
        }
        if let first = stats.firstRecordAt, let last = stats.lastCommitAt, last > first {
            let secs = seconds(last - first)
            meta["seconds"] = "\(String(format: "%.3f", secs))"
            meta["wall_seconds"] = "\(String(format: "%.3f", seconds(last - stats.startedAt)))"
            meta["records_per_s"] = "\(Int(Double(stats.records) / secs))"
            meta["mb_per_s"] = "\(String(format: "%.1f", Double(stats.bytes) / secs / 1e6))"
            if let lastRecord = stats.lastRecordAt, last > lastRecord {
                // The drain: sealing, uploading and committing what was read after the last record.
                meta["tail_seconds"] = "\(String(format: "%.3f", seconds(last - lastRecord)))"
            }
        }
        // Stage split (seconds of thread time; upload workers overlap each other and the poll thread).
        func micros(_ a: borrowing Atomic<Int>) -> String { String(format: "%.3f", Double(a.load(ordering: .relaxed)) / 1e6) }
        meta["stage_parse_encode_s"] = "\(String(format: "%.3f", seconds(stats.pollTime)))"
        meta["stage_seal_s"] = "\(String(format: "%.3f", seconds(stats.sealTime)))"
        meta["poll_thread_idle_s"] = "\(String(format: "%.3f", seconds(stats.idleTime)))"
        meta["poll_thread_offsets_s"] = "\(String(format: "%.3f", seconds(stats.serveTime)))"
        meta["stage_object_store_s"] = "\(micros(executor.objectStoreMicros))"
        meta["stage_manifest_s"] = "\(micros(executor.manifestMicros))"
        meta["stage_offsets_s"] = "\(micros(executor.offsetMicros))"
        logger.info("run summary (first record consumed to last offset committed)", metadata: meta)
    }

    private func report(force: Bool = false) {
        let now = ContinuousClock.now
        let interval = config.engine.statusInterval
        guard force || (interval > .zero && now - stats.lastReport >= interval) else { return }
        let secs = max(0.001, Double((now - stats.lastReport).components.seconds) + Double((now - stats.lastReport).components.attoseconds) / 1e18)
        let rps = Double(stats.records - stats.recordsAtLastReport) / secs
        let mbps = Double(stats.bytes - stats.bytesAtLastReport) / secs / 1_048_576
        var lag: [String] = []
        var lagValues: [String: Int64] = [:]
        for tp in partitions.keys.sorted() {
            if let w = try? consumer.watermarks(tp, cached: true, timeout: .milliseconds(10)),
               let last = partitions[tp]?.lastOffset {
                lag.append("\(tp)=\(max(0, w.high - last - 1))")
                lagValues["\(tp)"] = max(0, w.high - last - 1)
            }
        }
        let counts = (try? manifest.countsByState()) ?? [:]
        metrics.lag.withLock { $0 = lagValues }
        metrics.states.withLock { $0 = Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }) }
        logger.info("status", metadata: [
            "records": "\(stats.records)", "rejected": "\(stats.rejected)",
            "records_per_s": "\(Int(rps))", "mb_per_s": "\(String(format: "%.1f", mbps))",
            "uploaded_mb": "\(executor.bytesUploaded.load(ordering: .relaxed) / 1_048_576)",
            "batches": "\(BatchState.allCases.compactMap { s in counts[s].map { "\(s)=\($0)" } }.joined(separator: " "))",
            "in_flight": "\(scheduler.pendingTotal)", "lag": "\(lag.joined(separator: " "))",
        ])
        stats.lastReport = now
        stats.recordsAtLastReport = stats.records
        stats.bytesAtLastReport = stats.bytes
    }
}

/// Routes librdkafka's rebalance callbacks (poll thread) to the engine.
final class Rebalance: KafkaRebalanceHandler {
    unowned let engine: Engine
    init(engine: Engine) { self.engine = engine }
    func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] { engine.onAssigned(partitions) }
    func partitionsRevoked(_ partitions: [TopicPartition]) { engine.onRevoked(partitions) }
    func partitionsLost(_ partitions: [TopicPartition]) { engine.onLost(partitions) }
}

/// Upload workers ask the poll thread (the only thread that may use the consumer) to read and
/// commit offsets: each request waits on a semaphore until the poll thread served it.
final class PollThreadOffsets: OffsetAuthority, @unchecked Sendable {
    // @unchecked Sendable: `engine` is set once before workers start; everything else is
    // behind `lock`.
    private final class Request: Sendable {
        let tp: TopicPartition
        let commit: (offset: Int64, metadata: String)?
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Result<(Int64?, Bool), any Error>?>(nil)
        init(tp: TopicPartition, commit: (offset: Int64, metadata: String)?) {
            self.tp = tp
            self.commit = commit
        }
    }

    private let lock = Mutex<(queue: [Request], owned: Set<TopicPartition>, closed: Bool)>(([], [], false))
    private let arrived = DispatchSemaphore(value: 0)
    private unowned(unsafe) var engine: Engine?

    func bind(_ e: Engine) { engine = e }
    func setOwned(_ s: Set<TopicPartition>) { lock.withLock { $0.owned = s } }
    func closeChannel() {
        let waiting = lock.withLock { s -> [Request] in
            s.closed = true
            defer { s.queue.removeAll() }
            return s.queue
        }
        for r in waiting {
            r.result.withLock { $0 = .success((nil, false)) }
            r.done.signal()
        }
    }

    func committedOffset(_ tp: TopicPartition) throws -> (offset: Int64?, owned: Bool) {
        let (o, owned) = try call(tp, commit: nil)
        return (o, owned)
    }

    func commit(_ tp: TopicPartition, offset: Int64, metadata: String) throws -> Bool {
        try call(tp, commit: (offset, metadata)).1
    }

    private func call(_ tp: TopicPartition, commit: (offset: Int64, metadata: String)?) throws -> (Int64?, Bool) {
        let r = Request(tp: tp, commit: commit)
        let closed = lock.withLock { s -> Bool in
            if s.closed { return true }
            s.queue.append(r)
            return false
        }
        if closed { return (nil, false) }
        arrived.signal()
        r.done.wait()
        return try r.result.withLock { $0! }.get()
    }

    /// Serves queued requests (poll thread only); with `wait`, blocks up to that long for one.
    func serve(wait: Duration = .zero) {
        if wait > .zero { _ = arrived.wait(timeout: .now() + .milliseconds(Int(wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000))) }
        let (requests, owned) = lock.withLock { s -> ([Request], Set<TopicPartition>) in
            defer { s.queue.removeAll() }
            return (s.queue, s.owned)
        }
        guard let consumer = engine?.consumer else {
            for r in requests { r.result.withLock { $0 = .success((nil, false)) }; r.done.signal() }
            return
        }
        // Requests that arrived together go to Kafka together: one OffsetFetch for every read and
        // one OffsetCommit for every commit, instead of a round trip each (32 partitions finishing
        // batches at once made the poll thread wait on the coordinator for seconds). A combined
        // call that fails is retried request by request, so each batch gets its own result.
        var results: [ObjectIdentifier: Result<(Int64?, Bool), any Error>] = [:]
        let reads = requests.filter { $0.commit == nil }
        if !reads.isEmpty {
            if let all = try? consumer.committed(Array(Set(reads.map(\.tp))), timeout: .seconds(10)) {
                for r in reads { results[ObjectIdentifier(r)] = .success((all[r.tp]?.offset, owned.contains(r.tp))) }
            }
        }
        var commits: [TopicPartition: (offset: Int64, metadata: String?)] = [:]
        var committing: [Request] = []
        for r in requests {
            guard let c = r.commit else { continue }
            if !owned.contains(r.tp) {
                results[ObjectIdentifier(r)] = .success((nil, false))
            } else if commits[r.tp] == nil {
                commits[r.tp] = (c.offset, c.metadata)
                committing.append(r)
            }
        }
        if committing.count > 1, (try? consumer.commit(commits)) != nil {
            engine?.stats.lastCommitAt = .now  // poll thread: stats is its own
            for r in committing { results[ObjectIdentifier(r)] = .success((r.commit!.offset, true)) }
        }
        for r in requests {
            let result: Result<(Int64?, Bool), any Error>
            if let done = results[ObjectIdentifier(r)] {
                result = done
            } else if let c = r.commit {
                do {
                    try consumer.commit([r.tp: (c.offset, c.metadata)])
                    engine?.stats.lastCommitAt = .now
                    result = .success((c.offset, true))
                } catch let e as KafkaError where e.isGenerationMismatch {
                    result = .success((nil, false))
                } catch {
                    result = .failure(error)
                }
            } else {
                do {
                    let committed = try consumer.committed([r.tp], timeout: .seconds(10))
                    result = .success((committed[r.tp]?.offset, owned.contains(r.tp)))
                } catch {
                    result = .failure(error)
                }
            }
            r.result.withLock { $0 = result }
            r.done.signal()
        }
    }
}

extension Engine {
    /// `--check`: the manifest opened (lock, quick_check) in init; now the object store answers a
    /// listing and Kafka answers a metadata request for every configured topic.
    public func check() throws {
        _ = try store.listObjects(prefix: layout.prefix, startAfter: nil, continuationToken: nil, maxKeys: 1)
        let kc = KafkaConsumerConfig(bootstrapServers: config.kafka.brokers, groupID: config.kafka.groupID,
                                     topics: config.kafka.topics, properties: config.kafka.properties)
        let probe = try KafkaConsumer(config: kc, rebalanceHandler: nil, logger: logger)
        defer { try? probe.close(timeout: .seconds(5)) }
        for topic in config.kafka.topics where !topic.hasPrefix("^") {
            _ = try probe.watermarks(TopicPartition(topic: topic, partition: 0), cached: false, timeout: .seconds(10))
        }
        manifest.close()
    }
}
