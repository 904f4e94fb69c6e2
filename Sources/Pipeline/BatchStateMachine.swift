import Manifest

/// The commit protocol of docs/protocol.md as a pure state machine: it takes observations and
/// returns the next step; it performs no I/O and reads no clock. `BatchExecutor` carries out
/// the steps (manifest, files, object store, Kafka) and feeds back what it observed.
/// The engine drives a fresh batch through it, and recovery (`etl-recover` and engine start)
/// drives every unfinished manifest batch through the same machine.
///
/// One machine drives one batch from its durable state to an ``Outcome``.
public struct BatchStateMachine: Sendable {
    /// What the machine knows about its batch (from the manifest row).
    public struct Batch: Sendable, Equatable {
        public var id: Int64
        public var state: BatchState
        public var startOffset: Int64
        public var endOffset: Int64
        public var sha256: String
        public var uploadID: String?
        public var hasRejected: Bool
        /// True when the file is smaller than one part: a single conditional PutObject.
        public var singlePut: Bool
        /// Checksums of the parts the manifest recorded for `uploadID`, by part number.
        public var recordedParts: [Int: String?]

        public init(id: Int64, state: BatchState, startOffset: Int64, endOffset: Int64, sha256: String,
                    uploadID: String?, hasRejected: Bool, singlePut: Bool, recordedParts: [Int: String?] = [:]) {
            self.id = id
            self.state = state
            self.startOffset = startOffset
            self.endOffset = endOffset
            self.sha256 = sha256
            self.uploadID = uploadID
            self.hasRejected = hasRejected
            self.singlePut = singlePut
            self.recordedParts = recordedParts
        }
    }

    /// What HEAD of the batch's object key found (from the object's `tidemark-*` metadata).
    public struct ObjectHead: Sendable, Equatable {
        public var sha256: String?
        public var endOffset: Int64?
        public var etag: String?
        public init(sha256: String?, endOffset: Int64?, etag: String?) {
            self.sha256 = sha256
            self.endOffset = endOffset
            self.etag = etag
        }
    }

    /// The result of checking the staged files against the manifest's size and SHA-256.
    public enum StagedFileCheck: Sendable, Equatable {
        case ok
        case missing(path: String)
        case mismatch(path: String, detail: String)
    }

    /// A step for the executor. Each names the observation it must answer with.
    public enum Step: Sendable, Equatable {
        /// HEAD the object key → ``Observation/head(_:)``.
        case headObject
        /// Re-hash the staged files → ``Observation/stagedFiles(_:)``.
        case verifyStagedFiles
        /// PUT the dead-letter object (unconditional; its key names the exact range) → ``Observation/done``.
        case putRejected
        /// PutObject with `If-None-Match: *` → ``Observation/completed(etag:)`` or ``Observation/alreadyExists``.
        case putObject
        /// CreateMultipartUpload → ``Observation/uploadCreated(_:)``.
        case createUpload
        /// ListParts → ``Observation/partsListed(_:)`` (nil when the upload is gone).
        case listParts(uploadID: String)
        /// Upload every part not in `skip`, recording each in the manifest → ``Observation/done``.
        case uploadParts(uploadID: String, skip: Set<Int>)
        /// CompleteMultipartUpload with `If-None-Match: *` → completed / alreadyExists / conflict / uploadGone.
        case completeUpload(uploadID: String)
        /// AbortMultipartUpload (absent is fine) → ``Observation/done``.
        case abortUpload(uploadID: String)
        /// DELETE the dead-letter object → ``Observation/done``.
        case deleteRejected
        /// Read Kafka's committed offset and whether this process owns the partition →
        /// ``Observation/committedOffset(_:owned:)``.
        case readCommittedOffset
        /// Commit `offset` for the partition (metadata: the object key) →
        /// ``Observation/done`` or ``Observation/commitRejected(_:)``.
        case commitOffset(Int64)
        /// Durably record the transition in the manifest → ``Observation/done``.
        case record(to: BatchState, uploadID: String?, etag: String?, note: String?)
        /// Move the staged files aside (never delete evidence) → ``Observation/done``.
        case quarantineStagedFiles(reason: String)
        /// Delete the staged files → ``Observation/done``.
        case deleteStagedFiles
        /// The batch needs nothing more from this process.
        case finished(Outcome)
    }

