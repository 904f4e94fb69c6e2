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

/// Events from upload workers and the consumer group's rebalance callbacks (poll thread).
extension Engine {
    func drainEvents() {
        let drained = events.drain()
        // A re-seek changes the partition's record-path state: the shards finish first.
        // Seeks the shards asked for meanwhile are older than these: made first, in order.
        if drained.contains(where: { if case .reseek = $0 { return true } else { return false } }) {
            quiesce()
            makeRequestedSeeks(quiesced: true)
        }
        for event in drained {
            switch event {
            case .reseek(let tp, let offset, let why):
                guard let st = partitions[tp] else {
                    scheduler.reread(tp, from: offset)   // not ours any more; a later assignment starts afresh
                    continue
                }
                st.knownRanges.removeAll { $0.lowerBound >= offset || $0.contains(offset) }
                seek(tp, st, to: offset, why: why)
                scheduler.reread(tp, from: offset)
            case .batchDone:
                break
            case .fatal(let e):
                stopFatally(e)
            }
        }
    }

    // MARK: Rebalance (poll thread, inside poll)

    func onAssigned(_ tps: [TopicPartition]) -> [TopicPartition: Int64] {
        flushHeldForRebalance()
        var starts: [TopicPartition: Int64] = [:]
        let read = try? consumer.committed(tps, timeout: .seconds(30))
        let committed = read ?? [:]
        for tp in tps {
            // The partition's chain starts at the committed offset; when it could not be read,
            // the partition machine asks again before any batch of it is uploaded.
            if read != nil { scheduler.assigned(tp, committed: committed[tp]?.offset) } else { scheduler.resetChain(tp) }
            let st = PartitionState(shard: partitions[tp]?.shard ?? shardForNewPartition())
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
                "starts_at": "\(position.map { "the committed offset \($0)" } ?? (read == nil ? "unknown: the committed offset could not be read; librdkafka asks again" : "no committed offset for the group: auto_offset_reset = \(config.kafka.autoOffsetReset) (the log's \(["latest", "largest", "end"].contains(config.kafka.autoOffsetReset) ? "end" : "beginning"))"))",
                "manifest_batches_ahead": "\(st.knownRanges.count)"])
        }
        offsets.setOwned(Set(partitions.keys))
        lastActivity = .now
        everAssigned = true
        return starts
    }

    func onRevoked(_ tps: [TopicPartition]) {
        flushHeldForRebalance()
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
    func waitForReassignment() {
        lastActivity = .now
        if partitions.isEmpty { everAssigned = false }
    }

    func onLost(_ tps: [TopicPartition]) {
        flushHeldForRebalance()
        for tp in tps {
            partitions[tp]?.open?.discard()
            partitions[tp] = nil
        }
        offsets.setOwned(Set(partitions.keys))
        waitForReassignment()
        logger.warning("partitions lost (not committing for them)", metadata: ["partitions": "\(tps)"])
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
