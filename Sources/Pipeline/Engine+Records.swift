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

/// The poll thread's record path: each record to its partition's open batch, the probe at a
/// chain position, seeks past delivered ranges.
extension Engine {
    /// The state of `message`'s partition, or nil when it is not (or no longer) assigned.
    func state(of message: borrowing KafkaMessageView) -> (TopicPartition, PartitionState)? {
        if let last = lastHandled, last.tp.partition == message.partition, last.tp.topic == message.topic {
            return last
        }
        let tp = message.topicPartition
        guard let st = partitions[tp] else { return nil }
        lastHandled = (tp, st)
        return (tp, st)
    }

    /// Handles one record of `tp` (state `st`) on `shard`'s thread (or the poll thread while the
    /// shards are quiesced): what it touches is the partition's own state, the shard's, and
    /// thread-safe services (manifest, store, scheduler, metrics, cached watermarks).
    func handle(_ message: borrowing KafkaMessageView, _ tp: TopicPartition, _ st: PartitionState, in shard: EncoderShard) throws {
        // After a seek, the partition's records handed out before it is made are not wanted: the
        // seek discards what librdkafka prefetched, these included.
        guard !st.halted, !st.seekPending else { return }
        let offset = message.offset
        // A record at or below what the open batch already holds (or, with none open, below the
        // chain position) is one librdkafka handed over again: a fetch answered after a seek
        // that timed out under load. It is in a batch already; adding it would break the batch's
        // order (found by make test: the failpoint matrix's restart trapped on a record from
        // before its seek).
        if let open = st.open {
            if offset <= open.endOffset { return }
        } else if let p = st.position, offset < p {
            return
        }
        if let open = st.open, offset > open.endOffset + 1,
           let w = try? consumer.watermarks(tp, cached: true, timeout: .zero), w.low > open.endOffset + 1 {
            // Records between the open batch's last one and this one were deleted by retention
            // before they were read (the consumer fell below the log start and was reset). The
            // open batch ends at its last record; the chain restarts after the hole.
            let lost = (open.endOffset + 1)...(min(w.low, offset) - 1)
            try seal(tp, st, reason: "records lost to retention follow")
            st.position = lost.upperBound + 1
            guard dataLoss(tp, st, lost, logStart: w.low, in: shard) else { return }
        }
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
            seek(tp, st, to: r.upperBound + 1, why: "offsets \(r) belong to a batch in the manifest", in: shard)
            return
        }
        // The record's path facts: its Kafka timestamp, and its event time when the layout reads
        // it. With a time-varying template, a record of another path cuts the open batch (a
        // record without event time never does: it joins the open batch).
        let ts = message.timestamp.milliseconds
        var times = PathTemplate.Times(eventMicros: nil, kafkaMillis: ts)
        var bucket: PathTemplate.Bucket?
        // Parsed here once when the path needs the event time; the batch then takes the result.
        var parsed: Result<ParsedRecord, RejectReason>?
        if let template = layout.template, template.usesTime {
            if template.usesEventTime {
                let p = message.withValue { parser.parse($0) }
                parsed = p
                times.eventMicros = (try? p.get())?.eventTimeMicros
            }
            let b = template.bucket(times)
            bucket = b
            if st.open != nil, st.openBucket != b, times.eventMicros != nil || !template.usesEventTime {
                try seal(tp, st, reason: "path")
            }
        }
        if st.open == nil {
            var start = st.position ?? offset
            if st.needsProbe && offset > start,
               let w = try? consumer.watermarks(tp, cached: false, timeout: .seconds(5)), w.low > start {
                // The first record after the chain position lies beyond the log start: the
                // offsets in between were deleted by retention before they were delivered (the
                // committed offset fell out of range and librdkafka reset to the earliest). Other
                // gaps at a batch start are transaction markers or compaction: the batch covers them.
                let lost = start...(min(w.low, offset) - 1)
                start = lost.upperBound + 1
                st.position = start
                guard dataLoss(tp, st, lost, logStart: w.low, in: shard) else { return }
            }
            if st.needsProbe {
                let key = layout.objectKey(topic: tp.topic, partition: tp.partition, start: start, times: times)
                if let head = try probe(key), let end = head.metadata[BatchMetadataKey.end].flatMap({ Int64($0) }), end >= start {
                    logger.info("object already holds this start offset; skipping past it",
                                metadata: ["key": "\(key)", "end": "\(end)"])
                    scheduler.objectFound(tp, start: start, end: end)
                    seek(tp, st, to: end + 1, why: "probe found \(key)", in: shard)
                    return
                }
                st.needsProbe = false
            }
            let dir = stagingDir + "/\(tp.topic)/\(tp.partition)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            st.open = try StagedBatchWriter(directory: dir, topic: tp.topic, partition: tp.partition,
                                            startOffset: start, startTimestampMillis: ts, options: rowGroupOptions(),
                                            shared: shard.scratch, layout: parser.layout)
            st.openTimes = times
            st.openBucket = bucket
        }
        let batch = st.open!
        let before = batch.rejectedCount
        if let parsed {
            try message.withValue { try batch.add(message, value: $0, parsed: parsed, ingestMicros: pollIngestMicros) }
        } else {
            try batch.add(message, parser: parser, ingestMicros: pollIngestMicros)
        }
        if shard.tally.firstRecordAt == nil { shard.tally.firstRecordAt = .now }
        shard.tally.records += 1
        shard.tally.bytes += message.valueCount
        if batch.rejectedCount > before {
            shard.tally.rejected += 1
        }
        st.lastOffset = offset
        st.lastKafkaMillis = ts
        if let e = times.eventMicros { st.lastEventMicros = e }
        let fenceNext = st.knownRanges.first.map { $0.lowerBound == offset + 1 } ?? false
        if batch.recordCount >= config.batch.maxRecords || batch.inputBytes >= config.batch.maxBytes || fenceNext {
            try seal(tp, st, reason: fenceNext ? "fence" : "size")
        }
    }

    /// HEAD under the engine's one retry loop: the probe decides whether data is written twice,
    /// so it never guesses; a permanent refusal stops the engine (``PermanentStoreError``).
    func probe(_ key: String) throws -> ObjectInfo? {
        // Waiting out store retries is not a hung poll loop: each attempt beats /healthz.
        try executor.withRetry("probe \(key)", logger: logger, alsoStop: { metrics.health.beat(); return stopRequested.load(ordering: .relaxed) }) {
            try store.headObject(key: key)
        }
    }

    /// Offsets `lost` of `tp` were deleted by retention before they were delivered: recorded in
    /// the manifest (etl-audit reports them), logged as an error naming the range, counted. With
    /// `[kafka] on_data_loss = "fail"` the partition stops here (nothing past the hole is
    /// committed) and the engine exits with ``EngineExit/dataLoss``; returns whether to go on.
    func dataLoss(_ tp: TopicPartition, _ st: PartitionState, _ lost: ClosedRange<Int64>, logStart: Int64,
                  in shard: EncoderShard) -> Bool {
        let count = lost.upperBound - lost.lowerBound + 1
        metrics.dataLoss(records: count)
        let fail = config.kafka.onDataLoss == "fail"
        let detail = "deleted by retention before delivery (log start \(logStart)); on_data_loss = \(config.kafka.onDataLoss)"
        do {
            try manifest.recordLoss(topic: tp.topic, partition: tp.partition, start: lost.lowerBound, end: lost.upperBound, detail: detail)
        } catch {
            logger.error("cannot record the loss in the manifest", metadata: ["error": "\(error)"])
        }
        logger.error("records deleted by retention before they were delivered", metadata: [
            "topic": "\(tp.topic)", "partition": "\(tp.partition)", "lost": "\(lost.lowerBound)...\(lost.upperBound)",
            "records": "\(count)", "log_start": "\(logStart)",
            "action": "\(fail ? "stopping (on_data_loss = fail): nothing past the hole is committed; set on_data_loss = \"report\" to go on" : "going on after the hole (on_data_loss = report)")"])
        guard fail else {
            scheduler.lost(tp, start: lost.lowerBound, end: lost.upperBound)
            return true
        }
        st.halted = true
        shard.published.withLock { $0.fatalExit = EngineExit.dataLoss }
        metrics.health.setFatal("records of \(tp) deleted by retention before delivery (on_data_loss = fail)")
        requestStop()
        return false
    }

    /// Moves `tp`'s chain position to `offset` and discards its open batch. With `shard` (record
    /// handling on the partition's encoder shard) the consumer's seek is made by the poll thread
    /// later (``makeRequestedSeeks(quiesced:)``), and the partition's records handed out before
    /// it are skipped; without, at once (poll thread, shards quiesced).
    func seek(_ tp: TopicPartition, _ st: PartitionState, to offset: Int64, why: String, in shard: EncoderShard? = nil) {
        st.open?.discard()
        st.open = nil
        st.skipUntil = offset
        st.position = offset
        st.needsProbe = true
        st.knownRanges.removeAll { $0.upperBound < offset }
        logger.info("seek", metadata: ["partition": "\(tp)", "offset": "\(offset)", "why": "\(why)"])
        if let shard {
            st.seekPending = true
            shard.published.withLock { $0.seeks.append((tp, st, offset, why)) }
        } else {
            seekConsumer(tp, to: offset)
        }
    }

    /// The consumer's part of a seek (poll thread).
    func seekConsumer(_ tp: TopicPartition, to offset: Int64) {
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

    /// Writer options for a new batch: a row group of at most an equal share of the memory
    /// budget (1 MiB to 32 MiB), pages no larger than a quarter of it. The 1 MiB floor keeps row
    /// groups readable when many partitions are assigned; the budget itself holds across all
    /// open batches through the shards' scratches (``ParquetMemoryBudget``), which write the
    /// largest row groups early when a shard's open batches buffer more than its part.
    func rowGroupOptions() -> ParquetWriterOptions {
        var options = parquetOptions
        let share = config.batch.memoryBudget / max(1, partitions.count)
        options.rowGroupMaxBytes = min(options.rowGroupMaxBytes, max(1 << 20, share))
        options.dataPageMaxBytes = min(options.dataPageMaxBytes, max(256 << 10, options.rowGroupMaxBytes / 4))
        return options
    }
}