    /// How a batch ended for this process.
    public enum Outcome: Sendable, Equatable {
        /// In S3 and committed in Kafka.
        case committed
        /// In S3 (UPLOADED) but this process does not own the partition: the owner's S3 probe
        /// will find the object and skip past it.
        case uploadedNotOwned
        /// Staged bytes lost or corrupt: not committed, the records are read again.
        case abandoned(reason: String)
        /// Another writer's object holds this start offset; re-seek the partition to `resumeAt`.
        case superseded(resumeAt: Int64)
        /// Needs an operator; nothing was changed (e.g. an UPLOADED batch's object vanished after
        /// its offsets were committed: only a manual offset reset can re-read those records).
        case needsAttention(String)
    }

    /// What the executor observed after a step.
    public enum Observation: Sendable, Equatable {
        case done
        case head(ObjectHead?)
        case stagedFiles(StagedFileCheck)
        case uploadCreated(String)
        case partsListed([Int: String?]?)
        case completed(etag: String?)
        case alreadyExists
        case conflict
        case uploadGone
        case committedOffset(Int64?, owned: Bool)
        case commitRejected(String)
    }

    /// A step sequence the machine is in the middle of.
    enum Phase: Sendable, Equatable {
        case start
        case headCovered
        case abortCovered(frontier: Int64)
        case headBeforeUpload(fileVerified: Bool)
        case verifyBeforeUpload
        case putRejected
        case putObject
        case createUpload
        case recordUploading(String)
        case uploadParts(String)
        case complete(String)
        case abortAfterOwnCompletion(etag: String?)
        case recordUploaded(etag: String?)
        case listParts(String)
        case headAfterUploadGone
        case verifyBeforeResume(String, listed: [Int: String?])
        case readCommitted
        case headBeforeCommit
        case readCommittedForVanished(String)
        case commit
        case recordCommitted
        case deleteStaged
        case abandon(reason: String, abortUploadID: String?)
        case recordAbandoned(reason: String)
        case quarantine(reason: String)
        case superseded(winnerEnd: Int64, abortUploadID: String?)
        case deleteOwnRejected(winnerEnd: Int64)
        case recordSuperseded(winnerEnd: Int64)
        case deleteStagedSuperseded(winnerEnd: Int64)
        case finished(Outcome)
    }

    public private(set) var batch: Batch
    var phase: Phase = .start
    /// True for a batch this process has just staged: its files need no re-hash.
    let freshlyStaged: Bool
    /// Set when the batch does not start at its partition's chain frontier (``PartitionMachine``):
    /// offsets below this are already delivered by other objects, so the batch may not create
    /// its object. It may still find its own object (a create that succeeded before a crash);
    /// otherwise it ends SUPERSEDED and the partition continues at this offset.
    let coveredThrough: Int64?

    /// - Parameters:
    ///   - batch: the manifest's view of the batch.
    ///   - freshlyStaged: the engine just wrote and hashed the files (skip re-verification).
    ///   - coveredThrough: nil when the batch starts at its partition's chain frontier (it may
    ///     create its object); otherwise the frontier, past the batch's start.
    public init(batch: Batch, freshlyStaged: Bool = false, coveredThrough: Int64? = nil) {
        self.batch = batch
        self.freshlyStaged = freshlyStaged
        self.coveredThrough = coveredThrough
    }

