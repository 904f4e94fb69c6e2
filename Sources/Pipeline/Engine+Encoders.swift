import Dispatch
import Foundation
import KafkaSource
import Logging
import Parquet
import TidemarkConfig

/// Parsing and encoding on more than one core: each poll's records are held (not copied), split
/// by partition among the encoder shards, and handled by every shard at once; the poll thread
/// takes part and waits for the others before it touches the consumer again.
///
/// A partition with an open batch stays with one shard, so its writer, the shard's scratch
/// buffers, compression thread and memory budget (which may write any of the shard's writers'
/// row groups early) are only ever used by one thread at a time. A partition without an open
/// batch goes, at each poll, to the shard with the least to do in that poll. What a shard may not do on
/// its own thread is deferred to the poll thread after the join: seeks (the consumer belongs to
/// the poll thread) and the tallies of the run summary. Rebalance callbacks, which run inside
/// the poll, first handle the records polled before them (``flushHeldForRebalance()``), so the
/// order of records and rebalance events is the same as with one thread.
extension Engine {
    /// One encoder shard's own state: touched by the thread handling the shard during a fork, by
    /// the poll thread otherwise.
    final class EncoderShard: @unchecked Sendable {
        // @unchecked Sendable: used by one thread at a time (the fork hands it over and the
        // join takes it back, with DispatchQueue.concurrentPerform's happens-before).
        let index: Int
        /// Page scratch, compression context and compression thread of this shard's writers,
        /// with its share of `[batch] memory_budget`.
        let scratch: ParquetWriterScratch
        /// The records this shard handles in the current fork: indexes into `held`, with their
        /// partition and its state (looked up on the poll thread).
        var work: [(index: Int, tp: TopicPartition, state: PartitionState)] = []
        var tally = Tally()
        /// Seeks asked for while handling records; the poll thread makes them after the join.
        var seeks: [(tp: TopicPartition, state: PartitionState, offset: Int64, why: String)] = []
        /// The exit code a fatal condition (data loss with `on_data_loss = fail`) set.
        var fatalExit: Int32?
        /// The first error handling stopped at.
        var error: (any Error)?

        init(index: Int, scratch: ParquetWriterScratch) {
            self.index = index
            self.scratch = scratch
        }
    }

    /// What a shard counted; added to ``Stats`` by the poll thread (``collectTallies()``).
    struct Tally {
        var records = 0
        var rejected = 0
        var bytes = 0
        var batchesSealed = 0
        var sealTime = Duration.zero
        var firstRecordAt: ContinuousClock.Instant?
        /// Time spent handling records (parse, append, cut, seal).
        var busyTime = Duration.zero
    }

    /// How many encoder shards to run: `[engine] encoder_threads`, or one per available core
    /// (at most 4) when it is 0.
    static func encoderCount(_ config: EngineConfig) -> Int {
        let configured = config.engine.encoderThreads
        return configured > 0 ? configured : max(1, min(4, ProcessInfo.processInfo.activeProcessorCount))
    }

    /// The shard a newly assigned partition starts with: the one with the fewest partitions
    /// (``processHeld()`` may move it while it has no open batch).
    func shardForNewPartition() -> Int {
        guard shards.count > 1 else { return 0 }
        var counts = [Int](repeating: 0, count: shards.count)
        for st in partitions.values { counts[st.shard] += 1 }
        return counts.indices.min { counts[$0] < counts[$1] } ?? 0
    }

    /// Handles every held record, on all shards at once when there is enough to share, then
    /// releases them and makes the seeks the shards asked for. Poll thread.
    /// - Throws: the first error a shard stopped at (a ``PermanentStoreError`` first).
    func processHeld() throws {
        let n = held.count
        guard n > 0 else { return }
        defer { held.release() }
        for shard in shards { shard.work.removeAll(keepingCapacity: true) }
        // Who handles which partition this time: a partition with an open batch stays with the
        // shard whose scratch its writer uses; the others are free, and go, busiest first, to
        // the shard with the least to do (records of this poll).
        pollRound &+= 1
        var items: [(index: Int, tp: TopicPartition, state: PartitionState)] = []
        items.reserveCapacity(n)
        var free: [PartitionState] = []
        var load = [Int](repeating: 0, count: shards.count)
        for i in 0..<n {
            guard let (tp, st) = held.withMessage(at: i, { state(of: $0) }), !st.halted else { continue }
            if st.round != pollRound {
                st.round = pollRound
                st.inPoll = 0
                if st.open == nil && shards.count > 1 { free.append(st) }
            }
            st.inPoll += 1
            items.append((i, tp, st))
        }
        if !free.isEmpty {
            let freeIDs = Set(free.map(ObjectIdentifier.init))
            for item in items where !freeIDs.contains(ObjectIdentifier(item.state)) { load[item.state.shard] += 1 }
            for st in free.sorted(by: { $0.inPoll > $1.inPoll }) {
                let target = load.indices.min { load[$0] < load[$1] } ?? 0
                st.shard = target
                load[target] += st.inPoll
            }
        }
        for item in items { shards[item.state.shard].work.append(item) }
        let busy = shards.filter { !$0.work.isEmpty }
        if busy.count <= 1 || n < Self.minimumRecordsToShare {
            for shard in busy { handleWork(of: shard) }
        } else {
            stats.sharedPolls += 1
            DispatchQueue.concurrentPerform(iterations: busy.count) { self.handleWork(of: busy[$0]) }
        }
        stats.polls += 1
        try finishFork()
    }

    /// Below this many records a poll is handled on the poll thread alone: waking another
    /// thread costs more than it saves.
    static let minimumRecordsToShare = 256

    /// Records polled before a rebalance event are handled before it, as with one thread.
    /// Called first in the rebalance callbacks (inside the poll); an error is kept and thrown
    /// after the poll returns.
    func flushHeldForRebalance() {
        do { try processHeld() } catch { if heldError == nil { heldError = error } }
    }

    private func handleWork(of shard: EncoderShard) {
        let started = ContinuousClock.now
        defer { shard.tally.busyTime += ContinuousClock.now - started }
        for item in shard.work where shard.error == nil {
            do {
                try held.withMessage(at: item.index) { try handle($0, item.tp, item.state, in: shard) }
            } catch {
                shard.error = error
            }
        }
    }

    /// After a fork (poll thread): the shards' tallies, fatal exits and seeks; then their errors.
    private func finishFork() throws {
        collectTallies()
        var first: (any Error)?
        for shard in shards {
            if let e = shard.fatalExit { fatalExit = fatalExit ?? e; shard.fatalExit = nil }
            let seeks = shard.seeks
            shard.seeks.removeAll()
            for s in seeks where partitions[s.tp] === s.state {
                s.state.seekPending = false
                seekConsumer(s.tp, to: s.offset)
            }
            if let e = shard.error {
                if first == nil || (e is PermanentStoreError && !(first is PermanentStoreError)) { first = e }
                shard.error = nil
            }
        }
        if let first { throw first }
    }

    /// Adds what the shards counted to the run's stats (poll thread, no fork running).
    func collectTallies() {
        for shard in shards {
            let t = shard.tally
            stats.records += t.records
            stats.rejected += t.rejected
            stats.bytes += t.bytes
            stats.batchesSealed += t.batchesSealed
            stats.sealTime += t.sealTime
            stats.encoderBusyTime += t.busyTime
            if let f = t.firstRecordAt, stats.firstRecordAt.map({ f < $0 }) ?? true { stats.firstRecordAt = f }
            shard.tally = Tally()
        }
    }
}
