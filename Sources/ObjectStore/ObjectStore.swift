import Foundation

/// Metadata of one stored object.
public struct ObjectInfo: Sendable, Equatable {
    /// The object key (bucket-relative for S3, root-relative for the file store).
    public var key: String
    /// Size in bytes.
    public var size: Int64
    /// The entity tag without surrounding quotes, when the store reports one.
    public var etag: String?
    /// Last modification time, when the store reports one.
    public var lastModified: Date?
    /// User metadata: lower-cased names without the `x-amz-meta-` prefix. Empty in listings.
    public var metadata: [String: String]

    public init(key: String, size: Int64, etag: String?, lastModified: Date?, metadata: [String: String]) {
        self.key = key
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
        self.metadata = metadata
    }
}

/// One uploaded part of a multipart upload.
public struct UploadedPart: Sendable, Equatable, Hashable {
    /// Part number, 1...10,000.
    public var partNumber: Int
    /// The part's entity tag without surrounding quotes.
    public var etag: String
    /// Size in bytes.
    public var size: Int64
    /// The part checksum as sent (base64), or nil when the store reported none.
    public var checksum: String?

    public init(partNumber: Int, etag: String, size: Int64, checksum: String?) {
        self.partNumber = partNumber
        self.etag = etag
        self.size = size
        self.checksum = checksum
    }
}

/// An in-progress multipart upload, as listed by ``ObjectStore/listMultipartUploads(prefix:)``.
public struct MultipartUploadInfo: Sendable, Equatable {
    public var key: String
    public var uploadID: String
    public var initiated: Date?

    public init(key: String, uploadID: String, initiated: Date?) {
        self.key = key
        self.uploadID = uploadID
        self.initiated = initiated
    }
}

/// One page of ``ObjectStore/listObjects(prefix:startAfter:continuationToken:maxKeys:)``.
public struct ObjectPage: Sendable {
    /// The objects of this page in key order (UTF-8 byte order). `metadata` is empty.
    public var objects: [ObjectInfo]
    /// Pass back as `continuationToken` to get the next page; nil on the last page.
    public var nextContinuationToken: String?

    public init(objects: [ObjectInfo], nextContinuationToken: String?) {
        self.objects = objects
        self.nextContinuationToken = nextContinuationToken
    }
}

/// What a store can do natively. The engine adapts to what is missing.
public struct ObjectStoreCapabilities: Sendable, Equatable {
    /// The store honours `If-None-Match: *` on PutObject and CompleteMultipartUpload (a 412
    /// when the key exists). When false the engine must HEAD the key before completing, which
    /// leaves a race window that conditional writes close.
    public var conditionalWrites: Bool

    public init(conditionalWrites: Bool) {
        self.conditionalWrites = conditionalWrites
    }
}

/// The bytes of an object or part.
public enum ObjectBody: Sendable, Equatable {
    /// Bytes already in memory.
    case bytes([UInt8])
    /// `length` bytes of the file at `path` starting at `offset`; streamed from disk, never
    /// copied into memory whole.
    case fileRange(path: String, offset: Int64, length: Int64)

    /// The number of bytes in the body.
    public var length: Int64 {
        switch self {
        case .bytes(let bytes): return Int64(bytes.count)
        case .fileRange(_, _, let length): return length
        }
    }
}

/// A blocking, thread-safe object store: S3 (``S3Store``) or a local directory (``FileStore``).
///
/// Every call blocks the calling thread; call it from your own threads, never from Swift's
/// cooperative pool. All calls may be made concurrently from several threads. Every failure is
/// an ``ObjectStoreError``.
///
/// Keys are bucket-relative (S3) or root-relative (file). The location's prefix
/// (``ObjectStoreLocation/prefix``) is *not* applied by the store: callers build full keys.
public protocol ObjectStore: Sendable {
    /// What this store supports natively.
    var capabilities: ObjectStoreCapabilities { get }

    /// Starts a multipart upload (S3 `CreateMultipartUpload`) and returns its upload id.
    /// `metadata` (names without `x-amz-meta-`) is stored with the object on completion.
    func createMultipartUpload(key: String, metadata: [String: String]) throws -> String

    /// Uploads one part (S3 `UploadPart`) with an integrity checksum the server verifies.
    func uploadPart(key: String, uploadID: String, partNumber: Int, data: ObjectBody) throws -> UploadedPart

    /// Completes an upload (S3 `CompleteMultipartUpload`) and returns the object's etag.
    /// With `ifNoneMatch` the object is created only if the key does not exist yet; otherwise
    /// throws ``ObjectStoreError/Kind/alreadyExists``. A ``ObjectStoreError/Kind/conflict``
    /// means a concurrent conditional write raced this one: restart with a new upload.
    func completeMultipartUpload(key: String, uploadID: String, parts: [UploadedPart], ifNoneMatch: Bool) throws -> String

    /// Aborts an upload and discards its parts (S3 `AbortMultipartUpload`).
    func abortMultipartUpload(key: String, uploadID: String) throws

    /// Every in-progress upload whose key starts with `prefix` (S3 `ListMultipartUploads`,
    /// all pages).
    func listMultipartUploads(prefix: String) throws -> [MultipartUploadInfo]

    /// Every part uploaded so far, in part-number order (S3 `ListParts`, all pages).
    func listParts(key: String, uploadID: String) throws -> [UploadedPart]

    /// Stores a whole object in one request (S3 `PutObject`), conditionally with `ifNoneMatch`.
    /// Returns the etag.
    func putObject(key: String, data: ObjectBody, metadata: [String: String], ifNoneMatch: Bool) throws -> String

    /// The object's size, etag and user metadata (S3 `HeadObject`), or nil when it is absent.
    func headObject(key: String) throws -> ObjectInfo?

    /// The object's bytes, or the inclusive byte `range` of them (S3 `GetObject` with `Range`).
    func getObject(key: String, range: ClosedRange<Int64>?) throws -> [UInt8]

    /// One page of keys starting with `prefix` (S3 `ListObjectsV2`), at most `maxKeys` (≤ 1000).
    func listObjects(prefix: String, startAfter: String?, continuationToken: String?, maxKeys: Int) throws -> ObjectPage

    /// Deletes the object; deleting an absent key succeeds (S3 `DeleteObject`).
    func deleteObject(key: String) throws
}

extension ObjectStore {
    /// Every object whose key starts with `prefix`, following continuation tokens.
    public func listAllObjects(prefix: String) throws -> [ObjectInfo] {
        var result: [ObjectInfo] = []
        var token: String?
        repeat {
            let page = try listObjects(prefix: prefix, startAfter: nil, continuationToken: token, maxKeys: 1000)
            result.append(contentsOf: page.objects)
            token = page.nextContinuationToken
        } while token != nil
        return result
    }
}

/// S3 limits (S3 User Guide, "Amazon S3 multipart upload limits").
public enum S3Limits {
    /// Smallest part size except for the last part: 5 MiB.
    public static let minimumPartSize: Int64 = 5 << 20
    /// Largest part size: 5 GiB.
    public static let maximumPartSize: Int64 = 5 << 30
    /// Highest part number.
    public static let maximumPartCount = 10_000
    /// Largest page a List call returns.
    public static let maximumPageSize = 1000
}
