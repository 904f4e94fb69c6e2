import Crypto
import Foundation

/// Uploads one local file as one object, the way the engine commits a staged file:
///
/// 1. Hashes the whole file (SHA-256) and records it, with the size, as user metadata
///    (``sha256MetadataKey``, ``sizeMetadataKey``) next to the caller's metadata.
/// 2. A file smaller than one part goes up in a single PutObject (`If-None-Match: *` when
///    `ifNoneMatch`).
/// 3. Otherwise: CreateMultipartUpload (reported through `onUploadCreated` *before* any part is
///    sent), UploadPart with `concurrency` parts in flight (each reported through
///    `onPartUploaded`, serialised, in completion order), then CompleteMultipartUpload with
///    `If-None-Match: *` when `ifNoneMatch`.
///
/// Resuming: pass the upload id and the parts the manifest recorded. They are checked against
/// ListParts (same number, etag and expected size); matching parts are kept and only the rest
/// are uploaded. A vanished upload throws ``ObjectStoreError/Kind/notFound``.
///
/// If CompleteMultipartUpload reports `NoSuchUpload` (an earlier attempt's 200 was lost and a
/// retry arrived after the upload was consumed), the object is HEADed and accepted when its
/// SHA-256 and size metadata match this file.
public final class MultipartUploader: Sendable {
    /// User-metadata name holding the hex SHA-256 of the whole file.
    public static let sha256MetadataKey = "tidemark-sha256"
    /// User-metadata name holding the file size in bytes (decimal).
    public static let sizeMetadataKey = "tidemark-size"

    public let store: any ObjectStore
    public let partSize: Int64
    public let concurrency: Int

    /// - Parameters:
    ///   - store: where to upload.
    ///   - partSize: bytes per part, 5 MiB (S3's minimum) ... 5 GiB; ``upload(file:key:metadata:resume:ifNoneMatch:onUploadCreated:onPartUploaded:)``
    ///     throws `invalidArgument` otherwise. Files needing more than 10,000 parts use the
    ///     smallest whole-MiB part size that fits instead.
    ///   - concurrency: parts in flight at once (≥ 1). Default 4.
    public init(store: any ObjectStore, partSize: Int = 16 << 20, concurrency: Int = 4) {
        self.store = store
        self.partSize = Int64(partSize)
        self.concurrency = concurrency
    }

    /// The part size used for a file of `fileSize` bytes: ``partSize``, raised to the next
    /// whole MiB when the file would need more than 10,000 parts. Deterministic, so a resume
    /// computes the same part boundaries.
    public func effectivePartSize(fileSize: Int64) -> Int64 {
        let maxParts = Int64(S3Limits.maximumPartCount)
        if (fileSize + partSize - 1) / partSize <= maxParts { return partSize }
        let needed = (fileSize + maxParts - 1) / maxParts
        return (needed + (1 << 20) - 1) / (1 << 20) * (1 << 20)
    }

    /// Uploads `file` as `key`. See the type's documentation for the protocol.
    /// - Parameters:
    ///   - file: the local file.
    ///   - key: the object key.
    ///   - metadata: user metadata (names without `x-amz-meta-`).
    ///   - resume: an upload id and the parts already recorded for it.
    ///   - ifNoneMatch: create only if the key does not exist (412 → ``ObjectStoreError/Kind/alreadyExists``).
    ///   - onUploadCreated: called with a new upload id before any part is uploaded; a throw aborts.
    ///   - onPartUploaded: called once per part uploaded by this call (not for resumed parts); a
    ///     throw stops the upload (the upload is left in place for a later resume).
    /// - Returns: the object's etag.
    public func upload(file: String, key: String, metadata: [String: String],
                       resume: (uploadID: String, parts: [UploadedPart])? = nil, ifNoneMatch: Bool = true,
                       onUploadCreated: (String) throws -> Void, onPartUploaded: (UploadedPart) throws -> Void) throws
        -> String
    {
        guard partSize >= S3Limits.minimumPartSize, partSize <= S3Limits.maximumPartSize, concurrency >= 1 else {
            throw ObjectStoreError(kind: .invalidArgument, operation: "Upload", key: key,
                                   message: "part size must be 5 MiB...5 GiB and concurrency ≥ 1 "
                                       + "(got \(partSize) bytes, \(concurrency))")
        }
        let (size, sha256) = try Self.hashFile(file)
        var fullMetadata = metadata
        fullMetadata[Self.sha256MetadataKey] = sha256
        fullMetadata[Self.sizeMetadataKey] = "\(size)"
        let partSize = effectivePartSize(fileSize: size)

        if size < partSize && resume == nil {
            return try store.putObject(key: key, data: .fileRange(path: file, offset: 0, length: size),
                                       metadata: fullMetadata, ifNoneMatch: ifNoneMatch)
        }
        let partCount = Int(max(1, (size + partSize - 1) / partSize))
        func range(_ number: Int) -> (offset: Int64, length: Int64) {
            let offset = Int64(number - 1) * partSize
            return (offset, min(partSize, size - offset))
        }

        let uploadID: String
        var done: [Int: UploadedPart] = [:]
        if let resume {
            uploadID = resume.uploadID
            let listed = Dictionary(try store.listParts(key: key, uploadID: uploadID).map { ($0.partNumber, $0) },
                                    uniquingKeysWith: { a, _ in a })
            for part in resume.parts where part.partNumber <= partCount {
                if let server = listed[part.partNumber], server.etag == part.etag,
                    server.size == range(part.partNumber).length, part.size == server.size
                {
                    done[part.partNumber] = part
                }
            }
        } else {
            uploadID = try store.createMultipartUpload(key: key, metadata: fullMetadata)
            try onUploadCreated(uploadID)
        }

        let pending = (1...partCount).filter { done[$0] == nil }
        let uploaded = try uploadParts(pending, key: key, uploadID: uploadID, file: file, range: range,
                                       onPartUploaded: onPartUploaded)
        for part in uploaded { done[part.partNumber] = part }
        let parts = (1...partCount).map { done[$0]! }
        do {
            return try store.completeMultipartUpload(key: key, uploadID: uploadID, parts: parts, ifNoneMatch: ifNoneMatch)
        } catch let error as ObjectStoreError where error.kind == .notFound {
            if let info = try store.headObject(key: key), info.metadata[Self.sha256MetadataKey] == sha256,
                info.size == size, let etag = info.etag
            {
                return etag
            }
            throw error
        }
    }

