import Foundation

/// A failed object-store call, classified so callers can decide what to do without parsing
/// text. It carries everything needed to find the request in server logs, and never a secret
/// (no credentials, no signatures, no request headers).
public struct ObjectStoreError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is.
    public enum Kind: String, Sendable, Equatable {
        /// The key exists and the write was conditional (`If-None-Match: *`; S3 412
        /// `PreconditionFailed`, file store `EEXIST`).
        case alreadyExists
        /// A concurrent conditional write raced this one (S3 409 `ConditionalRequestConflict`):
        /// start a new multipart upload and re-upload every part.
        case conflict
        /// The bucket, key or upload does not exist (404, `NoSuchKey`, `NoSuchUpload`, `ENOENT`).
        case notFound
        /// The credentials were refused (403, `EACCES`).
        case accessDenied
        /// The server asked us to slow down (503 `SlowDown`, 429) and retries ran out.
        case throttled
        /// A failure that may succeed on retry (5xx, timeout, connection reset) and retries ran out.
        case transient
        /// A failure retrying cannot fix (other 4xx, malformed response, bad checksum, I/O error).
        case permanent
        /// The caller passed something invalid (bad key, part number, range, URL).
        case invalidArgument
    }

    /// What kind of failure this is.
    public var kind: Kind
    /// The S3 operation name (`UploadPart`, `CompleteMultipartUpload`, …).
    public var operation: String
    /// The bucket (S3) or root directory (file store).
    public var bucket: String?
    /// The object key involved, if any.
    public var key: String?
    /// The multipart upload id involved, if any.
    public var uploadID: String?
    /// The HTTP status of the last response, if one arrived.
    public var httpStatus: Int?
    /// The S3 error code (`NoSuchKey`, `SlowDown`, …), or the transport / errno name.
    public var s3Code: String?
    /// The `x-amz-request-id` of the last response, if one arrived.
    public var requestID: String?
    /// Human-readable detail (server message, curl message, errno text).
    public var message: String
    /// How many attempts were made (1 when not retried).
    public var attempts: Int

    public init(kind: Kind, operation: String, bucket: String? = nil, key: String? = nil, uploadID: String? = nil,
                httpStatus: Int? = nil, s3Code: String? = nil, requestID: String? = nil, message: String,
                attempts: Int = 1) {
        self.kind = kind
        self.operation = operation
        self.bucket = bucket
        self.key = key
        self.uploadID = uploadID
        self.httpStatus = httpStatus
        self.s3Code = s3Code
        self.requestID = requestID
        self.message = message
        self.attempts = attempts
    }

    /// Whether a retry may succeed (``Kind/transient`` and ``Kind/throttled``).
    public var isRetryable: Bool { kind == .transient || kind == .throttled }

    public var description: String {
        var parts = ["\(operation) failed (\(kind.rawValue))"]
        if let bucket { parts.append("bucket=\(bucket)") }
        if let key { parts.append("key=\(key)") }
        if let uploadID { parts.append("uploadID=\(uploadID)") }
        if let httpStatus { parts.append("status=\(httpStatus)") }
        if let s3Code { parts.append("code=\(s3Code)") }
        if let requestID { parts.append("requestID=\(requestID)") }
        if attempts > 1 { parts.append("attempts=\(attempts)") }
        return parts.joined(separator: " ") + ": " + message
    }
}
