import Foundation
import KafkaSource
import Logging
import Manifest
import ObjectStore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Told by a ``BatchExecutor`` what the engine's metrics count (any thread, concurrently).
public protocol BatchExecutorObserver: Sendable {
    /// A step failure of `kind` is being retried.
    func retried(kind: String)
    /// `bytes` were uploaded (a part, a whole object, a dead-letter file).
    func uploaded(bytes: Int64)
    /// A batch was driven to `outcome`: time in object-store steps and in commit steps.
    func batchDriven(upload: Duration, commit: Duration, outcome: BatchStateMachine.Outcome)
}

/// Where the executor asks about and moves Kafka offsets. The engine answers from its poll
/// thread (the only thread that may use the consumer); recovery without a consumer answers
/// "not owned".
public protocol OffsetAuthority: Sendable {
    /// The group's committed offset for `tp` (nil when none) and whether this process owns `tp` now.
    func committedOffset(_ tp: TopicPartition) throws -> (offset: Int64?, owned: Bool)
    /// Commits `offset` (the next offset to read) with `metadata`. Returns false when Kafka
    /// refused because this member no longer owns the partition (generation moved on).
    func commit(_ tp: TopicPartition, offset: Int64, metadata: String) throws -> Bool
}

/// An authority for processes that are not consumer-group members (etl-recover without
/// --commit, engine start-up before assignment): it owns nothing and commits nothing.
public struct NoOffsetAuthority: OffsetAuthority {
    public init() {}
    public func committedOffset(_ tp: TopicPartition) throws -> (offset: Int64?, owned: Bool) { (nil, false) }
    public func commit(_ tp: TopicPartition, offset: Int64, metadata: String) throws -> Bool { false }
}

/// Thrown when the executor stops retrying because the process is shutting down.
public struct ExecutorStopped: Error {}

/// Carries out ``BatchStateMachine`` steps against the manifest, the staging files, the object
/// store and Kafka, and feeds back what it observed. A failing step (store outage, broker
/// error) is retried with capped exponential backoff; the machine only advances when the step
/// succeeded, so a fault is equivalent to stopping at the last durable state.
public final class BatchExecutor: Sendable {
    public let manifest: Manifest
    public let store: any ObjectStore
    public let layout: KeyLayout
    public let offsets: any OffsetAuthority
    public let partSize: Int64
    public let concurrency: Int
    public let quarantineDirectory: String
    let logger: Logger
    let failpoints: Failpoints
    let stopping: Atomic<Bool>
    /// Retried step failures by kind, for metrics.
    public let retries = RetryCounters()
    /// Bytes uploaded (parts and whole objects), for metrics.
    public let bytesUploaded = Atomic<Int64>(0)
    /// Microseconds spent in each kind of step, summed over workers (they overlap in time): the
    /// stage split of the engine's run summary.
    public let objectStoreMicros = Atomic<Int>(0)
    public let manifestMicros = Atomic<Int>(0)
    public let offsetMicros = Atomic<Int>(0)
    /// Told of retries, uploaded bytes and each batch's stage times (the engine's metrics).
    public let observer: (any BatchExecutorObserver)?

    public init(manifest: Manifest, store: any ObjectStore, layout: KeyLayout, offsets: any OffsetAuthority,
                partSize: Int64, concurrency: Int, quarantineDirectory: String, logger: Logger,
                failpoints: Failpoints = .shared, observer: (any BatchExecutorObserver)? = nil) {
        self.observer = observer
        self.manifest = manifest
        self.store = store
        self.layout = layout
        self.offsets = offsets
        self.partSize = partSize
        self.concurrency = concurrency
        self.quarantineDirectory = quarantineDirectory
        self.logger = logger
        self.failpoints = failpoints
        self.stopping = Atomic(false)
    }

    /// Makes retry loops give up (with ``ExecutorStopped``) instead of waiting for the store.
    public func stop() { stopping.store(true, ordering: .relaxed) }

    /// The object metadata (and Parquet key_value_metadata) of a batch.
    public static func metadata(for b: BatchRecord) -> [String: String] {
        var m = [
            BatchMetadataKey.topic: b.topic, BatchMetadataKey.partition: String(b.partition),
            BatchMetadataKey.start: String(b.startOffset), BatchMetadataKey.end: String(b.endOffset),
            BatchMetadataKey.records: String(b.goodCount), BatchMetadataKey.rejected: String(b.rejectedCount),
            BatchMetadataKey.sha256: b.fileSHA256, BatchMetadataKey.size: String(b.fileSize),
            BatchMetadataKey.engineVersion: tidemarkVersion,
        ]
        if let k = b.rejectedKey { m[BatchMetadataKey.rejectedKey] = k }
        return m
    }