    /// The first step.
    public mutating func start() -> Step {
        if coveredThrough != nil && (batch.state == .staged || batch.state == .uploading) {
            // Not at the frontier: only an object of our own (created before a crash) counts.
            phase = .headCovered
            return .headObject
        }
        switch batch.state {
        case .staged:
            phase = .headBeforeUpload(fileVerified: freshlyStaged)
            return .headObject
        case .uploading:
            guard let id = batch.uploadID else {
                // UPLOADING without an id cannot be written by our code; treat as staged.
                phase = .headBeforeUpload(fileVerified: false)
                return .headObject
            }
            phase = .listParts(id)
            return .listParts(uploadID: id)
        case .uploaded:
            // Recovered UPLOADED batch: check the object is still ours before committing.
            phase = .headBeforeCommit
            return .headObject
        case .committed:
            phase = .deleteStaged
            return .deleteStagedFiles
        case .abandoned:
            phase = .finished(.abandoned(reason: "already abandoned"))
            return .finished(.abandoned(reason: "already abandoned"))
        case .superseded:
            phase = .finished(.superseded(resumeAt: batch.endOffset + 1))
            return .finished(.superseded(resumeAt: batch.endOffset + 1))
        }
    }

    /// The step after `observation`. A wrong observation for the step is a programming error
    /// of the executor and traps in debug builds; in release it ends the batch as-is.
    public mutating func next(_ observation: Observation) -> Step {
        switch (phase, observation) {
        // MARK: not at the frontier
        case (.headCovered, .head(let head)):
            let uploadID = batch.state == .uploading ? batch.uploadID : nil
            if let head { return onObjectExists(head, abortUploadID: uploadID) }
            let frontier = coveredThrough ?? batch.startOffset
            // Nobody holds our start, but offsets start...frontier-1 are delivered by other
            // objects: creating ours would hold them twice. Our dead-letter object (if an earlier
            // attempt PUT it) names our exact range, which no object covers: it goes too.
            if let uploadID {
                phase = .abortCovered(frontier: frontier)
                return .abortUpload(uploadID: uploadID)
            }
            return dropCovered(frontier: frontier)
        case (.abortCovered(let frontier), .done):
            return dropCovered(frontier: frontier)

        // MARK: staged → upload
        case let (.headBeforeUpload(verified), .head(head)):
            if let head { return onObjectExists(head, abortUploadID: nil) }
            if !verified {
                phase = .verifyBeforeUpload
                return .verifyStagedFiles
            }
            return beginUpload()
        case let (.verifyBeforeUpload, .stagedFiles(check)):
            if case .ok = check { return beginUpload() }
            return abandon(check, abortUploadID: nil)
        case (.putRejected, .done):
            return uploadObject()
        case (.putObject, .completed(let etag)):
            return recordUploaded(etag: etag)
        case (.putObject, .alreadyExists), (.complete, .alreadyExists):
            if case .complete(let id) = phase { batch.uploadID = id }
            phase = .headAfterUploadGone
            return .headObject
        case (.createUpload, .uploadCreated(let id)):
            phase = .recordUploading(id)
            return .record(to: .uploading, uploadID: id, etag: nil, note: nil)
        case (.recordUploading(let id), .done):
            batch.state = .uploading
            batch.uploadID = id
            batch.recordedParts = [:]
            phase = .uploadParts(id)
            return .uploadParts(uploadID: id, skip: [])
        case (.uploadParts(let id), .done):
            phase = .complete(id)
            return .completeUpload(uploadID: id)
        case (.complete, .completed(let etag)):
            return recordUploaded(etag: etag)
        case (.complete, .conflict), (.complete, .uploadGone):
            // 409 ConditionalRequestConflict: S3 says start a new upload and send every part again.
            // A vanished upload id is handled the same way, after checking the key is still free.
            phase = .headAfterUploadGone
            return .headObject

        // MARK: uploading → resume
        case (.listParts, .partsListed(nil)):
            phase = .headAfterUploadGone
            return .headObject
        case let (.listParts(id), .partsListed(listed?)):
            phase = .verifyBeforeResume(id, listed: listed)
            return .verifyStagedFiles
        case let (.verifyBeforeResume(id, listed), .stagedFiles(check)):
            guard case .ok = check else { return abandon(check, abortUploadID: id) }
            // Keep a listed part only when the manifest recorded it with the same checksum.
            let keep = Set(listed.compactMap { number, checksum -> Int? in
                guard let recorded = batch.recordedParts[number], recorded == checksum, checksum != nil else { return nil }
                return number
            })
            phase = .uploadParts(id)
            return .uploadParts(uploadID: id, skip: keep)
        case (.headAfterUploadGone, .head(let head)):
            if let head { return onObjectExists(head, abortUploadID: batch.uploadID) }
            phase = .verifyBeforeUpload
            return .verifyStagedFiles

        // MARK: uploaded → committed
        case (.abortAfterOwnCompletion(let etag), .done):
            return recordUploaded(etag: etag)
        case (.recordUploaded, .done):
            batch.state = .uploaded
            phase = .readCommitted
            return .readCommittedOffset
        case let (.readCommitted, .committedOffset(committed, owned)):
            if let committed, committed >= batch.endOffset + 1 {
                // Already committed (e.g. crash after the commit): never commit backwards.
                phase = .recordCommitted
                return .record(to: .committed, uploadID: nil, etag: nil, note: "offset already committed at \(committed)")
            }
            guard owned else {
                phase = .finished(.uploadedNotOwned)
                return .finished(.uploadedNotOwned)
            }
            phase = .commit
            return .commitOffset(batch.endOffset + 1)
        case (.headBeforeCommit, .head(let head)):
            if head?.sha256 == batch.sha256 {
                phase = .readCommitted
                return .readCommittedOffset
            }
            let why = head == nil ? "object vanished before its offsets were committed"
                : "object at the key was replaced by another writer's (sha256 \(head?.sha256 ?? "none"))"
            phase = .readCommittedForVanished(why)
            return .readCommittedOffset
        case let (.readCommittedForVanished(why), .committedOffset(committed, _)):
            if let committed, committed > batch.startOffset {
                let reason = "\(why), but Kafka's committed offset is already \(committed): reset the group's offset for this partition to \(batch.startOffset) to read offsets \(batch.startOffset)...\(batch.endOffset) again"
                phase = .finished(.needsAttention(reason))
                return .finished(.needsAttention(reason))
            }
            phase = .recordAbandoned(reason: why)
            return .record(to: .abandoned, uploadID: nil, etag: nil, note: why)
        case (.commit, .done):
            phase = .recordCommitted
            return .record(to: .committed, uploadID: nil, etag: nil, note: nil)
        case (.commit, .commitRejected):
            phase = .finished(.uploadedNotOwned)
            return .finished(.uploadedNotOwned)
        case (.recordCommitted, .done):
            batch.state = .committed
            phase = .deleteStaged
            return .deleteStagedFiles
        case (.deleteStaged, .done):
            phase = .finished(.committed)
            return .finished(.committed)

        // MARK: abandoned
        case (.abandon(let reason, _), .done):
            phase = .recordAbandoned(reason: reason)
            return .record(to: .abandoned, uploadID: nil, etag: nil, note: reason)
        case (.recordAbandoned(let reason), .done):
            batch.state = .abandoned
            phase = .quarantine(reason: reason)
            return .quarantineStagedFiles(reason: reason)
        case (.quarantine(let reason), .done):
            phase = .finished(.abandoned(reason: reason))
            return .finished(.abandoned(reason: reason))

        // MARK: superseded
        case (.superseded(let winnerEnd, _), .done):
            return afterAbortSuperseded(winnerEnd: winnerEnd)
        case (.deleteOwnRejected(let winnerEnd), .done):
            phase = .recordSuperseded(winnerEnd: winnerEnd)
            return .record(to: .superseded, uploadID: nil, etag: nil, note: "object written by another writer, ends at \(winnerEnd)")
        case (.recordSuperseded(let winnerEnd), .done):
            batch.state = .superseded
            phase = .deleteStagedSuperseded(winnerEnd: winnerEnd)
            return .deleteStagedFiles
        case (.deleteStagedSuperseded(let winnerEnd), .done):
            let resumeAt = max(winnerEnd + 1, coveredThrough ?? 0)
            phase = .finished(.superseded(resumeAt: resumeAt))
            return .finished(.superseded(resumeAt: resumeAt))

        case (.finished(let outcome), _):
            return .finished(outcome)
        default:
            assertionFailure("observation \(observation) does not answer phase \(phase)")
            phase = .finished(.uploadedNotOwned)
            return .finished(batch.state == .uploaded ? .uploadedNotOwned : .abandoned(reason: "protocol error: \(observation) in \(phase)"))
        }
    }

