import Foundation

/// Everything ``S3Store`` needs to reach a bucket. Its `description` never shows secrets.
public struct S3Configuration: Sendable, CustomStringConvertible {
    /// Server-side encryption requested on every object written.
    public enum ServerSideEncryption: Sendable, Equatable {
        /// No `x-amz-server-side-encryption` header (the bucket default applies).
        case none
        /// SSE-S3: `x-amz-server-side-encryption: AES256`.
        case aes256
        /// SSE-KMS: `x-amz-server-side-encryption: aws:kms` with an optional key id
        /// (`x-amz-server-side-encryption-aws-kms-key-id`).
        case kms(keyID: String?)
    }

    /// The per-part integrity checksum sent with every UploadPart and PutObject.
    public enum PartChecksum: String, Sendable, Equatable {
        /// `Content-MD5` (base64 MD5 of the body).
        case md5
        /// `x-amz-checksum-crc32c` (base64 big-endian CRC32C); the upload is created with
        /// `x-amz-checksum-algorithm: CRC32C`.
        case crc32c
        /// `x-amz-checksum-sha256`; the upload is created with `x-amz-checksum-algorithm: SHA256`.
        case sha256
    }

    /// The bucket. ``makeObjectStore(location:s3:logger:)`` sets it from the URL.
    public var bucket: String
    /// The signing region (SigV4 credential scope). Default `us-east-1`.
    public var region: String
    /// A custom endpoint (`http://127.0.0.1:5000`, `https://minio.local:9000`, an R2 or Ceph
    /// URL); nil means AWS: `https://s3.<region>.amazonaws.com`.
    public var endpoint: String?
    /// Path-style addressing (`endpoint/bucket/key`) instead of virtual-hosted
    /// (`bucket.endpoint/key`). Defaults to true with a custom endpoint, false for AWS. A bucket
    /// whose name has dots uses path style over https regardless (``S3Store/usesPathStyle``).
    public var pathStyle: Bool
    /// Explicit credentials; nil means ``credentialProvider``, else the chain
    /// (``CredentialChain``).
    public var credentials: AWSCredentials?
    /// The profile for the shared config and credentials files; nil means `AWS_PROFILE` or
    /// `default`.
    public var profile: String?
    /// A credential provider to use instead of the chain (when ``credentials`` is nil).
    public var credentialProvider: (any AWSCredentialProvider)?
    /// Temporary credentials are refreshed when less than this many seconds remain before they
    /// expire. Default 300.
    public var credentialRefreshMargin: TimeInterval = 300
    /// Server-side encryption for objects written.
    public var serverSideEncryption: ServerSideEncryption
    /// The per-part checksum. Default CRC32C.
    public var partChecksum: PartChecksum
    /// A PEM CA bundle for TLS verification instead of the system store. TLS peer and host
    /// verification is always on.
    public var caBundle: String?
    /// The part size callers pass to ``MultipartUploader`` (≥ 5 MiB). Default 16 MiB.
    public var partSize: Int64
    /// Attempts per request, including the first. Default 6.
    public var maxAttempts: Int
    /// Total time one call may spend across all attempts, in seconds. Default 300.
    public var retryDeadline: TimeInterval
    /// First backoff cap in seconds; the cap doubles per attempt (full jitter). Default 0.1.
    public var retryBaseDelay: TimeInterval
    /// Largest backoff cap in seconds. Default 20.
    public var retryMaxDelay: TimeInterval
    /// TCP connect timeout in seconds. Default 10.
    public var connectTimeout: TimeInterval
    /// Timeout for one whole request (send and receive), in seconds. Default 300.
    public var requestTimeout: TimeInterval
    /// `max-parts` / `max-uploads` / `max-keys` per List page (≤ 1000). Default 1000.
    public var listPageSize: Int
    /// Whether the server honours `If-None-Match: *` (reported as
    /// ``ObjectStoreCapabilities/conditionalWrites``). AWS S3 does since 2024-08; set false
    /// for servers that ignore it.
    public var conditionalWrites: Bool
    /// Largest number of idle connections (curl handles) kept for reuse. Default 16.
    public var maxIdleConnections: Int

    public init(bucket: String, region: String = "us-east-1", endpoint: String? = nil, pathStyle: Bool? = nil,
                credentials: AWSCredentials? = nil, profile: String? = nil,
                serverSideEncryption: ServerSideEncryption = .none, partChecksum: PartChecksum = .crc32c,
                caBundle: String? = nil, partSize: Int64 = 16 << 20, maxAttempts: Int = 6,
                retryDeadline: TimeInterval = 300, retryBaseDelay: TimeInterval = 0.1, retryMaxDelay: TimeInterval = 20,
                connectTimeout: TimeInterval = 10, requestTimeout: TimeInterval = 300, listPageSize: Int = 1000,
                conditionalWrites: Bool = true, maxIdleConnections: Int = 16) {
        self.bucket = bucket
        self.region = region
        self.endpoint = endpoint
        self.pathStyle = pathStyle ?? (endpoint != nil)
        self.credentials = credentials
        self.profile = profile
        self.serverSideEncryption = serverSideEncryption
        self.partChecksum = partChecksum
        self.caBundle = caBundle
        self.partSize = partSize
        self.maxAttempts = maxAttempts
        self.retryDeadline = retryDeadline
        self.retryBaseDelay = retryBaseDelay
        self.retryMaxDelay = retryMaxDelay
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        self.listPageSize = listPageSize
        self.conditionalWrites = conditionalWrites
        self.maxIdleConnections = maxIdleConnections
    }

    public var description: String {
        "S3Configuration(bucket: \(bucket), region: \(region), endpoint: \(endpoint ?? "aws"), "
            + "pathStyle: \(pathStyle), credentials: \(credentials.map { "\($0)" } ?? credentialProvider?.providerDescription ?? "chain"), "
            + "sse: \(serverSideEncryption), checksum: \(partChecksum.rawValue), partSize: \(partSize), "
            + "maxAttempts: \(maxAttempts))"
    }

    /// S3 bucket naming rules (3-63 characters of lower-case letters, digits, `.` and `-`,
    /// starting and ending with a letter or digit). "Bucket naming rules", S3 User Guide.
    public static func isValidBucketName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (3...63).contains(bytes.count) else { return false }
        func alnum(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) }
        guard alnum(bytes.first!), alnum(bytes.last!) else { return false }
        return bytes.allSatisfy { alnum($0) || $0 == 0x2e || $0 == 0x2d } && !name.contains("..")
    }
}
