import Foundation
import KafkaSource
import Logging
import Manifest
import ObjectStore
import Synchronization

/// Runs sealed batches through the ``BatchExecutor`` on a few worker threads, one batch at a
/// time per partition and in offset order within a partition (so offsets are committed in
/// order), several partitions at once.
///
/// Which batch of a partition may go next is decided by the partition's ``PartitionMachine``:
/// a batch at the chain frontier is uploaded, one behind it may only find its own object, one
/// ahead of it waits for the offsets in between, and after a batch ends ABANDONED or SUPERSEDED
/// the partition's later batches are abandoned until the poll thread has re-seeked (the owner is
/// told where to re-read from through `onReseek`).
final class UploadScheduler: Sendable {
    struct State {
        var queues: [TopicPartition: [BatchRecord]] = [:]
        var busy: Set<TopicPartition> = []
        var queuedIDs: Set<Int64> = []
        var stagedBytes: Int64 = 0
        var stopping = false
        var committedBatches = 0
        /// Batches this process just staged (and hashed while writing): their files need no re-hash
        /// before upload. A batch from the manifest (a restart, a re-queue) is verified.
        var fresh: Set<Int64> = []
        /// One partition machine per partition with queued work.
        var machines: [TopicPartition: PartitionMachine] = [:]
        /// Batches queued again while a worker was driving them (e.g. by the assignment, while
        /// the start-up drive was still running): if that drive ends without finishing the batch
        /// (not owned yet, or an error), it is queued again from the manifest.
        var requeue: Set<Int64> = []
    }

    /// What a worker does next.
    enum Work {
        case drive(TopicPartition, BatchRecord, coveredThrough: Int64?, fresh: Bool)
        case readCommitted(TopicPartition)
        case abandon(TopicPartition, BatchRecord, reason: String)
    }
    private let state = Mutex(State())
    private let wakeup = DispatchSemaphore(value: 0)
    let executor: BatchExecutor
    let logger: Logger
    /// Called (from a worker thread) when a partition must be re-read from an offset.
    let onReseek: @Sendable (TopicPartition, Int64, String) -> Void
    /// Called (from a worker thread) after each batch finishes, whatever the outcome.
    let onBatchDone: @Sendable (BatchRecord, BatchStateMachine.Outcome?) -> Void
    /// Called (from a worker thread) when the store refused a step permanently.
    let onFatal: @Sendable (PermanentStoreError) -> Void
    private let threads: Int

    init(executor: BatchExecutor, workers: Int, logger: Logger,
         onReseek: @escaping @Sendable (TopicPartition, Int64, String) -> Void,
         onBatchDone: @escaping @Sendable (BatchRecord, BatchStateMachine.Outcome?) -> Void,
         onFatal: @escaping @Sendable (PermanentStoreError) -> Void = { _ in }) {
        self.executor = executor
        self.logger = logger
        self.onReseek = onReseek
        self.onBatchDone = onBatchDone
        self.onFatal = onFatal
        self.threads = max(1, workers)
    }

    func start() {
        for i in 0..<threads {
            let t = Thread { [self] in self.workerLoop() }
            t.name = "tidemark-upload-\(i)"
            t.start()
        }
    }

    /// Queues a batch (ignored when it is already queued or running). A freshly sealed batch of
    /// a partition whose chain is broken (and not re-read yet) is abandoned instead: it was read
    /// before the poll thread re-seeked, so it follows the range that is read again.
    func enqueue(_ b: BatchRecord, freshlyStaged: Bool = false) {
        let tp = TopicPartition(topic: b.topic, partition: b.partition)
        if freshlyStaged, let broken = state.withLock({ $0.machines[tp]?.brokenAt }), b.endOffset >= broken {
            abandonFollowers([b], reason: "sealed after an earlier batch of the partition was abandoned or superseded")
            return
        }
        let added = state.withLock { s -> Bool in
            guard !s.queuedIDs.contains(b.id) else {
                // Running now (taken off its queue): remember the request instead of dropping it.
                if !(s.queues[tp] ?? []).contains(where: { $0.id == b.id }) { s.requeue.insert(b.id) }
                return false
            }
            s.queuedIDs.insert(b.id)
            if freshlyStaged { s.fresh.insert(b.id) }
            s.queues[tp, default: []].append(b)
            s.queues[tp]!.sort { $0.startOffset < $1.startOffset }
            s.stagedBytes += b.fileSize + (b.rejectedSize ?? 0)
            return true
        }
        if added { wakeup.signal() }
    }

    /// Batches queued or running for `tp`.
    /// Batches queued or running for `tp`, except while its first batch waits for offsets before
    /// it (those are read by the poll thread: pausing the partition for them would never let the
    /// hole be filled).
    func pending(_ tp: TopicPartition) -> Int {
        state.withLock { s in
            let q = s.queues[tp] ?? []
            return (Self.waits(tp, q, s) ? 0 : q.count) + (s.busy.contains(tp) ? 1 : 0)
        }
    }

