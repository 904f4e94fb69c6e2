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

/// The cut policy (size, age, end of partition, shutdown) and backpressure: when a batch is
/// sealed and staged, and when a partition is paused.
extension Engine {
    /// Seals `tp`'s open batch: stages the file, records it in the manifest and queues its upload.
    /// Runs on the partition's encoder shard (or on the poll thread while the shards are quiesced).
    func seal(_ tp: TopicPartition, _ st: PartitionState, reason: String) throws {
        guard let batch = st.open else { return }
        st.open = nil
        st.drainWatch = DrainWatch()  // the next batch's end-of-partition cut starts afresh
        guard batch.recordCount > 0 else { batch.discard(); return }
        let sealStarted = ContinuousClock.now
        let shard = shards[st.shard]
        defer { shard.tally.sealTime += ContinuousClock.now - sealStarted }
        let key = layout.objectKey(topic: tp.topic, partition: tp.partition, start: batch.startOffset, times: st.openTimes)
        let rejectedKey = batch.rejectedCount > 0
            ? layout.rejectedKey(topic: tp.topic, partition: tp.partition, start: batch.startOffset, end: batch.endOffset,
                                 times: st.openTimes) : nil
        // A file cannot carry its own hash: key_value_metadata has every batch fact but the
        // sha256, which the object metadata (and the manifest) carry.
        var kv: [(key: String, value: String)] = [
            (BatchMetadataKey.topic, tp.topic), (BatchMetadataKey.partition, String(tp.partition)),
            (BatchMetadataKey.start, String(batch.startOffset)), (BatchMetadataKey.end, String(batch.endOffset)),
            (BatchMetadataKey.records, String(batch.goodCount)), (BatchMetadataKey.rejected, String(batch.rejectedCount)),
            (BatchMetadataKey.engineVersion, tidemarkVersion),
            (BatchMetadataKey.schema, batch.layout.description.json),
            (BatchMetadataKey.schemaFingerprint, batch.layout.description.fingerprint),
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
        shard.tally.batchesSealed += 1
        metrics.batchOutcome("staged")
        metrics.sealed(batchID: id, tp: tp, duration: ContinuousClock.now - sealStarted,
                       kafkaMillis: st.lastKafkaMillis, eventMicros: st.lastEventMicros)
        logger.debug("batch staged", metadata: ["batch": "\(id)", "partition": "\(tp)", "start": "\(batch.startOffset)",
                                               "end": "\(batch.endOffset)", "bytes": "\(sealed.size)", "reason": "\(reason)"])
        if let record = try manifest.batch(id: id) {
            scheduler.enqueue(record, freshlyStaged: true)
        }
    }

    /// Seals every open batch (poll thread, shards quiesced).
    func sealAll(reason: String) throws {
        quiesce()
        for (tp, st) in partitions where st.open != nil {
            try seal(tp, st, reason: reason)
        }
    }

    /// Seals the open batches of `shard`'s partitions that reached `[batch] max_age` (shard thread).
    func cutAgedBatches(shard: Int, now: ContinuousClock.Instant) throws {
        for (tp, st) in partitions where st.shard == shard {
            guard let open = st.open, now - open.openedAt >= config.batch.maxAge else { continue }
            try seal(tp, st, reason: "age")
        }
    }

    /// `--until-idle` (a catch-up run that exits once drained): a partition that has been at its
    /// end with no record read for 250 ms seals its open batch instead of waiting for the idle
    /// limit or `max_age` (``DrainWatch``), so the run's last commit follows its last record. A
    /// continuously running engine cuts by size and age only. Shard thread, for `shard`'s
    /// partitions; `drained` is the consumer's end-of-partition set when the poll thread posted
    /// this job, and the records it polled before were handled before it (same queue).
    func sealDrainedPartitions(shard: Int, drained: Set<TopicPartition>, now: ContinuousClock.Instant) throws {
        for (tp, st) in partitions where st.shard == shard && st.open != nil {
            if st.drainWatch.observe(atEnd: drained.contains(tp), lastOffset: st.lastOffset, now: now) {
                try seal(tp, st, reason: "end of partition")
            }
        }
    }

    // MARK: Backpressure

    /// Pauses a partition while it has `max_in_flight` sealed, uncommitted batches, and every
    /// partition while staged bytes exceed `staging.max_bytes`; resumes when they drain.
    func applyBackpressure() throws {
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
            for tp in toPause { if let st = partitions[tp] { st.paused = true } }
            logger.debug("paused (backpressure)", metadata: ["partitions": "\(toPause)", "staging_full": "\(stagingFull)"])
        }
        if !toResume.isEmpty {
            try consumer.resume(toResume)
            for tp in toResume { if let st = partitions[tp] { st.paused = false } }
        }
    }
}
