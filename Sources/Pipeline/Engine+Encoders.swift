import Dispatch
import Foundation
import KafkaSource
import Logging
import Parquet
import Synchronization
import TidemarkConfig

/// Parsing and encoding on more than one core: encoder shards, each a thread with a queue of
/// jobs, own the assigned partitions between them; the poll thread polls, hands each poll's
/// records (held in librdkafka's buffers, not copied) to the shards' queues by partition, and
/// polls again without waiting, so that a poll one shard has more of evens out over the next.
///
/// Who may touch what:
/// - A partition's record-path state (open batch, position, skip and fence state) and its
///   writer belong to its shard's thread; the writer uses the shard's scratch, compression
///   thread and part of the memory budget, which may write any of the shard's writers' row
///   groups early, so a partition never changes shard while assigned.
/// - Whatever else must read or change that state (rebalance callbacks, re-seeks the upload
///   workers ask for, the status line, gauges, shutdown) first waits until every shard has
///   finished what it was given (``quiesce()``); until the poll thread hands out more, it has
///   the partitions to itself. Cuts by age and at the end of a partition are jobs on the shards'
///   queues instead, in order with the records.
/// - A seek a shard needs (a fence, the probe) is made by the poll thread; until then the
///   partition's records already handed out are skipped (the seek discards them, as librdkafka
///   discards what it prefetched), and the "seek made" job clears that, behind them in the queue.
extension Engine {
    /// One encoder shard: a thread, its queue, and the state it publishes for the poll thread.
    final class EncoderShard: @unchecked Sendable {
        // @unchecked Sendable: `tally` is the shard thread's own (the poll thread's while the
        // shards are quiesced); everything else shared is behind `queue`/`published`.
        let index: Int
        /// Page scratch, compression context and compression thread of this shard's writers,
        /// with its part of `[batch] memory_budget`.
        let scratch: ParquetWriterScratch
        /// Counted while handling a job; published when the job ends.
        var tally = Tally()
        private let queue = Mutex<[Job]>([])
        private let available = DispatchSemaphore(value: 0)
        let published = Mutex(Published())
        private var thread: Thread?

        enum Job {
            case records(HeldBatch, [Item])
            case run(@Sendable () -> Void)
            case stop
        }

        struct Item: @unchecked Sendable {
            // @unchecked Sendable: `state` is handed to its shard's thread with the item.
            let index: Int
            let tp: TopicPartition
            let state: PartitionState
        }

        /// What the shard hands to the poll thread.
        struct Published {
            var tally = Tally()
            var seeks: [(tp: TopicPartition, state: PartitionState, offset: Int64, why: String)] = []
            var fatalExit: Int32?
            var error: (any Error)?
        }

        init(index: Int, scratch: ParquetWriterScratch) {
            self.index = index
            self.scratch = scratch
        }

        func post(_ job: Job) {
            queue.withLock { $0.append(job) }
            available.signal()
        }

        func start(_ body: @escaping @Sendable (EncoderShard, Job) -> Bool) {
            let t = Thread { [self] in
                while true {
                    available.wait()
                    guard let job = queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
                    if !body(self, job) { return }
                }
            }
            t.name = "tidemark-encoder-\(index)"
            t.stackSize = 8 << 20
            thread = t
            t.start()
        }

        var isRunning: Bool { thread != nil }
        func stopped() { thread = nil }
    }

    /// One poll's records while shards handle them: released (and a slot freed for the next
    /// poll) when the last shard is done with it.
    final class HeldBatch: Sendable {
        let messages: HeldMessages
        private let remaining: Atomic<Int>
        private let slots: DispatchSemaphore

        init(_ messages: HeldMessages, shards: Int, slots: DispatchSemaphore) {
            self.messages = messages
            self.remaining = Atomic(shards)
            self.slots = slots
        }