    /// Batches queued or running in total, except those that wait for offsets before them to
    /// be delivered (see ``waitingTotal``).
    var pendingTotal: Int {
        state.withLock { s in
            s.queues.reduce(0) { n, e in n + (Self.waits(e.key, e.value, s) ? 0 : e.value.count) } + s.busy.count
        }
    }

    /// Batches that wait for the offsets before them (their partition's chain has a hole this
    /// process has not filled: e.g. a partition it does not own). They stay in the manifest for
    /// the partition's owner or the next start.
    var waitingTotal: Int {
        state.withLock { s in s.queues.reduce(0) { n, e in n + (Self.waits(e.key, e.value, s) ? e.value.count : 0) } }
    }

    private static func waits(_ tp: TopicPartition, _ q: [BatchRecord], _ s: State) -> Bool {
        guard let b = q.first, !s.busy.contains(tp), var m = s.machines[tp] else { return false }
        if case .wait = m.decide(start: b.startOffset, end: b.endOffset, state: b.state) { return true }
        return false
    }

    /// Bytes of the staged files of queued and running batches, except those that wait for
    /// offsets before them (see ``pending(_:)``).
    var stagedBytes: Int64 {
        state.withLock { s in
            s.stagedBytes - s.queues.reduce(0) { n, e in
                n + (Self.waits(e.key, e.value, s) ? e.value.reduce(0) { $0 + $1.fileSize + ($1.rejectedSize ?? 0) } : 0)
            }
        }
    }
    var committedBatches: Int { state.withLock { $0.committedBatches } }

    /// The poll thread re-seeked `tp` to `offset` after a broken chain: new batches are valid again.
    func reread(_ tp: TopicPartition, from offset: Int64) {
        state.withLock { _ = $0.machines[tp]?.apply(.reread(from: offset)) }
        wakeup.signal()
    }

    /// The poll thread's probe found an object holding `[start, end]` of `tp`.
    func objectFound(_ tp: TopicPartition, start: Int64, end: Int64) {
        state.withLock { _ = $0.machines[tp]?.apply(.objectFound(start: start, end: end)) }
        wakeup.signal()
    }

    /// Offsets `[start, end]` of `tp` were lost to retention and the engine goes on past them.
    func lost(_ tp: TopicPartition, start: Int64, end: Int64) {
        state.withLock { _ = $0.machines[tp, default: PartitionMachine()].apply(.lost(start: start, end: end)) }
        wakeup.signal()
    }

    /// `tp` was (re)assigned, but its committed offset could not be read: a break is healed (the
    /// owner reads from the committed offset) and the frontier kept.
    func resetChain(_ tp: TopicPartition) {
        state.withLock { s in
            if var m = s.machines[tp] {
                m.apply(.assigned(committed: nil))
                s.machines[tp] = m
            }
        }
    }

    /// `tp` was (re)assigned with Kafka's committed offset `committed`. The machine keeps what
    /// it learnt before: batches driven between start-up and the assignment moved its frontier
    /// (a fresh machine here left the batches after them waiting forever: found by the
    /// transactional crash scenario, kill -9 with 15 batches STAGED, restart).
    func assigned(_ tp: TopicPartition, committed: Int64?) {
        state.withLock { _ = $0.machines[tp, default: PartitionMachine()].apply(.assigned(committed: committed)) }
        wakeup.signal()
    }

    func stop() {
        state.withLock { $0.stopping = true }
        executor.stop()
        for _ in 0..<threads { wakeup.signal() }
    }

    /// The next piece of work: the first batch of a partition that is not busy, as its
    /// partition machine decides. A partition whose first batch must wait is skipped.
    private func take() -> Work? {
        state.withLock { s -> Work? in
            for (tp, q) in s.queues where !q.isEmpty && !s.busy.contains(tp) {
                let b = q[0]
                var machine = s.machines[tp] ?? PartitionMachine()
                let decision = machine.decide(start: b.startOffset, end: b.endOffset, state: b.state)
                s.machines[tp] = machine
                switch decision {
                case .wait:
                    continue
                case .readCommitted:
                    s.busy.insert(tp)
                    return .readCommitted(tp)
                case .drive(let covered):
                    s.queues[tp] = q.count == 1 ? nil : Array(q.dropFirst())
                    s.busy.insert(tp)
                    return .drive(tp, b, coveredThrough: covered, fresh: s.fresh.remove(b.id) != nil)
                case .abandon(let reason):
                    s.queues[tp] = q.count == 1 ? nil : Array(q.dropFirst())
                    s.queuedIDs.remove(b.id)
                    s.fresh.remove(b.id)
                    s.stagedBytes -= b.fileSize + (b.rejectedSize ?? 0)
                    return .abandon(tp, b, reason: reason)
                }
            }
            return nil
        }
    }

