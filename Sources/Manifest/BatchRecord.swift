import Foundation

/// One batch as the manifest records it: a contiguous offset range of one partition and the
/// files and object that hold it (``staged``), with its id, state and upload progress. See
/// docs/protocol.md. The staged facts read as the record's own: `record.topic`, `record.endOffset`.
@dynamicMemberLookup
public struct BatchRecord: Sendable, Equatable {
    public var id: Int64
    /// What was staged: partition, offsets, counts, object keys, files and their hashes.
    public var staged: NewBatch
    public var state: BatchState
    /// The multipart upload id, once created.
    public var uploadID: String?
    /// The object's ETag, once uploaded.
    public var etag: String?
    /// Why the batch is ABANDONED or SUPERSEDED, or other operator-facing detail.
    public var note: String?
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: Int64, staged: NewBatch, state: BatchState, uploadID: String?, etag: String?, note: String?,
                createdAt: Date, updatedAt: Date) {
        self.id = id
        self.staged = staged
        self.state = state
        self.uploadID = uploadID
        self.etag = etag
        self.note = note
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    public subscript<T>(dynamicMember keyPath: KeyPath<NewBatch, T>) -> T { staged[keyPath: keyPath] }

    /// Records in the batch: good + rejected. At most `end - start + 1`: offsets are not dense
    /// (transaction markers and compaction leave offsets that hold no record).
    public var recordCount: Int64 { staged.goodCount + staged.rejectedCount }

    /// Offsets the batch's range covers: `end - start + 1`.
    public var offsetSpan: Int64 { staged.endOffset - staged.startOffset + 1 }

    /// `topic[partition] start...end`, for logs and errors.
    public var rangeDescription: String { "\(staged.topic)[\(staged.partition)] \(staged.startOffset)...\(staged.endOffset)" }
}

/// The facts of a batch that has just been staged (everything but its id, state and times).
public struct NewBatch: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    /// First offset of the batch (inclusive).
    public var startOffset: Int64
    /// Last offset of the batch (inclusive). The Kafka commit position after it is `end + 1`.
    public var endOffset: Int64
    /// Records that parsed, in the Parquet object.
    public var goodCount: Int64
    /// Records that did not parse, in the dead-letter object.
    public var rejectedCount: Int64
    /// The object key of the Parquet object (the batch's commit point).
    public var objectKey: String
    /// The dead-letter object key, when `rejectedCount > 0`.
    public var rejectedKey: String?
    /// The staged Parquet file.
    public var filePath: String
    /// Lower-case hex SHA-256 of the staged Parquet file.
    public var fileSHA256: String
    public var fileSize: Int64
    /// The staged dead-letter (JSON lines) file, when `rejectedCount > 0`.
    public var rejectedPath: String?
    public var rejectedSHA256: String?
    public var rejectedSize: Int64?

    public init(topic: String, partition: Int32, startOffset: Int64, endOffset: Int64,
                goodCount: Int64, rejectedCount: Int64, objectKey: String, rejectedKey: String?,
                filePath: String, fileSHA256: String, fileSize: Int64,
                rejectedPath: String? = nil, rejectedSHA256: String? = nil, rejectedSize: Int64? = nil) {
        self.topic = topic
        self.partition = partition
        self.startOffset = startOffset
        self.endOffset = endOffset
        self.goodCount = goodCount
        self.rejectedCount = rejectedCount
        self.objectKey = objectKey
        self.rejectedKey = rejectedKey
        self.filePath = filePath
        self.fileSHA256 = fileSHA256
        self.fileSize = fileSize
        self.rejectedPath = rejectedPath
        self.rejectedSHA256 = rejectedSHA256
        self.rejectedSize = rejectedSize
    }
}

/// One uploaded part of a batch's multipart upload.
public struct PartRecord: Sendable, Equatable {
    public var partNumber: Int
    public var size: Int64
    /// The checksum sent with the part (base64), verified by the server.
    public var checksum: String?
    public var etag: String

    public init(partNumber: Int, size: Int64, checksum: String?, etag: String) {
        self.partNumber = partNumber
        self.size = size
        self.checksum = checksum
        self.etag = etag
    }
}

/// Fields a transition may set alongside the new state.
public struct BatchChanges: Sendable {
    public var uploadID: String??
    public var etag: String??
    public var note: String??

    public init(uploadID: String?? = nil, etag: String?? = nil, note: String?? = nil) {
        self.uploadID = uploadID
        self.etag = etag
        self.note = note
    }
}

/// One line of the manifest's event log (every state change and every recovery action).
public struct ManifestEvent: Sendable, Equatable {
    public var id: Int64
    public var at: Date
    public var batchID: Int64?
    public var kind: String
    public var detail: String
}

/// Offsets of a partition deleted by retention before they were delivered.
public struct LossRecord: Sendable, Equatable, Codable {
    public var topic: String
    public var partition: Int32
    public var startOffset: Int64
    public var endOffset: Int64
    public var detectedAt: Date
    public var detail: String
}

/// One output schema recorded in the manifest (`schemas` table).
public struct SchemaRecord: Sendable, Equatable {
    /// SHA-256 (hex) of ``json``.
    public var fingerprint: String
    /// The canonical JSON description the objects carry as `tidemark-schema`.
    public var json: String
    /// When it was first recorded.
    public var firstSeen: Date
    /// When an engine last started with it (the latest is the current schema).
    public var lastUsed: Date

    /// A record with these facts.
    public init(fingerprint: String, json: String, firstSeen: Date, lastUsed: Date) {
        self.fingerprint = fingerprint
        self.json = json
        self.firstSeen = firstSeen
        self.lastUsed = lastUsed
    }
}

/// What one ``Manifest/prune(finalBefore:limit:)`` pass removed.
public struct PruneResult: Sendable, Equatable {
    /// Batch rows deleted (with their parts).
    public var batches: Int
    /// Event rows deleted.
    public var events: Int
    /// More batches were prunable than the pass's limit: the next pass continues.
    public var more: Bool

    public init(batches: Int, events: Int, more: Bool) {
        self.batches = batches
        self.events = events
        self.more = more
    }
}

/// How far a partition's final rows were pruned (docs/protocol.md, "Manifest retention").
public struct ManifestHorizon: Sendable, Equatable, Codable {
    public var topic: String
    public var partition: Int32
    /// The highest end offset of a pruned row: offsets at or below it are before the horizon.
    public var prunedThrough: Int64
    /// The highest end offset of a pruned COMMITTED row (the delivered chain continues at the
    /// next offset), nil when only ABANDONED/SUPERSEDED rows were pruned.
    public var deliveredThrough: Int64?
    /// Batch rows pruned so far.
    public var prunedBatches: Int64
    public var updatedAt: Date
}
