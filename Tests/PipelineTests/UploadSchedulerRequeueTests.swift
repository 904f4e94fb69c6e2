import Dispatch
import Foundation
import KafkaSource
import Logging
import Manifest
import ObjectStore
@testable import Pipeline
import Synchronization
import Testing

/// An offset authority whose first committed-offset read blocks until the test lets it go and
/// then answers "not owned" (the poll thread served it just before the assignment); every later
/// read answers "owned, nothing committed", and commits succeed.
private final class AssignmentRaceAuthority: OffsetAuthority {
    let entered = DispatchSemaphore(value: 0)
    let release = DispatchSemaphore(value: 0)
    private let reads = Mutex(0)
    let commits = Mutex<[Int64]>([])

    func committedOffset(_ tp: TopicPartition) throws -> (offset: Int64?, owned: Bool) {
        let n = reads.withLock { r in defer { r += 1 }; return r }
        if n == 0 {
            entered.signal()
            _ = release.wait(timeout: .now() + .seconds(10))
            return (nil, false)
        }
        return (nil, true)
    }

    func commit(_ tp: TopicPartition, offset: Int64, metadata: String) throws -> Bool {
        commits.withLock { $0.append(offset) }
        return true
    }
}

@Suite("upload scheduler: a batch re-queued while it runs")
struct UploadSchedulerRequeueTests {
    /// Found by the transactional crash scenario (once, on Tansu): after a restart an UPLOADED
    /// batch was driven before the assignment and finished "not owned", while the assignment's
    /// enqueue of the same batch (it was still running) was dropped as a duplicate. The batch stayed
    /// UPLOADED with its staged files for the rest of the run while later batches committed.
    @Test("an UPLOADED batch that finishes 'not owned' while the assignment re-queues it is driven again and committed")
    func requeueDuringRun() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tidemark-requeue-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let manifest = try Manifest.open(path: dir.appendingPathComponent("state/manifest.sqlite").path)
        defer { manifest.close() }
        let sha = String(repeating: "b", count: 64)
        let key = "lake/topic=logs/dt=2026-12-07/partition=0/logs+0+0.parquet"
        let id = try manifest.insertStaged(NewBatch(topic: "logs", partition: 0, startOffset: 0, endOffset: 99,
                                                    goodCount: 100, rejectedCount: 0, objectKey: key, rejectedKey: nil,
                                                    filePath: dir.appendingPathComponent("staging/0-0.parquet").path,
                                                    fileSHA256: sha, fileSize: 4))
        try manifest.transition(batchID: id, from: .staged, to: .uploading, changes: BatchChanges(uploadID: "u1"))
        try manifest.transition(batchID: id, from: .uploading, to: .uploaded, changes: BatchChanges(etag: "e1"))
        let store = try FileStore(root: dir.appendingPathComponent("lake-root").path)
        _ = try store.putObject(key: key, data: .bytes([1, 2, 3, 4]),
                                metadata: [BatchMetadataKey.sha256: sha, BatchMetadataKey.size: "4"], ifNoneMatch: true)

        let authority = AssignmentRaceAuthority()
        let logger = Logger(label: "test.requeue")
        let executor = BatchExecutor(manifest: manifest, store: store, layout: KeyLayout(prefix: "lake"), offsets: authority,
                                     partSize: 5 << 20, concurrency: 1,
                                     quarantineDirectory: dir.appendingPathComponent("quarantine").path, logger: logger)
        let scheduler = UploadScheduler(executor: executor, workers: 1, logger: logger,
                                        onReseek: { _, _, _ in }, onBatchDone: { _, _ in })
        let tp = TopicPartition(topic: "logs", partition: 0)
        scheduler.assigned(tp, committed: nil)
        scheduler.start()
        defer { scheduler.stop() }
        // Start-up: the manifest's unfinished batch is queued; its worker asks for the offset...
        scheduler.enqueue(try #require(try manifest.batch(id: id)))
        #expect(authority.entered.wait(timeout: .now() + .seconds(10)) == .success, "the batch reached its offset read")
        // ...and, before the answer reaches it, the assignment queues the same batch again.
        scheduler.enqueue(try #require(try manifest.batch(id: id)))
        authority.release.signal()

        let deadline = Date().addingTimeInterval(10)
        var state = try manifest.batch(id: id)?.state
        while state != .committed && Date() < deadline {
            usleep(50_000)
            state = try manifest.batch(id: id)?.state
        }
        #expect(state == .committed, "the batch must not be left UPLOADED for the rest of the run")
        #expect(authority.commits.withLock { $0 } == [100])
    }
}