    // MARK: Helpers

    private mutating func beginUpload() -> Step {
        if batch.hasRejected {
            phase = .putRejected
            return .putRejected
        }
        return uploadObject()
    }

    private mutating func uploadObject() -> Step {
        if batch.singlePut {
            phase = .putObject
            return .putObject
        }
        phase = .createUpload
        return .createUpload
    }

    private mutating func recordUploaded(etag: String?) -> Step {
        phase = .recordUploaded(etag: etag)
        return .record(to: .uploaded, uploadID: nil, etag: etag, note: nil)
    }

    /// The object key is taken. Ours (same SHA-256) → UPLOADED; another writer's → SUPERSEDED.
    private mutating func onObjectExists(_ head: ObjectHead, abortUploadID: String?) -> Step {
        if head.sha256 == batch.sha256 {
            if let id = abortUploadID, batch.state == .uploading {
                // Our own completed upload (or a 412 on our retry): the pending id, if any, is spent.
                phase = .abortAfterOwnCompletion(etag: head.etag)
                return .abortUpload(uploadID: id)
            }
            return recordUploaded(etag: head.etag)
        }
        // Another writer: its end tells where the chain continues. Without our metadata (an
        // object we did not write) assume it covers our range: re-read after our end.
        let winnerEnd = head.endOffset ?? batch.endOffset
        phase = .superseded(winnerEnd: winnerEnd, abortUploadID: abortUploadID)
        if let id = abortUploadID {
            return .abortUpload(uploadID: id)
        }
        return afterAbortSuperseded(winnerEnd: winnerEnd)
    }