        func shardDone() {
            if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                messages.release()
                slots.signal()
            }
        }
    }

    /// What a shard counted; added to ``Stats/handled`` by the poll thread (``collectTallies()``).
    struct Tally {
        var records = 0
        var rejected = 0
        var bytes = 0
        var batchesSealed = 0
        /// Time spent sealing (finishing the Parquet file, fsync, hash, manifest row): part of
        /// ``busyTime``.
        var sealTime = Duration.zero
        var firstRecordAt: ContinuousClock.Instant?
        /// Time spent handling records (parse, column append, cuts, seal).
        var busyTime = Duration.zero

        static func += (a: inout Tally, b: Tally) {
            a.records += b.records
            a.rejected += b.rejected
            a.bytes += b.bytes
            a.batchesSealed += b.batchesSealed
            a.sealTime += b.sealTime
            a.busyTime += b.busyTime
            if let f = b.firstRecordAt, a.firstRecordAt.map({ f < $0 }) ?? true { a.firstRecordAt = f }
        }
    }

    /// How many encoder shards to run: `[engine] encoder_threads`, or one per available core
    /// (at most 4) when it is 0.
    static func encoderCount(_ config: EngineConfig) -> Int {
        let configured = config.engine.encoderThreads
        return configured > 0 ? configured : max(1, min(4, ProcessInfo.processInfo.activeProcessorCount))
    }

    /// Polls handed to the shards and not finished yet, at most: the poll thread waits for a
    /// slot before it hands out another (bounding the records held outside librdkafka's queue).
    static let pollsInFlight = 3

    /// The shard a newly assigned partition joins: the one with the fewest partitions.
    func shardForNewPartition() -> Int {
        guard shards.count > 1 else { return 0 }
        var counts = [Int](repeating: 0, count: shards.count)
        for st in partitions.values { counts[st.shard] += 1 }
        return counts.indices.min { counts[$0] < counts[$1] } ?? 0
    }

    /// Starts the shards' threads (at the start of ``run(untilIdle:assignmentTimeout:)``).
    func startEncoders() {
        for shard in shards {
            shard.start { [unowned self] shard, job in
                switch job {
                case .records(let batch, let items):
                    self.handle(items, of: batch, in: shard)
                    batch.shardDone()
                case .run(let body):
                    body()
                case .stop:
                    return false
                }
                self.publish(shard)
                return true
            }
        }
    }

    /// Stops the shards' threads once they finished everything queued (at shutdown).
    func stopEncoders() {
        quiesce()
        for shard in shards where shard.isRunning {
            shard.post(.stop)
            shard.stopped()
        }
    }

    /// Hands the records held so far to the shards (poll thread). Waits for a free slot first,
    /// serving offset requests meanwhile.
    func dispatchHeld() {
        guard held.count > 0 else { return }
        let messages = held.takeAll()
        var work = [[EncoderShard.Item]](repeating: [], count: shards.count)
        for i in 0..<messages.count {
            guard let (tp, st) = messages.withMessage(at: i, { state(of: $0) }) else { continue }
            work[st.shard].append(.init(index: i, tp: tp, state: st))
        }
        let busy = work.indices.filter { !work[$0].isEmpty }
        stats.polls += 1
        if busy.count > 1 { stats.sharedPolls += 1 }
        guard !busy.isEmpty else { messages.release(); return }
        while pollSlots.wait(timeout: .now() + .milliseconds(5)) == .timedOut {
            offsets.serve()
            metrics.health.beat()
        }
        let batch = HeldBatch(messages, shards: busy.count, slots: pollSlots)
        for s in busy { shards[s].post(.records(batch, work[s])) }
    }

    /// Waits until every shard has finished everything it was given (poll thread): afterwards,
    /// until it hands out more, the poll thread may read and change any partition's state.
    /// Offset requests are served while waiting.
    func quiesce() {
        let running = shards.filter(\.isRunning)
        guard !running.isEmpty else { return }
        let done = DispatchSemaphore(value: 0)
        for shard in running { shard.post(.run { done.signal() }) }
        for _ in running {
            while done.wait(timeout: .now() + .milliseconds(5)) == .timedOut {
                offsets.serve()
                metrics.health.beat()
            }
        }
        collectTallies()
    }

    /// Records polled before a rebalance event are handled before it, as with one thread:
    /// the shards finish what they have, then the poll thread handles what it holds itself.
    /// Called first in the rebalance callbacks (inside the poll); an error is kept and thrown
    /// after the poll returns.
    func flushHeldForRebalance() {
        quiesce()
        let messages = held.takeAll()
        defer { messages.release() }
        for i in 0..<messages.count {
            guard let (tp, st) = messages.withMessage(at: i, { state(of: $0) }) else { continue }
            let shard = shards[st.shard]
            guard shard.published.withLock({ $0.error == nil }) else { continue }
            do {
                try messages.withMessage(at: i) { try handle($0, tp, st, in: shard) }
            } catch {
                shard.published.withLock { $0.error = $0.error ?? error }
            }
        }
        for shard in shards { publish(shard) }
        makeRequestedSeeks(quiesced: true)
        do { try takeShardOutcomes() } catch { if heldError == nil { heldError = error } }
    }

    /// Shard thread: one poll's records of this shard's partitions.
    private func handle(_ items: [EncoderShard.Item], of batch: HeldBatch, in shard: EncoderShard) {
        guard shard.published.withLock({ $0.error == nil }) else { return }
        let started = ContinuousClock.now
        defer { shard.tally.busyTime += ContinuousClock.now - started }
        for item in items {
            do {
                try batch.messages.withMessage(at: item.index) { try handle($0, item.tp, item.state, in: shard) }
            } catch {
                shard.published.withLock { $0.error = $0.error ?? error }
                return
            }
        }
    }

    /// Shard thread (or the poll thread while quiesced): hands the job's tallies over.
    func publish(_ shard: EncoderShard) {
        let t = shard.tally
        shard.tally = Tally()
        shard.published.withLock { $0.tally += t }
    }

    /// Posts the age cut (and, with `drained`, the end-of-partition cut of `--until-idle`) to
    /// every shard, behind the records already handed out (poll thread).
    func postCuts(drained: Set<TopicPartition>?) {
        let now = ContinuousClock.now
        for shard in shards where shard.isRunning {
            let index = shard.index
            shard.post(.run { [unowned self] in
                do {
                    try self.cutAgedBatches(shard: index, now: now)
                    if let drained { try self.sealDrainedPartitions(shard: index, drained: drained, now: now) }
                } catch {
                    self.shards[index].published.withLock { $0.error = $0.error ?? error }
                }
            })
        }
    }

    /// The seeks the shards asked for, made by the poll thread; each partition's "seek made" is
    /// queued behind the records handed out before it (or, `quiesced`, cleared at once).
    func makeRequestedSeeks(quiesced: Bool = false) {
        for shard in shards {
            let seeks = shard.published.withLock { p in defer { p.seeks.removeAll() }; return p.seeks }
            for s in seeks where partitions[s.tp] === s.state {
                seekConsumer(s.tp, to: s.offset)
                let st = s.state
                if quiesced || !shard.isRunning {
                    st.seekPending = false
                } else {
                    shard.post(.run { st.seekPending = false })
                }
            }
        }
    }

    /// The shards' fatal exits and errors, taken by the poll thread: a fatal exit is kept, the
    /// first error (a ``PermanentStoreError`` first) is thrown.
    func takeShardOutcomes() throws {
        var first: (any Error)?
        for shard in shards {
            let (fatal, error) = shard.published.withLock { p in
                defer { p.fatalExit = nil; p.error = nil }
                return (p.fatalExit, p.error)
            }
            if let fatal { fatalExit = fatalExit ?? fatal }
            if let e = error, first == nil || (e is PermanentStoreError && !(first is PermanentStoreError)) { first = e }
        }
        if let first { throw first }
    }

    /// Adds what the shards published to the run's stats (poll thread).
    func collectTallies() {
        for shard in shards {
            let t = shard.published.withLock { p in defer { p.tally = Tally() }; return p.tally }
            stats.handled += t
        }
    }
}
