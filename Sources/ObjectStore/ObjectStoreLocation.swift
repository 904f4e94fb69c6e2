import Foundation
import Logging

/// Where objects live, in the URL form used by every tool:
///
/// - `s3://bucket/prefix`: an S3 bucket; keys are written under `prefix` (normalised to end
///   with `/` when non-empty). Endpoint, region and addressing come from ``S3Configuration``.
/// - `file:///absolute/dir`: a local directory; the whole path is the store root and the
///   prefix is empty.
public enum ObjectStoreLocation: Sendable, Equatable, CustomStringConvertible {
    case s3(bucket: String, prefix: String)
    case file(root: String)

    /// Parses `s3://bucket[/prefix]` or `file:///dir` (also `file://localhost/dir`).
    /// - Throws: ``ObjectStoreError`` (`invalidArgument`) for any other form, an invalid bucket
    ///   name, a relative file path, or a query string / fragment.
    public init(parsing url: String) throws {
        func invalid(_ why: String) -> ObjectStoreError {
            ObjectStoreError(kind: .invalidArgument, operation: "ParseLocation", message: "\(why): '\(url)'")
        }
        if url.contains("?") || url.contains("#") {
            throw invalid("a location takes no query string or fragment")
        }
        if url.hasPrefix("s3://") {
            let rest = url.dropFirst(5)
            let bucket = String(rest.prefix { $0 != "/" })
            var prefix = String(rest.dropFirst(bucket.count))
            while prefix.hasPrefix("/") { prefix.removeFirst() }
            guard S3Configuration.isValidBucketName(bucket) else {
                throw invalid("invalid S3 bucket name '\(bucket)'")
            }
            if !prefix.isEmpty && !prefix.hasSuffix("/") { prefix += "/" }
            self = .s3(bucket: bucket, prefix: prefix)
        } else if url.hasPrefix("file://") {
            var path = String(url.dropFirst(7))
            if path.hasPrefix("localhost/") { path.removeFirst("localhost".count) }
            guard path.hasPrefix("/") else { throw invalid("a file location needs an absolute path (file:///dir)") }
            guard let decoded = path.removingPercentEncoding else { throw invalid("bad percent-encoding") }
            var root = decoded
            while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
            self = .file(root: root)
        } else {
            throw invalid("expected s3://bucket/prefix or file:///dir")
        }
    }

    /// The key prefix callers put in front of their keys: the S3 prefix, or "" for files.
    public var prefix: String {
        switch self {
        case .s3(_, let prefix): return prefix
        case .file: return ""
        }
    }

    public var description: String {
        switch self {
        case .s3(let bucket, let prefix): return "s3://\(bucket)/\(prefix)"
        case .file(let root): return "file://\(root)"
        }
    }
}

/// Opens the store a location names.
///
/// For `s3://` locations, `s3` supplies everything but the bucket (which the URL sets):
/// endpoint, region, addressing, credentials, retries. It is ignored for `file://`.
/// - Throws: ``ObjectStoreError`` when the store cannot be opened (missing credentials,
///   unusable root directory).
public func makeObjectStore(location: ObjectStoreLocation, s3: S3Configuration = S3Configuration(bucket: ""),
                            logger: Logger? = nil) throws -> any ObjectStore {
    switch location {
    case .s3(let bucket, _):
        var configuration = s3
        configuration.bucket = bucket
        return try S3Store(configuration: configuration, logger: logger)
    case .file(let root):
        return try FileStore(root: root)
    }
}