    /// What identifies a part's content on both sides of a resume: the server-verified checksum
    /// when the store reports one in ListParts, else the part's ETag.
    static func partFingerprint(checksum: String?, etag: String) -> String? {
        if let checksum { return "checksum:" + checksum }
        return "etag:" + etag
    }

    /// Abandons a STAGED or UPLOADING batch without uploading it, because its partition's chain
    /// broke before it (``PartitionMachine``): its pending upload is aborted, the manifest says
    /// ABANDONED, its staged files are removed. Its records are read again from Kafka. The
    /// engine's upload scheduler and `etl-recover` both abandon through here.
    public func abandonWithoutUpload(_ b: BatchRecord, reason: String) throws {
        if let id = b.uploadID { try? store.abortMultipartUpload(key: b.objectKey, uploadID: id) }
        try manifest.transition(batchID: b.id, from: b.state, to: .abandoned,
                                changes: BatchChanges(note: .some(reason)), event: reason)
        unlink(b.filePath)
        if let r = b.rejectedPath { unlink(r) }
    }

    /// Drives one manifest batch to its outcome (see ``BatchStateMachine``).
    public func drive(_ record: BatchRecord, freshlyStaged: Bool = false,
                      coveredThrough: Int64? = nil) throws -> BatchStateMachine.Outcome {
        var current = record
        let parts: [Int: String?]
        if let id = record.uploadID {
            parts = Dictionary(try manifest.parts(batchID: record.id, uploadID: id).map {
                ($0.partNumber, Self.partFingerprint(checksum: $0.checksum, etag: $0.etag))
            },
                               uniquingKeysWith: { a, _ in a })
        } else {
            parts = [:]
        }
        var machine = BatchStateMachine(batch: .init(
            id: record.id, state: record.state, startOffset: record.startOffset, endOffset: record.endOffset,
            sha256: record.fileSHA256, uploadID: record.uploadID, hasRejected: record.rejectedKey != nil,
            singlePut: record.fileSize < partSize, recordedParts: parts), freshlyStaged: freshlyStaged,
            coveredThrough: coveredThrough)
        var step = machine.start()
        var meta = logger
        meta[metadataKey: "batch"] = "\(record.id)"
        meta[metadataKey: "range"] = "\(record.rangeDescription)"
        // Time per stage, retries included (tidemark_batch_stage_seconds).
        var uploadTime = Duration.zero
        var commitTime = Duration.zero
        while true {
            if case .finished(let outcome) = step {
                meta.debug("batch finished", metadata: ["outcome": "\(outcome)"])
                observer?.batchDriven(upload: uploadTime, commit: commitTime, outcome: outcome)
                return outcome
            }
            let started = ContinuousClock.now
            let observation = try withRetry("\(step)", logger: meta) { try perform(step, batch: &current) }
            switch step {
            case .readCommittedOffset, .commitOffset, .record(to: .committed, _, _, _):
                commitTime += ContinuousClock.now - started
            case .headObject, .verifyStagedFiles, .putRejected, .putObject, .createUpload, .listParts, .uploadParts,
                 .completeUpload, .record:
                uploadTime += ContinuousClock.now - started
            default: break
            }
            step = machine.next(observation)
        }
    }

    /// Runs a step (or the engine's probe) under the engine's one retry loop (``RetryLoop``):
    /// transient failures are retried until the executor stops, permanent ones end it with
    /// ``PermanentStoreError``.
    /// `alsoStop` ends the retries too (the engine's stop request, for its probe).
    func withRetry<T>(_ step: String, logger: Logger, alsoStop: () -> Bool = { false },
                      _ body: () throws -> T) throws -> T {
        try RetryLoop().run(step, logger: logger, stopping: { stopping.load(ordering: .relaxed) || alsoStop() },
                            onStop: { ExecutorStopped() }, retried: { retries.add($0); observer?.retried(kind: $0) }, body)
    }

