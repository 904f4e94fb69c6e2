import Foundation
import Logging
import ObjectStore
import Pipeline
import Testing

@Suite("retry loop")
struct RetryLoopTests {
    let fast = RetryLoop(policy: RetryPolicy(maxAttempts: .max, deadline: .infinity, baseDelay: 0, maxDelay: 0))
    let logger = Logger(label: "test")

    private func error(_ kind: ObjectStoreError.Kind, _ code: String?) -> ObjectStoreError {
        ObjectStoreError(kind: kind, operation: "PutObject", bucket: "b", key: "k", httpStatus: 403, s3Code: code, message: "refused")
    }

    @Test("access denied, bad credentials, no such bucket and KMS refusals end the loop at once with a hint",
          arguments: [(ObjectStoreError.Kind.accessDenied, "AccessDenied"), (.accessDenied, "InvalidAccessKeyId"),
                      (.accessDenied, "SignatureDoesNotMatch"), (.notFound, "NoSuchBucket"), (.permanent, "KMS.DisabledException"),
                      (.invalidArgument, "InvalidArgument")])
    func permanent(kind: ObjectStoreError.Kind, code: String) {
        var attempts = 0
        #expect(throws: PermanentStoreError.self) {
            // Stop after a few attempts: a misclassified error then fails this test instead of
            // retrying forever.
            try fast.run("put", logger: logger, stopping: { attempts >= 5 }, onStop: { CancellationError() }) { () throws -> Int in
                attempts += 1
                throw error(kind, code)
            }
        }
        #expect(attempts == 1)
        let text = PermanentStoreError(step: "put", error: error(kind, code)).description
        #expect(text.contains("Check") || text.contains("See docs"), "\(text)")
    }

    @Test("throttling and transient failures are retried, counted by kind, until the step succeeds")
    func transient() throws {
        var attempts = 0
        var kinds: [String] = []
        let v = try fast.run("put", logger: logger, stopping: { false }, onStop: { CancellationError() },
                             retried: { kinds.append($0) }) { () throws -> Int in
            attempts += 1
            if attempts == 1 { throw error(.throttled, "SlowDown") }
            if attempts == 2 { throw error(.transient, "InternalError") }
            if attempts == 3 { throw error(.notFound, "NoSuchUpload") }
            return 42
        }
        #expect(v == 42)
        #expect(kinds == ["throttled", "transient", "notFound"])
    }

    @Test("a stop request ends the retries")
    func stops() {
        var attempts = 0
        #expect(throws: CancellationError.self) {
            try fast.run("put", logger: logger, stopping: { attempts >= 3 }, onStop: { CancellationError() }) { () throws -> Int in
                attempts += 1
                throw error(.transient, "InternalError")
            }
        }
        #expect(attempts == 3)
    }

    @Test("the step policy backs off exponentially with jitter, at most 30 s, without limit")
    func policy() {
        let p = RetryLoop.steps
        for attempt in [1, 2, 5, 10, 100, 10_000] {
            let d = try! #require(p.delay(after: attempt, elapsed: 1e9))
            #expect(d >= 0 && d <= min(30, 0.2 * pow(2, Double(attempt - 1))))
        }
    }
}