    private func workerLoop() {
        while true {
            if state.withLock({ $0.stopping }) { return }
            guard let work = take() else {
                _ = wakeup.wait(timeout: .now() + .milliseconds(200))
                continue
            }
            let tp: TopicPartition, b: BatchRecord, covered: Int64?, fresh: Bool
            switch work {
            case .abandon(_, let batch, let reason):
                abandonFollowers([batch], reason: reason)
                continue
            case .readCommitted(let p):
                readCommitted(p)
                continue
            case let .drive(p, batch, c, f):
                (tp, b, covered, fresh) = (p, batch, c, f)
            }
            var outcome: BatchStateMachine.Outcome?
            do {
                // A freshly staged file was hashed as it was written: hashing it again before the
                // upload cost a full read of every file (issue 22).
                outcome = try executor.drive(b, freshlyStaged: fresh, coveredThrough: covered)
            } catch is ExecutorStopped {
                outcome = nil
            } catch let e as PermanentStoreError {
                logger.error("batch failed permanently", metadata: ["batch": "\(b.id)", "range": "\(b.rangeDescription)", "error": "\(e)"])
                onFatal(e)
                outcome = nil
            } catch {
                logger.error("batch failed", metadata: ["batch": "\(b.id)", "range": "\(b.rangeDescription)", "error": "\(error)"])
                outcome = nil
            }
            var dropped: [BatchRecord] = []
            let again = state.withLock { s -> Bool in
                s.busy.remove(tp)
                s.stagedBytes -= b.fileSize + (b.rejectedSize ?? 0)
                if outcome == nil { s.queuedIDs.remove(b.id) }   // may be queued again later
                if let outcome {
                    s.machines[tp, default: PartitionMachine()]
                        .apply(.finished(start: b.startOffset, end: b.endOffset, outcome: outcome))
                }
                switch outcome {
                case .committed?: s.committedBatches += 1
                case .abandoned?, .superseded?:
                    // The chain broke here: every queued batch of the partition follows it.
                    dropped = s.queues[tp] ?? []
                    s.queues[tp] = nil
                    for d in dropped {
                        s.stagedBytes -= d.fileSize + (d.rejectedSize ?? 0)
                        s.queuedIDs.remove(d.id)
                        s.fresh.remove(d.id)
                    }
                default: break
                }
                if case .uploadedNotOwned? = outcome { s.queuedIDs.remove(b.id) }
                return s.requeue.remove(b.id) != nil && !s.queuedIDs.contains(b.id)
            }
            if again { requeueFromManifest(b) }
            switch outcome {
            case .abandoned(let reason)?:
                abandonFollowers(dropped, reason: "an earlier batch of the partition was abandoned")
                onReseek(tp, b.startOffset, reason)
            case .superseded(let resumeAt)?:
                abandonFollowers(dropped, reason: "an earlier batch of the partition was superseded")
                onReseek(tp, resumeAt, "superseded by other objects ending at \(resumeAt - 1)")
            case .needsAttention(let why)?:
                logger.error("batch needs an operator", metadata: ["batch": "\(b.id)", "range": "\(b.rangeDescription)", "reason": "\(why)"])
            default: break
            }
            onBatchDone(b, outcome)
            wakeup.signal()
        }
    }

    /// Queues `b` again as the manifest has it now, if it is still unfinished: someone asked for
    /// it while a worker was driving it, and that drive left it unfinished. (Found by the
    /// transactional crash scenario: an UPLOADED batch driven at start-up finished "not owned"
    /// just after the assignment's enqueue of it was dropped as a duplicate, and it stayed
    /// UPLOADED, staged files and all, for the rest of the run.)
    private func requeueFromManifest(_ b: BatchRecord) {
        do {
            if let now = try executor.manifest.batch(id: b.id), [.staged, .uploading, .uploaded].contains(now.state) {
                enqueue(now)
            }
        } catch {
            logger.error("cannot re-read a batch to queue it again; the next start finishes it",
                         metadata: ["batch": "\(b.id)", "error": "\(error)"])
        }
    }

    /// Asks Kafka (through the poll thread) for `tp`'s committed offset and tells its machine.
    private func readCommitted(_ tp: TopicPartition) {
        let committed: Int64??
        do {
            committed = .some(try executor.offsets.committedOffset(tp).offset)
        } catch {
            logger.warning("cannot read the committed offset; retrying", metadata: ["partition": "\(tp)", "error": "\(error)"])
            committed = nil
        }
        state.withLock { s in
            s.busy.remove(tp)
            if let committed { s.machines[tp, default: PartitionMachine()].apply(.committed(committed)) }
        }
        if committed == nil { usleep(200_000) } else { wakeup.signal() }
    }

    /// Later batches of a partition whose predecessor must be re-read: their offsets come after
    /// a range that is not delivered, so committing them would skip it. Abandon and remove.
    private func abandonFollowers(_ batches: [BatchRecord], reason: String) {
        for d in batches where d.state == .staged || d.state == .uploading {
            do {
                try executor.abandonWithoutUpload(d, reason: reason)
            } catch {
                logger.error("cannot abandon follower batch", metadata: ["batch": "\(d.id)", "error": "\(error)"])
            }
        }
    }
}
