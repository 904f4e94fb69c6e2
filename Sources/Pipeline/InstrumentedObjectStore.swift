import Foundation
import ObjectStore

/// An ``ObjectStore`` that counts every request by operation and failure kind
/// (`tidemark_s3_requests_total`, `tidemark_s3_errors_total`) and tells ``EngineHealth`` whether
/// the store answered: the "object store reachable" condition of `/ready`.
///
/// A request the store answered counts as reachable even when the answer is an error (not found,
/// already exists, access denied): only failures that mean "no answer" (transient, throttled
/// after the client's own retries) mark the store unreachable.
public struct InstrumentedObjectStore: ObjectStore {
    /// The wrapped store.
    public let base: any ObjectStore
    let metrics: EngineMetrics

    /// Wraps `base`, recording into `metrics` (and its ``EngineMetrics/health``).
    public init(base: any ObjectStore, metrics: EngineMetrics) {
        self.base = base
        self.metrics = metrics
    }

    private func observe<T>(_ operation: String, _ body: () throws -> T) throws -> T {
        do {
            let result = try body()
            metrics.s3Request(operation: operation, errorKind: nil)
            metrics.health.storeOutcome(reachable: true)
            return result
        } catch let e as ObjectStoreError {
            metrics.s3Request(operation: operation, errorKind: e.kind.rawValue)
            let answered = !(e.kind == .transient || e.kind == .throttled)
            metrics.health.storeOutcome(reachable: answered, detail: answered ? "" : "\(e)")
            throw e
        } catch {
            metrics.s3Request(operation: operation, errorKind: "other")
            throw error
        }
    }

    /// The wrapped store's capabilities.
    public var capabilities: ObjectStoreCapabilities { base.capabilities }

    /// ``base``'s `createMultipartUpload`, counted and its outcome reported.
    public func createMultipartUpload(key: String, metadata: [String: String]) throws -> String {
        try observe("create_multipart_upload") { try base.createMultipartUpload(key: key, metadata: metadata) }
    }

    /// ``base``'s `uploadPart`, counted and its outcome reported.
    public func uploadPart(key: String, uploadID: String, partNumber: Int, data: ObjectBody) throws -> UploadedPart {
        try observe("upload_part") { try base.uploadPart(key: key, uploadID: uploadID, partNumber: partNumber, data: data) }
    }

    /// ``base``'s `completeMultipartUpload`, counted and its outcome reported.
    public func completeMultipartUpload(key: String, uploadID: String, parts: [UploadedPart], ifNoneMatch: Bool) throws -> String {
        try observe("complete_multipart_upload") {
            try base.completeMultipartUpload(key: key, uploadID: uploadID, parts: parts, ifNoneMatch: ifNoneMatch)
        }
    }

    /// ``base``'s `abortMultipartUpload`, counted and its outcome reported.
    public func abortMultipartUpload(key: String, uploadID: String) throws {
        try observe("abort_multipart_upload") { try base.abortMultipartUpload(key: key, uploadID: uploadID) }
    }

    /// ``base``'s `listMultipartUploads`, counted and its outcome reported.
    public func listMultipartUploads(prefix: String) throws -> [MultipartUploadInfo] {
        try observe("list_multipart_uploads") { try base.listMultipartUploads(prefix: prefix) }
    }

    /// ``base``'s `listParts`, counted and its outcome reported.
    public func listParts(key: String, uploadID: String) throws -> [UploadedPart] {
        try observe("list_parts") { try base.listParts(key: key, uploadID: uploadID) }
    }

    /// ``base``'s `putObject`, counted and its outcome reported.
    public func putObject(key: String, data: ObjectBody, metadata: [String: String], ifNoneMatch: Bool) throws -> String {
        try observe("put_object") { try base.putObject(key: key, data: data, metadata: metadata, ifNoneMatch: ifNoneMatch) }
    }

    /// ``base``'s `headObject`, counted and its outcome reported.
    public func headObject(key: String) throws -> ObjectInfo? {
        try observe("head_object") { try base.headObject(key: key) }
    }

    /// ``base``'s `getObject`, counted and its outcome reported.
    public func getObject(key: String, range: ClosedRange<Int64>?) throws -> [UInt8] {
        try observe("get_object") { try base.getObject(key: key, range: range) }
    }

    /// ``base``'s `listObjects`, counted and its outcome reported.
    public func listObjects(prefix: String, startAfter: String?, continuationToken: String?, maxKeys: Int) throws -> ObjectPage {
        try observe("list_objects") {
            try base.listObjects(prefix: prefix, startAfter: startAfter, continuationToken: continuationToken, maxKeys: maxKeys)
        }
    }

    /// ``base``'s `deleteObject`, counted and its outcome reported.
    public func deleteObject(key: String) throws {
        try observe("delete_object") { try base.deleteObject(key: key) }
    }
}