    /// Uploads `numbers` with up to ``concurrency`` worker threads. Finished parts are handed
    /// to the calling thread, which runs `onPartUploaded` (so callbacks are serialised and run
    /// on the caller's thread). The first failure (an upload error or a throwing callback)
    /// stops new parts from starting; it is rethrown once every worker has stopped.
    private func uploadParts(_ numbers: [Int], key: String, uploadID: String, file: String,
                             range: (Int) -> (offset: Int64, length: Int64),
                             onPartUploaded: (UploadedPart) throws -> Void) throws -> [UploadedPart]
    {
        if numbers.isEmpty { return [] }
        let ranges = numbers.map { range($0) }
        let workers = min(concurrency, numbers.count)
        let shared = UploadQueue()
        let store = self.store
        for _ in 0..<workers {
            let thread = Thread {
                while let index = shared.nextIndex(limit: numbers.count) {
                    do {
                        let (offset, length) = ranges[index]
                        let part = try store.uploadPart(key: key, uploadID: uploadID, partNumber: numbers[index],
                                                        data: .fileRange(path: file, offset: offset, length: length))
                        shared.finished(part)
                    } catch {
                        shared.fail(error)
                    }
                }
                shared.workerExited()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        var results: [UploadedPart] = []
        var callbackFailed = false
        // Drain until every worker has exited, so no thread outlives this call. Parts that
        // finish after a failure are still reported (the manifest can resume from them), but
        // never after the callback itself has thrown.
        while let batch = shared.waitForParts(workers: workers) {
            for part in batch where !callbackFailed {
                do {
                    try onPartUploaded(part)
                    results.append(part)
                } catch {
                    shared.fail(error)
                    callbackFailed = true
                }
            }
        }
        if let failure = shared.failure { throw failure }
        return results
    }

    /// Size and hex SHA-256 of a file, read in 1 MiB chunks.
    static func hashFile(_ path: String) throws -> (Int64, String) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let e = errno
            throw ObjectStoreError(kind: e == ENOENT ? .notFound : .permanent, operation: "Upload",
                                   message: "stat \(path): \(String(cString: strerror(e)))")
        }
        let size = Int64(info.st_size)
        var hasher = SHA256()
        try BodyDigests.forEachChunk(of: .fileRange(path: path, offset: 0, length: size)) { hasher.update(bufferPointer: $0) }
        return (size, SigV4Signer.hex(hasher.finalize()))
    }
}

/// The hand-off between ``MultipartUploader``'s worker threads and the calling thread.
///
/// `@unchecked Sendable`: every stored property is read and written only while holding
/// `condition`.
private final class UploadQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var next = 0
    private var done: [UploadedPart] = []
    private var exited = 0
    private var firstFailure: (any Error)?

    /// The next index to upload, or nil when all are taken or something failed.
    func nextIndex(limit: Int) -> Int? {
        condition.lock()
        defer { condition.unlock() }
        guard firstFailure == nil, next < limit else { return nil }
        defer { next += 1 }
        return next
    }

    func finished(_ part: UploadedPart) {
        condition.lock()
        done.append(part)
        condition.signal()
        condition.unlock()
    }

    func fail(_ error: any Error) {
        condition.lock()
        if firstFailure == nil { firstFailure = error }
        condition.signal()
        condition.unlock()
    }

    func workerExited() {
        condition.lock()
        exited += 1
        condition.signal()
        condition.unlock()
    }

    /// Blocks until parts are available (returns them) or every worker has exited with
    /// nothing left (returns nil).
    func waitForParts(workers: Int) -> [UploadedPart]? {
        condition.lock()
        defer { condition.unlock() }
        while done.isEmpty && exited < workers { condition.wait() }
        if done.isEmpty { return nil }
        defer { done.removeAll() }
        return done
    }

    var failure: (any Error)? {
        condition.lock()
        defer { condition.unlock() }
        return firstFailure
    }
}
