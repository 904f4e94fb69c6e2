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
/// When a batch of a partition ends ABANDONED or SUPERSEDED, the partition's later queued
/// batches are abandoned too (their offsets follow a range that must be read again) and the
/// owner is told where to re-read from through `onReseek`.
final class UploadScheduler: Sendable {
    struct State {
        var queues: [TopicPartition: [BatchRecord]] = [:]
        var busy: Set<TopicPartition> = []
        var queuedIDs: Set<Int64> = []
        var stagedBytes: Int64 = 0
        var stopping = false
        var committedBatches = 0
        /// Partitions whose chain broke (a batch was abandoned or superseded) and that the poll
        /// thread has not re-seeked yet: batches sealed meanwhile follow the broken range and are
        /// abandoned on arrival.
        var fenced: Set<TopicPartition> = []
    }

    private let state = Mutex(State())
    private let wakeup = DispatchSemaphore(value: 0)
    let executor: BatchExecutor
    let logger: Logger
    /// Called (from a worker thread) when a partition must be re-read from an offset.
    let onReseek: @Sendable (TopicPartition, Int64, String) -> Void
    /// Called (from a worker thread) after each batch finishes, whatever the outcome.
    let onBatchDone: @Sendable (BatchRecord, BatchStateMachine.Outcome?) -> Void
    private let threads: Int

    init(executor: BatchExecutor, workers: Int, logger: Logger,
         onReseek: @escaping @Sendable (TopicPartition, Int64, String) -> Void,
         onBatchDone: @escaping @Sendable (BatchRecord, BatchStateMachine.Outcome?) -> Void) {
        self.executor = executor
        self.logger = logger
        self.onReseek = onReseek
        self.onBatchDone = onBatchDone
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
    /// a fenced partition is abandoned instead (see ``State/fenced``).
    func enqueue(_ b: BatchRecord, freshlyStaged: Bool = false) {
        let tp = TopicPartition(topic: b.topic, partition: b.partition)
        if freshlyStaged && state.withLock({ $0.fenced.contains(tp) }) {
            abandonFollowers([b], reason: "sealed after an earlier batch of the partition was abandoned or superseded")
            return
        }
        let added = state.withLock { s -> Bool in
            guard !s.queuedIDs.contains(b.id) else { return false }
            s.queuedIDs.insert(b.id)
            s.queues[tp, default: []].append(b)
            s.queues[tp]!.sort { $0.startOffset < $1.startOffset }
            s.stagedBytes += b.fileSize + (b.rejectedSize ?? 0)
            return true
        }
        if added { wakeup.signal() }
    }

    /// Batches queued or running for `tp`.
    func pending(_ tp: TopicPartition) -> Int {
        state.withLock { ($0.queues[tp]?.count ?? 0) + ($0.busy.contains(tp) ? 1 : 0) }
    }

    /// Batches queued or running in total.
    var pendingTotal: Int {
        state.withLock { s in s.queues.values.reduce(0) { $0 + $1.count } + s.busy.count }
    }

    var stagedBytes: Int64 { state.withLock { $0.stagedBytes } }
    var committedBatches: Int { state.withLock { $0.committedBatches } }

    /// The poll thread re-seeked `tp` after a broken chain: new batches are valid again.
    func unfence(_ tp: TopicPartition) {
        state.withLock { _ = $0.fenced.remove(tp) }
    }

    func stop() {
        state.withLock { $0.stopping = true }
        executor.stop()
        for _ in 0..<threads { wakeup.signal() }
    }

    private func take() -> (TopicPartition, BatchRecord)? {
        state.withLock { s -> (TopicPartition, BatchRecord)? in
            for (tp, q) in s.queues where !q.isEmpty && !s.busy.contains(tp) {
                var q = q
                let b = q.removeFirst()
                s.queues[tp] = q.isEmpty ? nil : q
                s.busy.insert(tp)
                return (tp, b)
            }
            return nil
        }
    }

    private func workerLoop() {
        while true {
            if state.withLock({ $0.stopping }) { return }
            guard let (tp, b) = take() else {
                _ = wakeup.wait(timeout: .now() + .milliseconds(200))
                continue
            }
            var outcome: BatchStateMachine.Outcome?
            do {
                outcome = try executor.drive(b, freshlyStaged: false)
            } catch is ExecutorStopped {
                outcome = nil
            } catch {
                logger.error("batch failed", metadata: ["batch": "\(b.id)", "range": "\(b.rangeDescription)", "error": "\(error)"])
                outcome = nil
            }
            var dropped: [BatchRecord] = []
            state.withLock { s in
                s.busy.remove(tp)
                s.stagedBytes -= b.fileSize + (b.rejectedSize ?? 0)
                if outcome == nil { s.queuedIDs.remove(b.id) }   // may be queued again later
                switch outcome {
                case .committed?: s.committedBatches += 1
                case .abandoned?, .superseded?:
                    s.fenced.insert(tp)
                    dropped = s.queues[tp] ?? []
                    s.queues[tp] = nil
                    for d in dropped { s.stagedBytes -= d.fileSize + (d.rejectedSize ?? 0) }
                default: break
                }
                if case .uploadedNotOwned? = outcome { s.queuedIDs.remove(b.id) }
            }
            switch outcome {
            case .abandoned(let reason)?:
                abandonFollowers(dropped, reason: "an earlier batch of the partition was abandoned")
                onReseek(tp, b.startOffset, reason)
            case .superseded(let resumeAt)?:
                abandonFollowers(dropped, reason: "an earlier batch of the partition was superseded")
                onReseek(tp, resumeAt, "superseded by another writer's object ending at \(resumeAt - 1)")
            case .needsAttention(let why)?:
                logger.error("batch needs an operator", metadata: ["batch": "\(b.id)", "range": "\(b.rangeDescription)", "reason": "\(why)"])
            default: break
            }
            onBatchDone(b, outcome)
            wakeup.signal()
        }
    }

    /// Later batches of a partition whose predecessor must be re-read: their offsets come after
    /// a range that is not delivered, so committing them would skip it. Abandon and remove.
    private func abandonFollowers(_ batches: [BatchRecord], reason: String) {
        for d in batches where d.state == .staged || d.state == .uploading {
            do {
                if let id = d.uploadID {
                    try? executor.store.abortMultipartUpload(key: d.objectKey, uploadID: id)
                }
                try executor.manifest.transition(batchID: d.id, from: d.state, to: .abandoned,
                                                 changes: BatchChanges(note: .some(reason)), event: reason)
                unlink(d.filePath)
                if let r = d.rejectedPath { unlink(r) }
            } catch {
                logger.error("cannot abandon follower batch", metadata: ["batch": "\(d.id)", "error": "\(error)"])
            }
        }
    }
}