    /// A batch behind the frontier with no object of its own: SUPERSEDED by the objects that
    /// deliver its offsets, and its dead-letter object (if an earlier attempt PUT it) deleted.
    private mutating func dropCovered(frontier: Int64) -> Step {
        if batch.hasRejected {
            phase = .deleteOwnRejected(winnerEnd: frontier - 1)
            return .deleteRejected
        }
        phase = .recordSuperseded(winnerEnd: frontier - 1)
        return .record(to: .superseded, uploadID: nil, etag: nil, note: "object written by another writer, ends at \(frontier - 1)")
    }

    private mutating func afterAbortSuperseded(winnerEnd: Int64) -> Step {
        // Our dead-letter object's key names our exact range; when the winner covers the same
        // range the key (and content) is the winner's too, so it must stay.
        if batch.hasRejected && winnerEnd != batch.endOffset {
            phase = .deleteOwnRejected(winnerEnd: winnerEnd)
            return .deleteRejected
        }
        phase = .recordSuperseded(winnerEnd: winnerEnd)
        return .record(to: .superseded, uploadID: nil, etag: nil, note: "object written by another writer, ends at \(winnerEnd)")
    }

    private mutating func abandon(_ check: StagedFileCheck, abortUploadID: String?) -> Step {
        let reason: String
        switch check {
        case .ok: reason = "unexpected"
        case .missing(let path): reason = "staged file missing: \(path)"
        case .mismatch(let path, let detail): reason = "staged file corrupt: \(path): \(detail)"
        }
        if let id = abortUploadID {
            phase = .abandon(reason: reason, abortUploadID: id)
            return .abortUpload(uploadID: id)
        }
        phase = .recordAbandoned(reason: reason)
        return .record(to: .abandoned, uploadID: nil, etag: nil, note: reason)
    }
}
