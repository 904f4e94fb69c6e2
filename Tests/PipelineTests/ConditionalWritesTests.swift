import Foundation
import Logging
import ObjectStore
import Pipeline
import TestSupport
import Testing
import TidemarkConfig
import TidemarkLogging

/// `[sink] conditional_writes` and the start-up probe (issue 21, stretch).
@Suite("conditional-write probe")
struct ConditionalWritesTests {
    /// A store that forwards to `base` but ignores `If-None-Match` on PutObject (like a server
    /// of the old vintage), or fails every PutObject with `failPut`.
    final class NonConditionalStore: ObjectStore {
        let base: any ObjectStore
        let failPut: ObjectStoreError?
        init(base: any ObjectStore, failPut: ObjectStoreError? = nil) {
            self.base = base
            self.failPut = failPut
        }
        var capabilities: ObjectStoreCapabilities { base.capabilities }
        func createMultipartUpload(key: String, metadata: [String: String]) throws -> String {
            try base.createMultipartUpload(key: key, metadata: metadata)
        }
        func uploadPart(key: String, uploadID: String, partNumber: Int, data: ObjectBody) throws -> UploadedPart {
            try base.uploadPart(key: key, uploadID: uploadID, partNumber: partNumber, data: data)
        }
        func completeMultipartUpload(key: String, uploadID: String, parts: [UploadedPart], ifNoneMatch: Bool) throws -> String {
            try base.completeMultipartUpload(key: key, uploadID: uploadID, parts: parts, ifNoneMatch: ifNoneMatch)
        }
        func abortMultipartUpload(key: String, uploadID: String) throws { try base.abortMultipartUpload(key: key, uploadID: uploadID) }
        func listMultipartUploads(prefix: String) throws -> [MultipartUploadInfo] { try base.listMultipartUploads(prefix: prefix) }
        func listParts(key: String, uploadID: String) throws -> [UploadedPart] { try base.listParts(key: key, uploadID: uploadID) }
        func putObject(key: String, data: ObjectBody, metadata: [String: String], ifNoneMatch: Bool) throws -> String {
            if let failPut { throw failPut }
            return try base.putObject(key: key, data: data, metadata: metadata, ifNoneMatch: false)
        }
        func headObject(key: String) throws -> ObjectInfo? { try base.headObject(key: key) }
        func getObject(key: String, range: ClosedRange<Int64>?) throws -> [UInt8] { try base.getObject(key: key, range: range) }
        func listObjects(prefix: String, startAfter: String?, continuationToken: String?, maxKeys: Int) throws -> ObjectPage {
            try base.listObjects(prefix: prefix, startAfter: startAfter, continuationToken: continuationToken, maxKeys: maxKeys)
        }
        func deleteObject(key: String) throws { try base.deleteObject(key: key) }
    }

    final class Lines: @unchecked Sendable {
        // @unchecked Sendable: `lines` is only touched under `lock`.
        private let lock = NSLock()
        private var lines: [String] = []
        func append(_ line: String) { lock.withLock { lines.append(line) } }
        var text: String { lock.withLock { lines.joined() } }
    }

    func logger(_ lines: Lines) -> Logger {
        Logger(label: "tidemark.test") { label in JSONLogHandler(label: label, output: { lines.append($0) }) }
    }

    @Test("[sink] conditional_writes defaults to required; auto and off are accepted; anything else names the key")
    func config() throws {
        let base = "[kafka]\nbrokers = \"b:9092\"\ntopics = [\"t\"]\n[sink]\nurl = \"s3://b/p\"\n"
        func load(_ extra: String) throws -> EngineConfig {
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("tm-\(UUID()).toml")
            try (base + extra).write(to: url, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: url) }
            return try EngineConfig.load(path: url.path, environment: [:])
        }
        #expect(try load("").sink.conditionalWrites == "required")
        #expect(try load("conditional_writes = \"auto\"\n").sink.conditionalWrites == "auto")
        #expect(try load("conditional_writes = \"off\"\n").sink.conditionalWrites == "off")
        let error = #expect(throws: ConfigError.self) { try load("conditional_writes = \"sometimes\"\n") }
        #expect(error?.key == "sink.conditional_writes")
    }

    @Test("a store that ignores If-None-Match: required refuses, auto warns and falls back, off does not probe")
    func ignoringStore() throws {
        try withTemporaryDirectory { dir in
            let store = NonConditionalStore(base: try FileStore(root: dir.path))
            let lines = Lines()
            #expect(try Engine.probeConditionalWrites(store: store, key: "_tidemark_check/a") == false)
            let refused = #expect(throws: ConfigError.self) {
                try Engine.conditionalWritesUsable(mode: "required", store: store, key: "_tidemark_check/b",
                                                   logger: logger(lines))
            }
            #expect(refused?.key == "sink.conditional_writes")
            #expect(refused?.message.contains("If-None-Match") == true)
            #expect(try Engine.conditionalWritesUsable(mode: "auto", store: store, key: "_tidemark_check/c",
                                                       logger: logger(lines)) == false)
            #expect(lines.text.contains("falling back to HEAD before each commit"))
            #expect(try Engine.conditionalWritesUsable(mode: "off", store: store, key: "_tidemark_check/d",
                                                       logger: logger(lines)))
            // The probes cleaned up after themselves, and `off` wrote nothing.
            #expect(try store.listAllObjects(prefix: "").isEmpty)
        }
    }

    @Test("a store that honours If-None-Match passes (FileStore, S3 on moto); a probe that cannot run warns and goes on")
    func honouringStores() throws {
        try withTemporaryDirectory { dir in
            let lines = Lines()
            let files = try FileStore(root: dir.path)
            #expect(try Engine.conditionalWritesUsable(mode: "required", store: files, key: "p/_tidemark_check/x",
                                                       logger: logger(lines)))
            #expect(try files.headObject(key: "p/_tidemark_check/x") == nil)

            let denied = NonConditionalStore(base: files, failPut: ObjectStoreError(
                kind: .accessDenied, operation: "PutObject", message: "denied by test"))
            #expect(try Engine.conditionalWritesUsable(mode: "required", store: denied, key: "p/_tidemark_check/y",
                                                       logger: logger(lines)))
            #expect(lines.text.contains("conditional-write probe could not run"))
        }
        let stack = try LocalStack.current()
        let bucket = uniqueName("cw")
        try createBucket(bucket, stack: stack)
        let s3 = try S3Store(configuration: S3Configuration(
            bucket: bucket, endpoint: stack.s3Endpoint,
            credentials: AWSCredentials(accessKeyID: "testing", secretAccessKey: "testing")))
        defer { s3.close() }
        #expect(try Engine.conditionalWritesUsable(mode: "required", store: s3, key: "lake/_tidemark_check/z",
                                                   logger: logger(Lines())))
        #expect(try s3.headObject(key: "lake/_tidemark_check/z") == nil)
    }
}