    private func perform(_ step: BatchStateMachine.Step, batch b: inout BatchRecord) throws -> BatchStateMachine.Observation {
        let started = ContinuousClock.now
        defer {
            let d = ContinuousClock.now - started
            let micros = Int(d.components.seconds) * 1_000_000 + Int(d.components.attoseconds / 1_000_000_000_000)
            switch step {
            case .record: manifestMicros.add(micros, ordering: .relaxed)
            case .readCommittedOffset, .commitOffset: offsetMicros.add(micros, ordering: .relaxed)
            case .headObject, .putRejected, .putObject, .createUpload, .listParts, .uploadParts, .completeUpload,
                 .abortUpload, .deleteRejected:
                objectStoreMicros.add(micros, ordering: .relaxed)
            default: break
            }
        }
        let tp = TopicPartition(topic: b.topic, partition: b.partition)
        switch step {
        case .headObject:
            guard let info = try store.headObject(key: b.objectKey) else { return .head(nil) }
            return .head(.init(sha256: info.metadata[BatchMetadataKey.sha256],
                               endOffset: info.metadata[BatchMetadataKey.end].flatMap { Int64($0) }, etag: info.etag))

        case .verifyStagedFiles:
            guard let actual = try hashFile(b.filePath) else { return .stagedFiles(.missing(path: b.filePath)) }
            guard actual.sha256 == b.fileSHA256, actual.size == b.fileSize else {
                return .stagedFiles(.mismatch(path: b.filePath, detail: "sha256 \(actual.sha256) size \(actual.size), manifest has sha256 \(b.fileSHA256) size \(b.fileSize)"))
            }
            if let path = b.rejectedPath {
                guard let r = try hashFile(path) else { return .stagedFiles(.missing(path: path)) }
                guard r.sha256 == b.rejectedSHA256, r.size == b.rejectedSize else {
                    return .stagedFiles(.mismatch(path: path, detail: "sha256 \(r.sha256) differs from the manifest"))
                }
            }
            return .stagedFiles(.ok)

        case .putRejected:
            guard let key = b.rejectedKey, let path = b.rejectedPath, let size = b.rejectedSize else { return .done }
            _ = try store.putObject(key: key, data: .fileRange(path: path, offset: 0, length: size),
                                    metadata: Self.metadata(for: b), ifNoneMatch: false)
            bytesUploaded.add(size, ordering: .relaxed)
            observer?.uploaded(bytes: size)
            return .done

        case .putObject:
            if !store.capabilities.conditionalWrites, try store.headObject(key: b.objectKey) != nil {
                return .alreadyExists
            }
            do {
                let etag = try store.putObject(key: b.objectKey, data: .fileRange(path: b.filePath, offset: 0, length: b.fileSize),
                                               metadata: Self.metadata(for: b), ifNoneMatch: true)
                bytesUploaded.add(b.fileSize, ordering: .relaxed)
                observer?.uploaded(bytes: b.fileSize)
                failpoints.hit(.afterUploadComplete)
                return .completed(etag: etag)
            } catch let e as ObjectStoreError where e.kind == .alreadyExists {
                return .alreadyExists
            }

        case .createUpload:
            let id = try store.createMultipartUpload(key: b.objectKey, metadata: Self.metadata(for: b))
            return .uploadCreated(id)

        case .listParts(let uploadID):
            do {
                let parts = try store.listParts(key: b.objectKey, uploadID: uploadID)
                return .partsListed(Dictionary(parts.map { ($0.partNumber, Self.partFingerprint(checksum: $0.checksum, etag: $0.etag)) },
                                               uniquingKeysWith: { a, _ in a }))
            } catch let e as ObjectStoreError where e.kind == .notFound {
                return .partsListed(nil)
            }

        case .uploadParts(let uploadID, let skip):
            try uploadParts(b, uploadID: uploadID, skip: skip)
            return .done

        case .completeUpload(let uploadID):
            failpoints.hit(.beforeUploadComplete)
            let recorded = try manifest.parts(batchID: b.id, uploadID: uploadID)
            let parts = recorded.map { UploadedPart(partNumber: $0.partNumber, etag: $0.etag, size: $0.size, checksum: $0.checksum) }
            if !store.capabilities.conditionalWrites, try store.headObject(key: b.objectKey) != nil {
                return .alreadyExists
            }
            do {
                let etag = try store.completeMultipartUpload(key: b.objectKey, uploadID: uploadID, parts: parts, ifNoneMatch: true)
                failpoints.hit(.afterUploadComplete)
                return .completed(etag: etag)
            } catch let e as ObjectStoreError {
                switch e.kind {
                case .alreadyExists: return .alreadyExists
                case .conflict: return .conflict
                case .notFound: return .uploadGone
                default: throw e
                }
            }

        case .abortUpload(let uploadID):
            do {
                try store.abortMultipartUpload(key: b.objectKey, uploadID: uploadID)
            } catch let e as ObjectStoreError where e.kind == .notFound {
                // Already gone (completed or aborted): nothing to do.
            }
            return .done

        case .deleteRejected:
            if let key = b.rejectedKey { try store.deleteObject(key: key) }
            return .done

        case .readCommittedOffset:
            let (offset, owned) = try offsets.committedOffset(tp)
            return .committedOffset(offset, owned: owned)

        case .commitOffset(let offset):
            failpoints.hit(.beforeOffsetCommit)
            guard try offsets.commit(tp, offset: offset, metadata: b.objectKey) else {
                return .commitRejected("partition \(tp) is no longer owned by this member")
            }
            failpoints.hit(.afterOffsetCommit)
            return .done

        case .record(let to, let uploadID, let etag, let note):
            try manifest.transition(batchID: b.id, from: b.state, to: to,
                                    changes: BatchChanges(uploadID: uploadID.map { .some($0) },
                                                          etag: etag.map { .some($0) }, note: note.map { .some($0) }),
                                    event: note)
            b.state = to
            if let uploadID { b.uploadID = uploadID }
            switch to {
            case .uploading: failpoints.hit(.afterUploadCreate)
            case .uploaded: failpoints.hit(.afterManifestUploaded)
            case .committed: failpoints.hit(.afterManifestCommitted)
            default: break
            }
            return .done

        case .quarantineStagedFiles(let reason):
            try FileManager.default.createDirectory(atPath: quarantineDirectory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            for path in [b.filePath, b.rejectedPath].compactMap({ $0 }) where FileManager.default.fileExists(atPath: path) {
                let target = quarantineDirectory + "/" + (path as NSString).lastPathComponent + ".batch\(b.id)"
                _ = rename(path, target)
            }
            try manifest.logEvent(batchID: b.id, kind: "QUARANTINE", detail: reason)
            return .done

        case .deleteStagedFiles:
            for path in [b.filePath, b.rejectedPath].compactMap({ $0 }) {
                if unlink(path) != 0 && errno != ENOENT {
                    throw StagingError(path: path, message: "unlink: \(String(cString: strerror(errno)))")
                }
            }
            return .done

        case .finished:
            return .done
        }
    }

    /// Uploads every part not in `skip` with up to `concurrency` in flight, recording each in
    /// the manifest as soon as the store acknowledged it.
    private func uploadParts(_ b: BatchRecord, uploadID: String, skip: Set<Int>) throws {
        let size = b.fileSize
        let partSize = max(self.partSize, (size + 9_999) / 10_000)
        let count = Int(max(1, (size + partSize - 1) / partSize))
        let pending = (1...count).filter { !skip.contains($0) }
        let next = Atomic<Int>(0)
        let firstError = Mutex<(any Error)?>(nil)
        let workers = max(1, min(concurrency, pending.count))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                if firstError.withLock({ $0 != nil }) { return }
                let i = next.add(1, ordering: .relaxed).oldValue
                guard i < pending.count else { return }
                let number = pending[i]
                let offset = Int64(number - 1) * partSize
                let length = min(partSize, size - offset)
                do {
                    let part = try store.uploadPart(key: b.objectKey, uploadID: uploadID, partNumber: number,
                                                    data: .fileRange(path: b.filePath, offset: offset, length: length))
                    try manifest.recordPart(batchID: b.id, uploadID: uploadID,
                                            PartRecord(partNumber: number, size: part.size, checksum: part.checksum, etag: part.etag))
                    bytesUploaded.add(length, ordering: .relaxed)
                    observer?.uploaded(bytes: length)
                    failpoints.hit(.afterPartUpload)
                } catch {
                    firstError.withLock { if $0 == nil { $0 = error } }
                    return
                }
            }
        }
        if let error = firstError.withLock({ $0 }) { throw error }
    }
}
