import Foundation
import Logging

/// ``ObjectStore`` over the S3 REST API (AWS S3, MinIO, Ceph RGW, R2, moto), signed with
/// SigV4, over libcurl with keep-alive connections.
///
/// Thread-safe: every call may run concurrently from several threads; each in-flight call uses
/// its own pooled connection. Failed requests are retried per ``S3Configuration`` (see
/// docs/object-store.md, "Retry policy").
public final class S3Store: ObjectStore {
    public let configuration: S3Configuration
    public let capabilities: ObjectStoreCapabilities
    private let credentials: RefreshingCredentialProvider
    private let logger: Logger?
    private let client: CurlHTTPClient
    private let signer: SigV4Signer
    private let endpoint: Endpoint
    /// Whether requests use path-style URLs: ``S3Configuration/pathStyle``, or a bucket name
    /// with dots over https, which virtual-hosted style cannot serve (the certificate's
    /// `*.s3.<region>.amazonaws.com` wildcard matches one label only).
    public let usesPathStyle: Bool
    private let retry: RetryPolicy

    /// The parts of the endpoint URL.
    struct Endpoint: Sendable {
        var scheme: String
        /// Host with `:port` when the port is explicit.
        var authority: String

        init(_ url: String) throws {
            guard let schemeEnd = url.range(of: "://") else {
                throw ObjectStoreError(kind: .invalidArgument, operation: "Configure",
                                       message: "endpoint '\(url)' needs a scheme (http:// or https://)")
            }
            scheme = url[..<schemeEnd.lowerBound].lowercased()
            guard scheme == "http" || scheme == "https" else {
                throw ObjectStoreError(kind: .invalidArgument, operation: "Configure",
                                       message: "endpoint '\(url)' must be http or https")
            }
            var rest = String(url[schemeEnd.upperBound...])
            while rest.hasSuffix("/") { rest.removeLast() }
            guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@") else {
                throw ObjectStoreError(kind: .invalidArgument, operation: "Configure",
                                       message: "endpoint '\(url)' must be scheme://host[:port] with no path or user info")
            }
            authority = rest.lowercased()
        }
    }

    /// Opens a store. No request is sent until the first call.
    /// - Parameters:
    ///   - configuration: bucket, endpoint, credentials, retries.
    ///   - logger: receives one debug line per request and a warning per retry; never secrets.
    /// - Throws: ``ObjectStoreError`` when the configuration is invalid or no credential provider
    ///   is configured (``CredentialChain``). Credentials are fetched on the first request.
    public init(configuration: S3Configuration, logger: Logger? = nil) throws {
        guard S3Configuration.isValidBucketName(configuration.bucket) else {
            throw ObjectStoreError(kind: .invalidArgument, operation: "Configure", bucket: configuration.bucket,
                                   message: "invalid bucket name")
        }
        guard configuration.maxAttempts >= 1, configuration.listPageSize >= 1,
            configuration.listPageSize <= S3Limits.maximumPageSize
        else {
            throw ObjectStoreError(kind: .invalidArgument, operation: "Configure", bucket: configuration.bucket,
                                   message: "maxAttempts must be ≥ 1 and listPageSize 1...1000")
        }
        self.configuration = configuration
        self.capabilities = ObjectStoreCapabilities(conditionalWrites: configuration.conditionalWrites)
        let provider: any AWSCredentialProvider
        do {
            if configuration.credentials == nil, let given = configuration.credentialProvider {
                provider = given
            } else {
                provider = try CredentialChain.provider(explicit: configuration.credentials, profile: configuration.profile,
                                                        region: configuration.region, caBundle: configuration.caBundle)
            }
        } catch let error as CredentialError {
            throw ObjectStoreError(kind: .accessDenied, operation: "ResolveCredentials", bucket: configuration.bucket,
                                   message: "\(error)")
        }
        self.credentials = provider as? RefreshingCredentialProvider
            ?? RefreshingCredentialProvider(provider: provider, refreshMargin: configuration.credentialRefreshMargin,
                                            logger: logger)
        self.logger = logger
        self.client = CurlHTTPClient(caBundle: configuration.caBundle,
                                     maxIdleConnections: configuration.maxIdleConnections)
        self.signer = SigV4Signer(region: configuration.region)
        let endpoint = try Endpoint(configuration.endpoint ?? "https://s3.\(configuration.region).amazonaws.com")
        self.endpoint = endpoint
        self.usesPathStyle = configuration.pathStyle || (configuration.bucket.contains(".") && endpoint.scheme == "https")
        self.retry = RetryPolicy(maxAttempts: configuration.maxAttempts, deadline: configuration.retryDeadline,
                                 baseDelay: configuration.retryBaseDelay, maxDelay: configuration.retryMaxDelay)
    }

    /// The credential provider in use, e.g. `environment` or
    /// `profile prod (assume role arn:… via source_profile base)`; never a secret.
    public var credentialSource: String { credentials.providerDescription }

    /// The current credentials (fetched or refreshed if needed), as the next request would be
    /// signed with.
    /// - Throws: ``ObjectStoreError`` (`accessDenied`, or `transient` when the provider's
    ///   service was unreachable) naming the provider.
    public func currentCredentials() throws -> AWSCredentials {
        try signingCredentials(operation: "ResolveCredentials", key: nil, uploadID: nil, attempt: 1)
    }

    private func signingCredentials(operation: String, key: String?, uploadID: String?, attempt: Int) throws(ObjectStoreError)
        -> AWSCredentials
    {
        do {
            return try credentials.credentials()
        } catch {
            throw ObjectStoreError(kind: error.isRetryable ? .transient : .accessDenied, operation: operation,
                                   bucket: configuration.bucket, key: key, uploadID: uploadID,
                                   s3Code: "credentials.\(error.code.rawValue)",
                                   message: "\(error)", attempts: attempt)
        }
    }

    /// Closes idle connections. Calls made afterwards open new ones.
    public func close() {
        client.close()
    }

    // MARK: Addressing

    /// The URL, `Host` header and SigV4 canonical path for `key` (nil: the bucket itself).
    func address(key: String?, query: [(String, String)]) -> (url: String, host: String, path: String) {
        let encodedKey = key.map { SigV4Signer.uriEncode($0, encodeSlash: false) }
        let host: String
        let path: String
        if usesPathStyle {
            host = endpoint.authority
            path = "/\(configuration.bucket)" + (encodedKey.map { "/" + $0 } ?? "")
        } else {
            host = "\(configuration.bucket).\(endpoint.authority)"
            path = "/" + (encodedKey ?? "")
        }
        let queryString = SigV4Signer.canonicalQuery(query)
        return ("\(endpoint.scheme)://\(host)\(path)" + (queryString.isEmpty ? "" : "?" + queryString), host, path)
    }

    // MARK: Request execution with retries

    private struct Call {
        var operation: String
        var method: String
        var key: String?
        var uploadID: String?
        var query: [(String, String)] = []
        var headers: [(String, String)] = []
        var body: ObjectBody?
        var digests: BodyDigests?
        var maxResponseBytes = 16 << 20
        /// CompleteMultipartUpload can fail after sending 200: the body is then `<Error>`.
        var errorIn200 = false
    }

    private func execute(_ call: Call) throws -> HTTPResponse {
        let start = Date()
        let (url, host, path) = address(key: call.key, query: call.query)
        let payloadHash: String
        if let digests = call.digests {
            payloadHash = digests.sha256Hex
        } else if let body = call.body {
            payloadHash = try BodyDigests.compute(body, checksum: nil).sha256Hex
        } else {
            payloadHash = SigV4Signer.hex(SHA256Empty.digest)
        }
        var attempt = 0
        while true {
            attempt += 1
            let failure: ObjectStoreError
            do {
                // Asked on every attempt: temporary credentials may be refreshed between the
                // parts of one upload, or between the attempts of one request.
                let current = try signingCredentials(operation: call.operation, key: call.key, uploadID: call.uploadID,
                                                     attempt: attempt)
                var headers = call.headers
                headers += signer.sign(method: call.method, host: host, encodedPath: path, query: call.query,
                                       headers: call.headers, payloadSHA256: payloadHash, credentials: current,
                                       date: Date())
                let request = HTTPRequest(method: call.method, url: url, headers: headers, body: call.body,
                                          connectTimeout: configuration.connectTimeout,
                                          timeout: configuration.requestTimeout, maxResponseBytes: call.maxResponseBytes)
                let response = try client.perform(request)
                let requestID = response.headers["x-amz-request-id"]
                logger?.debug("s3 request", metadata: [
                    "s3.operation": "\(call.operation)", "s3.key": "\(call.key ?? "")",
                    "http.status": "\(response.status)", "s3.request_id": "\(requestID ?? "")",
                    "attempt": "\(attempt)",
                ])
                if (200..<300).contains(response.status) {
                    guard call.errorIn200, let root = try? S3XML.parse(response.body), root.name == "Error" else {
                        return response
                    }
                    // "CompleteMultipartUpload": a 200 whose body is an Error means the
                    // completion failed; S3 says to retry.
                    failure = ObjectStoreError(
                        kind: .transient, operation: call.operation, bucket: configuration.bucket, key: call.key,
                        uploadID: call.uploadID, httpStatus: response.status, s3Code: root.text("Code"),
                        requestID: root.text("RequestId") ?? requestID,
                        message: "200 response with an <Error> body: \(root.text("Message") ?? "")", attempts: attempt)
                } else {
                    failure = classify(response, call: call, attempt: attempt)
                }
            } catch let error as ObjectStoreError {
                failure = error
            } catch let error as TransportError {
                failure = ObjectStoreError(
                    kind: error.isRetryable ? .transient : .permanent, operation: call.operation,
                    bucket: configuration.bucket, key: call.key, uploadID: call.uploadID, s3Code: error.codeName,
                    message: error.message, attempts: attempt)
            } catch {
                failure = ObjectStoreError(kind: .permanent, operation: call.operation, bucket: configuration.bucket,
                                           key: call.key, uploadID: call.uploadID, message: "\(error)", attempts: attempt)
            }
            guard failure.isRetryable, let delay = retry.delay(after: attempt, elapsed: Date().timeIntervalSince(start))
            else { throw failure }
            logger?.warning("s3 request failed; retrying", metadata: [
                "error": "\(failure)", "delay_ms": "\(Int(delay * 1000))",
            ])
            Thread.sleep(forTimeInterval: delay)
        }
    }

    /// Maps a non-2xx response to an error kind (see docs/object-store.md, "Errors").
    private func classify(_ response: HTTPResponse, call: Call, attempt: Int) -> ObjectStoreError {
        let xml = try? S3XML.parse(response.body)
        let code = xml?.name == "Error" ? xml?.text("Code") : nil
        let message = (xml?.name == "Error" ? xml?.text("Message") : nil) ?? "HTTP \(response.status)"
        let requestID = response.headers["x-amz-request-id"] ?? xml?.text("RequestId")
        let kind: ObjectStoreError.Kind
        switch response.status {
        case 412: kind = .alreadyExists
        case 409 where code == "ConditionalRequestConflict": kind = .conflict
        case 404: kind = .notFound
        case 401, 403: kind = .accessDenied
        case 429: kind = .throttled
        case 503 where code == "SlowDown" || code == nil: kind = .throttled
        case 408, 500...599: kind = .transient
        default: kind = .permanent
        }
        return ObjectStoreError(kind: kind, operation: call.operation, bucket: configuration.bucket, key: call.key,
                                uploadID: call.uploadID, httpStatus: response.status, s3Code: code,
                                requestID: requestID, message: message, attempts: attempt)
    }

    private func parseXML(_ response: HTTPResponse, _ call: Call, root expected: String) throws -> XMLElementNode {
        do {
            let root = try S3XML.parse(response.body)
            // moto_server names some roots `…Response` instead of `…Result` (docs/compat.md).
            let alternative = expected.hasSuffix("Result") ? String(expected.dropLast(6)) + "Response" : expected
            guard root.name == expected || root.name == alternative else {
                throw S3XML.ParseError(message: "expected <\(expected)>, got <\(root.name)>")
            }
            return root
        } catch {
            throw ObjectStoreError(kind: .permanent, operation: call.operation, bucket: configuration.bucket,
                                   key: call.key, uploadID: call.uploadID, httpStatus: response.status,
                                   requestID: response.headers["x-amz-request-id"],
                                   message: "unparseable response: \((error as? S3XML.ParseError)?.message ?? "\(error)")")
        }
    }

    private func malformed(_ call: Call, _ response: HTTPResponse, _ what: String) -> ObjectStoreError {
        ObjectStoreError(kind: .permanent, operation: call.operation, bucket: configuration.bucket, key: call.key,
                         uploadID: call.uploadID, httpStatus: response.status,
                         requestID: response.headers["x-amz-request-id"], message: "malformed response: \(what)")
    }

    // MARK: Header helpers

    private func validateKey(_ key: String, _ operation: String) throws {
        guard !key.isEmpty, key.utf8.count <= 1024 else {
            throw ObjectStoreError(kind: .invalidArgument, operation: operation, bucket: configuration.bucket, key: key,
                                   message: "keys must be 1...1024 UTF-8 bytes")
        }
    }

    private func metadataHeaders(_ metadata: [String: String], _ operation: String, key: String) throws -> [(String, String)] {
        var headers: [(String, String)] = []
        for (name, value) in metadata.sorted(by: { $0.key < $1.key }) {
            let lower = name.lowercased()
            let nameOK = !lower.isEmpty && lower.utf8.allSatisfy {
                ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d || $0 == 0x5f || $0 == 0x2e
            }
            let valueOK = value.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7f }
            guard nameOK, valueOK else {
                throw ObjectStoreError(kind: .invalidArgument, operation: operation, bucket: configuration.bucket, key: key,
                                       message: "metadata '\(name)' must be [a-z0-9-_.] with a printable ASCII value")
            }
            headers.append(("x-amz-meta-\(lower)", value))
        }
        return headers
    }

    private var encryptionHeaders: [(String, String)] {
        switch configuration.serverSideEncryption {
        case .none: return []
        case .aes256: return [("x-amz-server-side-encryption", "AES256")]
        case .kms(let keyID):
            var headers = [("x-amz-server-side-encryption", "aws:kms")]
            if let keyID { headers.append(("x-amz-server-side-encryption-aws-kms-key-id", keyID)) }
            return headers
        }
    }

    private func checksumHeaders(_ digests: BodyDigests) -> (headers: [(String, String)], value: String?) {
        switch configuration.partChecksum {
        case .md5: return ([("Content-MD5", digests.md5Base64!)], nil)
        case .crc32c: return ([("x-amz-checksum-crc32c", digests.crc32cBase64!)], digests.crc32cBase64)
        case .sha256: return ([("x-amz-checksum-sha256", digests.sha256Base64)], digests.sha256Base64)
        }
    }

    // MARK: ObjectStore

    public func createMultipartUpload(key: String, metadata: [String: String]) throws -> String {
        try validateKey(key, "CreateMultipartUpload")
        var call = Call(operation: "CreateMultipartUpload", method: "POST", key: key)
        call.query = [("uploads", "")]
        call.headers = [("Content-Type", "application/octet-stream")]
        call.headers += try metadataHeaders(metadata, call.operation, key: key) + encryptionHeaders
        switch configuration.partChecksum {
        case .crc32c: call.headers.append(("x-amz-checksum-algorithm", "CRC32C"))
        case .sha256: call.headers.append(("x-amz-checksum-algorithm", "SHA256"))
        case .md5: break
        }
        let response = try execute(call)
        let root = try parseXML(response, call, root: "InitiateMultipartUploadResult")
        guard let uploadID = root.text("UploadId"), !uploadID.isEmpty else {
            throw malformed(call, response, "no UploadId")
        }
        return uploadID
    }

    public func uploadPart(key: String, uploadID: String, partNumber: Int, data: ObjectBody) throws -> UploadedPart {
        try validateKey(key, "UploadPart")
        guard (1...S3Limits.maximumPartCount).contains(partNumber), data.length <= S3Limits.maximumPartSize else {
            throw ObjectStoreError(kind: .invalidArgument, operation: "UploadPart", bucket: configuration.bucket, key: key,
                                   uploadID: uploadID, message: "part \(partNumber) of \(data.length) bytes is out of range")
        }
        var call = Call(operation: "UploadPart", method: "PUT", key: key, uploadID: uploadID)
        call.query = [("partNumber", "\(partNumber)"), ("uploadId", uploadID)]
        call.body = data
        let digests = try BodyDigests.compute(data, checksum: configuration.partChecksum)
        call.digests = digests
        let (headers, checksum) = checksumHeaders(digests)
        call.headers = headers
        let response = try execute(call)
        guard let etag = SigV4Signer.etag(response.headers["etag"]) else { throw malformed(call, response, "no ETag") }
        return UploadedPart(partNumber: partNumber, etag: etag, size: data.length, checksum: checksum)
    }

    public func completeMultipartUpload(key: String, uploadID: String, parts: [UploadedPart], ifNoneMatch: Bool) throws
        -> String
    {
        try validateKey(key, "CompleteMultipartUpload")
        var call = Call(operation: "CompleteMultipartUpload", method: "POST", key: key, uploadID: uploadID)
        call.query = [("uploadId", uploadID)]
        call.headers = [("Content-Type", "application/xml")]
        if ifNoneMatch { call.headers.append(("If-None-Match", "*")) }
        let body = S3XML.completeMultipartUploadBody(parts: parts, checksum: configuration.partChecksum)
        call.body = .bytes(body)
        call.errorIn200 = true
        let response = try execute(call)
        let root = try parseXML(response, call, root: "CompleteMultipartUploadResult")
        guard let etag = SigV4Signer.etag(root.text("ETag")) else { throw malformed(call, response, "no ETag") }
        return etag
    }

    public func abortMultipartUpload(key: String, uploadID: String) throws {
        try validateKey(key, "AbortMultipartUpload")
        var call = Call(operation: "AbortMultipartUpload", method: "DELETE", key: key, uploadID: uploadID)
        call.query = [("uploadId", uploadID)]
        _ = try execute(call)
    }

    public func listMultipartUploads(prefix: String) throws -> [MultipartUploadInfo] {
        var uploads: [MultipartUploadInfo] = []
        var keyMarker: String?
        var uploadIDMarker: String?
        while true {
            var call = Call(operation: "ListMultipartUploads", method: "GET", key: nil)
            call.query = [("uploads", ""), ("prefix", prefix), ("max-uploads", "\(configuration.listPageSize)")]
            if let keyMarker { call.query.append(("key-marker", keyMarker)) }
            if let uploadIDMarker { call.query.append(("upload-id-marker", uploadIDMarker)) }
            let response = try execute(call)
            let root = try parseXML(response, call, root: "ListMultipartUploadsResult")
            for upload in root.children("Upload") {
                guard let key = upload.text("Key"), let id = upload.text("UploadId") else {
                    throw malformed(call, response, "Upload without Key or UploadId")
                }
                uploads.append(MultipartUploadInfo(key: key, uploadID: id, initiated: S3XML.parseDate(upload.text("Initiated"))))
            }
            guard root.text("IsTruncated") == "true" else { return uploads }
            let nextKey = root.text("NextKeyMarker")
            let nextID = root.text("NextUploadIdMarker")
            guard let nextKey, !nextKey.isEmpty, (nextKey, nextID) != (keyMarker ?? "", uploadIDMarker) else {
                throw malformed(call, response, "truncated listing without advancing NextKeyMarker")
            }
            keyMarker = nextKey
            uploadIDMarker = nextID
        }
    }

    public func listParts(key: String, uploadID: String) throws -> [UploadedPart] {
        try validateKey(key, "ListParts")
        var parts: [UploadedPart] = []
        var marker: Int?
        while true {
            var call = Call(operation: "ListParts", method: "GET", key: key, uploadID: uploadID)
            call.query = [("uploadId", uploadID), ("max-parts", "\(configuration.listPageSize)")]
            if let marker { call.query.append(("part-number-marker", "\(marker)")) }
            let response = try execute(call)
            let root = try parseXML(response, call, root: "ListPartsResult")
            for part in root.children("Part") {
                guard let number = part.text("PartNumber").flatMap(Int.init), let etag = SigV4Signer.etag(part.text("ETag")),
                    let size = part.text("Size").flatMap(Int64.init)
                else { throw malformed(call, response, "Part without PartNumber, ETag or Size") }
                let checksum: String? =
                    switch configuration.partChecksum {
                    case .crc32c: part.text("ChecksumCRC32C")
                    case .sha256: part.text("ChecksumSHA256")
                    case .md5: nil
                    }
                parts.append(UploadedPart(partNumber: number, etag: etag, size: size, checksum: checksum))
            }
            guard root.text("IsTruncated") == "true" else { break }
            guard let next = root.text("NextPartNumberMarker").flatMap(Int.init), next > (marker ?? 0) else {
                throw malformed(call, response, "truncated listing without advancing NextPartNumberMarker")
            }
            marker = next
        }
        return parts.sorted { $0.partNumber < $1.partNumber }
    }

    public func putObject(key: String, data: ObjectBody, metadata: [String: String], ifNoneMatch: Bool) throws -> String {
        try validateKey(key, "PutObject")
        var call = Call(operation: "PutObject", method: "PUT", key: key)
        call.body = data
        let digests = try BodyDigests.compute(data, checksum: configuration.partChecksum)
        call.digests = digests
        call.headers = [("Content-Type", "application/octet-stream")] + checksumHeaders(digests).headers
        call.headers += try metadataHeaders(metadata, call.operation, key: key) + encryptionHeaders
        if ifNoneMatch { call.headers.append(("If-None-Match", "*")) }
        let response = try execute(call)
        guard let etag = SigV4Signer.etag(response.headers["etag"]) else { throw malformed(call, response, "no ETag") }
        return etag
    }

    public func headObject(key: String) throws -> ObjectInfo? {
        try validateKey(key, "HeadObject")
        let call = Call(operation: "HeadObject", method: "HEAD", key: key)
        let response: HTTPResponse
        do {
            response = try execute(call)
        } catch let error as ObjectStoreError where error.kind == .notFound {
            return nil
        }
        var metadata: [String: String] = [:]
        for (name, value) in response.headers where name.hasPrefix("x-amz-meta-") {
            metadata[String(name.dropFirst("x-amz-meta-".count))] = value
        }
        guard let size = response.headers["content-length"].flatMap(Int64.init) else {
            throw malformed(call, response, "no Content-Length")
        }
        let lastModified = response.headers["last-modified"].flatMap(Self.parseHTTPDate)
        return ObjectInfo(key: key, size: size, etag: SigV4Signer.etag(response.headers["etag"]),
                          lastModified: lastModified, metadata: metadata)
    }

    public func getObject(key: String, range: ClosedRange<Int64>?) throws -> [UInt8] {
        try validateKey(key, "GetObject")
        var call = Call(operation: "GetObject", method: "GET", key: key)
        call.maxResponseBytes = Int.max
        if let range {
            guard range.lowerBound >= 0 else {
                throw ObjectStoreError(kind: .invalidArgument, operation: "GetObject", bucket: configuration.bucket,
                                       key: key, message: "negative range")
            }
            call.headers = [("Range", "bytes=\(range.lowerBound)-\(range.upperBound)")]
            call.maxResponseBytes = Int(range.upperBound - range.lowerBound + 1)
        }
        let response = try execute(call)
        if let range, response.status == 200 {
            // The server ignored Range and sent the whole object.
            let lower = Int(min(range.lowerBound, Int64(response.body.count)))
            let upper = Int(min(range.upperBound + 1, Int64(response.body.count)))
            return Array(response.body[lower..<upper])
        }
        return response.body
    }

    public func listObjects(prefix: String, startAfter: String?, continuationToken: String?, maxKeys: Int) throws
        -> ObjectPage
    {
        var call = Call(operation: "ListObjectsV2", method: "GET", key: nil)
        call.query = [("list-type", "2"), ("prefix", prefix), ("max-keys", "\(max(1, min(maxKeys, 1000)))")]
        if let startAfter { call.query.append(("start-after", startAfter)) }
        if let continuationToken { call.query.append(("continuation-token", continuationToken)) }
        let response = try execute(call)
        let root = try parseXML(response, call, root: "ListBucketResult")
        var objects: [ObjectInfo] = []
        for item in root.children("Contents") {
            guard let key = item.text("Key"), let size = item.text("Size").flatMap(Int64.init) else {
                throw malformed(call, response, "Contents without Key or Size")
            }
            objects.append(ObjectInfo(key: key, size: size, etag: SigV4Signer.etag(item.text("ETag")),
                                      lastModified: S3XML.parseDate(item.text("LastModified")), metadata: [:]))
        }
        var next: String?
        if root.text("IsTruncated") == "true" {
            guard let token = root.text("NextContinuationToken"), !token.isEmpty else {
                throw malformed(call, response, "truncated listing without NextContinuationToken")
            }
            next = token
        }
        return ObjectPage(objects: objects, nextContinuationToken: next)
    }

    public func deleteObject(key: String) throws {
        try validateKey(key, "DeleteObject")
        do {
            _ = try execute(Call(operation: "DeleteObject", method: "DELETE", key: key))
        } catch let error as ObjectStoreError where error.kind == .notFound && error.s3Code != "NoSuchBucket" {
            return
        }
    }

    // MARK: Extras

    /// Creates the bucket (S3 `CreateBucket`); with a region other than `us-east-1` it sends the
    /// `LocationConstraint`. Succeeds if the bucket exists and is ours
    /// (`BucketAlreadyOwnedByYou`).
    public func createBucket() throws {
        var call = Call(operation: "CreateBucket", method: "PUT", key: nil)
        if configuration.region != "us-east-1" {
            let xml = "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                + "<LocationConstraint>\(S3XML.escape(configuration.region))</LocationConstraint></CreateBucketConfiguration>"
            call.body = .bytes(Array(xml.utf8))
            call.headers = [("Content-Type", "application/xml")]
        }
        do {
            _ = try execute(call)
        } catch let error as ObjectStoreError where error.s3Code == "BucketAlreadyOwnedByYou" {
            return
        }
    }

    /// Checks whether the server honours `If-None-Match: *` on PutObject by writing `probeKey`
    /// twice (then deleting it). Use it to set ``S3Configuration/conditionalWrites`` for
    /// servers of unknown vintage.
    public func probeConditionalWrites(probeKey: String) throws -> Bool {
        try deleteObject(key: probeKey)
        defer { try? deleteObject(key: probeKey) }
        _ = try putObject(key: probeKey, data: .bytes(Array("probe-1".utf8)), metadata: [:], ifNoneMatch: true)
        do {
            _ = try putObject(key: probeKey, data: .bytes(Array("probe-2".utf8)), metadata: [:], ifNoneMatch: true)
        } catch let error as ObjectStoreError where error.kind == .alreadyExists {
            return true
        }
        return false
    }

    /// Parses an RFC 7231 IMF-fixdate (`Wed, 21 Oct 2015 07:28:00 GMT`).
    static func parseHTTPDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }
}

extension SigV4Signer {
    /// An etag without quotes, or nil when absent or empty.
    static func etag(_ raw: String?) -> String? {
        guard let value = S3XML.unquote(raw), !value.isEmpty else { return nil }
        return value
    }
}

/// SHA-256 of the empty string, for requests without a body.
enum SHA256Empty {
    static let digest: [UInt8] = [
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
        0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
    ]
}
