import Foundation
import Logging
import Manifest
import ObjectStore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// An object-store failure that retrying cannot fix: the engine stops with
/// ``EngineExit/storeRefused`` and says what to check, instead of retrying forever.
public struct PermanentStoreError: Error, CustomStringConvertible, Sendable {
    /// What the engine was doing (`probe`, `putObject`, ...).
    public var step: String
    /// The store's error, with the operation, bucket, key, status, code and request id.
    public var error: ObjectStoreError

    public init(step: String, error: ObjectStoreError) {
        self.step = step
        self.error = error
    }

    public var description: String {
        "the object store refused \(step) permanently: \(error). \(Self.hint(error))"
    }

    /// What an operator should check for `error`.
    static func hint(_ e: ObjectStoreError) -> String {
        switch (e.kind, e.s3Code ?? "") {
        case (_, "NoSuchBucket"): return "Check [sink] url: the bucket does not exist (or is in another region/endpoint)."
        case (_, "InvalidAccessKeyId"): return "Check the access key: AWS does not know it."
        case (_, "SignatureDoesNotMatch"): return "Check the secret access key (and [sink] region)."
        case (_, let code) where code.hasPrefix("KMS"):
            return "Check the KMS key ([sink] sse_kms_key_id) and the kms:GenerateDataKey / kms:Decrypt permissions."
        case (.accessDenied, _):
            return "Check the IAM policy: s3:PutObject, s3:GetObject, s3:ListBucket, s3:AbortMultipartUpload, s3:ListMultipartUploadParts on the prefix (docs/operations.md, Permissions)."
        default: return "See docs/operations.md, Errors."
        }
    }
}

/// The engine's one retry loop for steps that must eventually succeed (an S3 HEAD that decides
/// whether data is written twice, each commit-protocol step): a failure that may pass (5xx,
/// throttling, timeouts, a broker or manifest busy) is retried with ``RetryPolicy``'s bounded
/// exponential backoff with full jitter, without limit, until it succeeds or the engine stops; a
/// failure that cannot pass (access denied, no such bucket, invalid argument, KMS refusals)
/// ends the loop with ``PermanentStoreError``. Retries are counted by kind for the metrics.
public struct RetryLoop: Sendable {
    /// 0.2 s, doubling, at most 30 s a sleep, no attempt or time limit.
    public static let steps = RetryPolicy(maxAttempts: .max, deadline: .infinity, baseDelay: 0.2, maxDelay: 30)

    public var policy: RetryPolicy = Self.steps

    public init(policy: RetryPolicy = Self.steps) { self.policy = policy }

    /// Whether `error` cannot pass by retrying.
    public static func isPermanent(_ error: any Error) -> Bool {
        guard let e = error as? ObjectStoreError else { return false }
        switch e.kind {
        case .accessDenied, .invalidArgument: return true
        case .notFound: return e.s3Code == "NoSuchBucket"
        case .permanent: return (e.s3Code ?? "").hasPrefix("KMS")
        default: return false
        }
    }

    /// The kind a retry is counted under (`throttled`, `transient`, `kafka`, ...).
    public static func kind(of error: any Error) -> String {
        if let e = error as? ObjectStoreError { return e.kind.rawValue }
        if error is ManifestError { return "manifest" }
        return "other"
    }

    /// Runs `body` until it succeeds. `stopping` is checked between attempts (the loop then
    /// throws `onStop()`); `retried` is told the kind of every retried failure.
    public func run<T>(_ step: String, logger: Logger, stopping: () -> Bool, onStop: () -> any Error,
                       retried: (String) -> Void = { _ in }, _ body: () throws -> T) throws -> T {
        var attempt = 0
        let started = Date()
        while true {
            do {
                return try body()
            } catch let error as ManifestError {
                throw error   // a manifest refusal is a logic error: never retried blindly
            } catch {
                if Self.isPermanent(error), let e = error as? ObjectStoreError {
                    throw PermanentStoreError(step: step, error: e)
                }
                attempt += 1
                if stopping() { throw onStop() }
                let delay = policy.delay(after: attempt, elapsed: Date().timeIntervalSince(started)) ?? policy.maxDelay
                retried(Self.kind(of: error))
                logger.warning("step failed; retrying", metadata: [
                    "step": "\(step)", "attempt": "\(attempt)", "error": "\(error)", "retry_in_s": "\(String(format: "%.2f", delay))"])
                let until = Date().addingTimeInterval(delay)
                while Date() < until {
                    if stopping() { throw onStop() }
                    usleep(50_000)
                }
            }
        }
    }
}

/// Retries counted by kind (`tidemark_retries_total{kind=...}`).
public final class RetryCounters: Sendable {
    private let counts = Mutex<[String: Int]>([:])
    public init() {}
    public func add(_ kind: String) { counts.withLock { $0[kind, default: 0] += 1 } }
    public var snapshot: [String: Int] { counts.withLock { $0 } }
}
