import Crypto
import Foundation
import Logging
@testable import ObjectStore
import TestSupport
import Testing

@Suite("S3Store on moto_server")
struct S3StoreTests {
    @Test("put, head, ranged get, conditional create, overwrite and delete")
    func objects() throws { try Conformance.objectLifecycle(try makeS3Store()) }

    @Test("a file-range body stores exactly that slice")
    func fileRange() throws { try Conformance.fileRangeBody(try makeS3Store()) }

    @Test("lists more than 1,000 keys in pages, with start-after and prefixes")
    func pagination() throws { try Conformance.listingPagination(try makeS3Store()) }

    @Test("3-part upload, list parts, complete, second conditional complete is alreadyExists")
    func multipart() throws { try Conformance.multipartLifecycle(try makeS3Store()) }

    @Test("abort removes the upload from listings; ListParts then reports notFound")
    func abort() throws { try Conformance.abort(try makeS3Store()) }

    @Test("uploader: single put for small files, resume after a crash uploads only missing parts")
    func uploader() throws { try Conformance.uploaderAndResume(try makeS3Store()) }

    @Test("ListParts follows NextPartNumberMarker across several pages (max-parts 2)")
    func listPartsPages() throws {
        let proxy = try FaultProxy()
        defer { proxy.stop() }
        let store = try makeS3Store(endpoint: proxy.endpoint) { $0.listPageSize = 2 }
        let uploadID = try store.createMultipartUpload(key: "lp", metadata: [:])
        var etags: [String] = []
        for number in 1...5 {
            etags.append(try store.uploadPart(key: "lp", uploadID: uploadID, partNumber: number,
                                              data: .bytes([UInt8(number)])).etag)
        }
        try proxy.setRules("[]")
        let parts = try store.listParts(key: "lp", uploadID: uploadID)
        #expect(parts.map(\.partNumber) == [1, 2, 3, 4, 5])
        #expect(parts.map(\.etag) == etags)
        let requests = try proxy.log().filter { $0.method == "GET" }
        #expect(requests.count == 3)
        #expect(requests.map { $0.query["part-number-marker"] } == [nil, "2", "4"])
        #expect(requests.allSatisfy { $0.query["max-parts"] == "2" })
        try store.abortMultipartUpload(key: "lp", uploadID: uploadID)
    }

    @Test("ListMultipartUploads follows key and upload-id markers across pages, ignoring unknown elements")
    func listUploadsPages() throws {
        // moto_server ignores max-uploads (docs/compat.md), so the pages are scripted by the
        // proxy; the client must send the markers each page names.
        func page(_ uploads: [(String, String)], next: (String, String)?) -> String {
            var xml = "<?xml version=\"1.0\"?><ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            xml += "<Bucket>b</Bucket><NewFutureElement><X>1</X></NewFutureElement>"
            for (key, id) in uploads {
                xml += "<Upload><Key>\(key)</Key><UploadId>\(id)</UploadId><Initiated>2026-01-02T03:04:05.000Z</Initiated>"
                xml += "<StorageClass>STANDARD</StorageClass></Upload>"
            }
            if let next {
                xml += "<IsTruncated>true</IsTruncated><NextKeyMarker>\(next.0)</NextKeyMarker>"
                xml += "<NextUploadIdMarker>\(next.1)</NextUploadIdMarker>"
            } else {
                xml += "<IsTruncated>false</IsTruncated>"
            }
            return xml + "</ListMultipartUploadsResult>"
        }
        let rules: [[String: Any]] = [
            ["method": "GET", "query_has": ["uploads"], "action": "respond",
             "body": page([("p/k1", "u1"), ("p/k2", "u2")], next: ("p/k2", "u2"))],
            ["method": "GET", "query": ["key-marker": "p/k2", "upload-id-marker": "u2", "max-uploads": "2"],
             "action": "respond", "body": page([("p/k3", "u3"), ("p/k3", "u4")], next: ("p/k3", "u4"))],
            ["method": "GET", "query": ["key-marker": "p/k3", "upload-id-marker": "u4"], "action": "respond",
             "body": page([("p/k5", "u5")], next: nil)],
        ]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: rules), as: UTF8.self)
        let proxy = try FaultProxy(rules: json)
        defer { proxy.stop() }
        let store = try makeS3Store(endpoint: proxy.endpoint) { $0.listPageSize = 2 }
        let uploads = try store.listMultipartUploads(prefix: "p/")
        #expect(uploads.map(\.uploadID) == ["u1", "u2", "u3", "u4", "u5"])
        #expect(uploads.map(\.key) == ["p/k1", "p/k2", "p/k3", "p/k3", "p/k5"])
        #expect(uploads.first?.initiated == Date(timeIntervalSince1970: 1_767_323_045))
        #expect(try proxy.log().map(\.action) == ["respond", "respond", "respond"])
    }

    @Test("a malformed or hostile response body is a permanent error, not a crash")
    func malformedResponses() throws {
        let proxy = try FaultProxy()
        defer { proxy.stop() }
        let store = try makeS3Store(endpoint: proxy.endpoint)
        let bodies = ["<ListPartsResult><Part><PartNumber>1</PartNumber>", "garbage", "",
                      String(repeating: "<a>", count: 5000),
                      "<ListPartsResult><IsTruncated>true</IsTruncated></ListPartsResult>"]
        for body in bodies {
            let rules = [["method": "GET", "action": "respond", "body": body, "times": -1]]
            try proxy.setRules(String(decoding: try JSONSerialization.data(withJSONObject: rules), as: UTF8.self))
            let error = #expect(throws: ObjectStoreError.self) { try store.listParts(key: "k", uploadID: "u") }
            #expect(error?.kind == .permanent)
            #expect(error?.attempts == 1)
        }
    }

    @Test("moto honours If-None-Match on PutObject and CompleteMultipartUpload (capability probe)")
    func conditionalWritesProbe() throws {
        let store = try makeS3Store()
        // If this fails, moto stopped honouring If-None-Match: update docs/compat.md and run
        // the engine against moto with `conditionalWrites: false`.
        #expect(try store.probeConditionalWrites(probeKey: "probe/conditional"))
        #expect(store.capabilities.conditionalWrites)
        let off = try makeS3Store { $0.conditionalWrites = false }
        #expect(!off.capabilities.conditionalWrites)
    }

    @Test("moto does not verify part checksums; docs/compat.md says so")
    func motoSkipsChecksumVerification() throws {
        // A body corrupted in transit after its checksum was computed: AWS S3 answers 400
        // BadDigest. moto stores it. If this starts failing, moto verifies checksums now:
        // update docs/compat.md ("moto_server").
        let proxy = try FaultProxy(rules: #"[{"method": "PUT", "action": "corrupt"}]"#)
        defer { proxy.stop() }
        let store = try makeS3Store(endpoint: proxy.endpoint)
        let bytes = testBytes(1000, seed: 9)
        _ = try store.putObject(key: "corrupt", data: .bytes(bytes), metadata: [:], ifNoneMatch: true)
        let stored = try store.getObject(key: "corrupt", range: nil)
        #expect(stored != bytes, "moto verified the checksum; update docs/compat.md")
        #expect(stored.count == bytes.count)
    }
}

@Suite("S3Store integrity and retries through a fault-injecting proxy")
struct S3FaultTests {
    @Test("3-part upload with server-verified part checksums", arguments: [
        S3Configuration.PartChecksum.crc32c, .sha256, .md5,
    ])
    func checksummedUpload(checksum: S3Configuration.PartChecksum) throws {
        let proxy = try FaultProxy(verifyChecksums: true)
        defer { proxy.stop() }
        let store = try makeS3Store(endpoint: proxy.endpoint) { $0.partChecksum = checksum }
        try withTemporaryDirectory { dir in
            let bytes = testBytes(2 * (5 << 20) + 4321, seed: 11)
            let path = try writeFile(bytes, in: dir)
            let uploader = MultipartUploader(store: store, partSize: 5 << 20, concurrency: 4)
            let parts = Locked<[UploadedPart]>([])
            _ = try uploader.upload(file: path, key: "sum/\(checksum.rawValue)", metadata: [:], onUploadCreated: { _ in },
                                    onPartUploaded: { part in parts.withLock { $0.append(part) } })
            #expect(try store.getObject(key: "sum/\(checksum.rawValue)", range: nil) == bytes)
            let sent = parts.withLock { $0 }.sorted { $0.partNumber < $1.partNumber }
            #expect(sent.count == 3)
            if checksum != .md5 {
                #expect(sent.allSatisfy { $0.checksum != nil })
            }
            if checksum == .crc32c {
                var crc = CRC32C()
                crc.update(Array(bytes[0..<(5 << 20)]))
                #expect(sent[0].checksum == crc.base64)
            }
            let log = try proxy.log()
            #expect(!log.contains { $0.action == "rejected" })
            #expect(log.filter { $0.method == "PUT" }.count == 3)
        }
    }

    @Test("a part damaged in transit is rejected by checksum verification and not retried", arguments: [
        S3Configuration.PartChecksum.crc32c, .sha256, .md5,
    ])
    func wrongChecksumRejected(checksum: S3Configuration.PartChecksum) throws {
        let proxy = try FaultProxy(rules: #"[{"method": "PUT", "query": {"partNumber": "1"}, "action": "corrupt"}]"#,
                                   verifyChecksums: true)
        defer { proxy.stop() }
        let store = try makeS3Store(endpoint: proxy.endpoint) { $0.partChecksum = checksum }
        let uploadID = try store.createMultipartUpload(key: "bad", metadata: [:])
        let error = #expect(throws: ObjectStoreError.self) {
            try store.uploadPart(key: "bad", uploadID: uploadID, partNumber: 1, data: .bytes(testBytes(100_000, seed: 1)))
        }
        #expect(error?.kind == .permanent)
        #expect(error?.httpStatus == 400)
        #expect(error?.s3Code == "BadDigest")
        #expect(error?.uploadID == uploadID)
        #expect(error?.attempts == 1)
        #expect(try store.listParts(key: "bad", uploadID: uploadID).isEmpty)
    }

    @Test("reset, 500, 503 SlowDown, timeout and a 200 <Error> on complete: the upload still lands byte-exact")
    func retriesRecover() throws {
        let rules = """
            [
              {"method": "PUT", "query": {"partNumber": "1"}, "action": "reset"},
              {"method": "PUT", "query": {"partNumber": "2"}, "action": "status", "status": 500},
              {"method": "PUT", "query": {"partNumber": "2"}, "action": "status", "status": 503, "code": "SlowDown"},
              {"method": "PUT", "query": {"partNumber": "3"}, "action": "delay", "seconds": 5},
              {"method": "POST", "query_has": ["uploadId"], "action": "error200"}
            ]
            """
        let proxy = try FaultProxy(rules: rules, verifyChecksums: true)
        defer { proxy.stop() }
        let logs = CapturingLogHandler()
        let store = try makeS3Store(endpoint: proxy.endpoint, logger: Logger(label: "test") { _ in logs }) {
            $0.requestTimeout = 3
        }
        try withTemporaryDirectory { dir in
            let bytes = testBytes(2 * (5 << 20) + 99, seed: 12)
            let path = try writeFile(bytes, in: dir)
            let uploader = MultipartUploader(store: store, partSize: 5 << 20, concurrency: 4)
            _ = try uploader.upload(file: path, key: "retry/obj", metadata: ["k": "v"], onUploadCreated: { _ in },
                                    onPartUploaded: { _ in })
            #expect(try store.getObject(key: "retry/obj", range: nil) == bytes)
            let info = try #require(try store.headObject(key: "retry/obj"))
            #expect(info.metadata[MultipartUploader.sha256MetadataKey] == SigV4Signer.hex(SHA256.hash(data: bytes)))
        }
        let log = try proxy.log().filter { $0.action != "rejected" }
        func count(_ method: String, part: String?) -> Int {
            log.filter { $0.method == method && (part == nil || $0.query["partNumber"] == part) }.count
        }
        #expect(count("PUT", part: "1") == 2)
        #expect(count("PUT", part: "2") == 3)
        #expect(count("PUT", part: "3") == 2)
        #expect(log.filter { $0.method == "POST" && $0.query["uploadId"] != nil }.count == 2)
        #expect(logs.text.contains("retrying"))
    }

    @Test("retries stop at maxAttempts and at the deadline; the error says how many attempts were made")
    func retriesAreBounded() throws {
        let proxy = try FaultProxy(rules: #"[{"method": "PUT", "action": "status", "status": 503, "code": "SlowDown", "times": -1}]"#)
        defer { proxy.stop() }
        let store = try makeS3Store(endpoint: proxy.endpoint) { $0.maxAttempts = 3 }
        let error = #expect(throws: ObjectStoreError.self) {
            try store.putObject(key: "bounded", data: .bytes([1]), metadata: [:], ifNoneMatch: true)
        }
        #expect(error?.kind == .throttled)
        #expect(error?.attempts == 3)
        #expect(error?.httpStatus == 503)
        #expect(error?.s3Code == "SlowDown")
        #expect(error?.requestID == "FAULTPROXY")
        #expect(try proxy.log().count == 3)

        try proxy.setRules(#"[{"method": "PUT", "action": "status", "status": 500, "times": -1}]"#)
        let deadlineStore = try makeS3Store(endpoint: proxy.endpoint) {
            $0.maxAttempts = 1000
            $0.retryDeadline = 1
            $0.retryBaseDelay = 0.05
            $0.retryMaxDelay = 0.2
        }
        let timedOut = #expect(throws: ObjectStoreError.self) {
            try deadlineStore.putObject(key: "deadline", data: .bytes([1]), metadata: [:], ifNoneMatch: true)
        }
        #expect(timedOut?.kind == .transient)
        let attempts = try #require(timedOut?.attempts)
        #expect(attempts > 1 && attempts < 1000)
        #expect(try proxy.log().count == attempts)
    }

    @Test("4xx answers are not retried, except 408 and 429", arguments: [
        (400, "InvalidArgument", ObjectStoreError.Kind.permanent, 1),
        (403, "AccessDenied", .accessDenied, 1),
        (404, "NoSuchBucket", .notFound, 1),
        (409, "ConditionalRequestConflict", .conflict, 1),
        (412, "PreconditionFailed", .alreadyExists, 1),
        (408, "RequestTimeout", .transient, 3),
        (429, "TooManyRequests", .throttled, 3),
    ])
    func clientErrors(status: Int, code: String, kind: ObjectStoreError.Kind, attempts: Int) throws {
        let rules = #"[{"method": "PUT", "action": "status", "status": \#(status), "code": "\#(code)", "times": -1}]"#
        let proxy = try FaultProxy(rules: rules)
        defer { proxy.stop() }
        let store = try makeS3Store(endpoint: proxy.endpoint) { $0.maxAttempts = 3 }
        let error = #expect(throws: ObjectStoreError.self) {
            try store.putObject(key: "k", data: .bytes([1]), metadata: [:], ifNoneMatch: true)
        }
        #expect(error?.kind == kind)
        #expect(error?.s3Code == code)
        #expect(error?.attempts == attempts)
        #expect(try proxy.log().count == attempts)
    }

    @Test("a 409 ConditionalRequestConflict on complete is a conflict, reported once")
    func conflictOnComplete() throws {
        let proxy = try FaultProxy(rules: """
            [{"method": "POST", "query_has": ["uploadId"], "action": "status", "status": 409,
              "code": "ConditionalRequestConflict"}]
            """)
        defer { proxy.stop() }
        let store = try makeS3Store(endpoint: proxy.endpoint)
        let uploadID = try store.createMultipartUpload(key: "c", metadata: [:])
        let part = try store.uploadPart(key: "c", uploadID: uploadID, partNumber: 1, data: .bytes([1]))
        let error = #expect(throws: ObjectStoreError.self) {
            try store.completeMultipartUpload(key: "c", uploadID: uploadID, parts: [part], ifNoneMatch: true)
        }
        #expect(error?.kind == .conflict)
        #expect(error?.uploadID == uploadID)
        #expect(error?.key == "c")
        #expect(error?.attempts == 1)
    }

    @Test("server-side encryption and If-None-Match headers go on Create and Put, not on parts", arguments: [
        S3Configuration.ServerSideEncryption.aes256, .kms(keyID: "arn:aws:kms:us-east-1:111122223333:key/k-1"),
    ])
    func encryptionHeaders(sse: S3Configuration.ServerSideEncryption) throws {
        let proxy = try FaultProxy()
        defer { proxy.stop() }
        let store = try makeS3Store(endpoint: proxy.endpoint) { $0.serverSideEncryption = sse }
        _ = try store.putObject(key: "sse/put", data: .bytes([1, 2]), metadata: [:], ifNoneMatch: true)
        let uploadID = try store.createMultipartUpload(key: "sse/mpu", metadata: [:])
        let part = try store.uploadPart(key: "sse/mpu", uploadID: uploadID, partNumber: 1, data: .bytes([3]))
        _ = try store.completeMultipartUpload(key: "sse/mpu", uploadID: uploadID, parts: [part], ifNoneMatch: true)
        let expected: [String: String] =
            switch sse {
            case .aes256: ["x-amz-server-side-encryption": "AES256"]
            case .kms(let keyID): ["x-amz-server-side-encryption": "aws:kms",
                                   "x-amz-server-side-encryption-aws-kms-key-id": keyID!]
            case .none: [:]
            }
        let log = try proxy.log()
        let put = try #require(log.first { $0.method == "PUT" && $0.query["partNumber"] == nil })
        #expect(put.headers == expected.merging(["if-none-match": "*"]) { a, _ in a })
        let create = try #require(log.first { $0.method == "POST" && $0.query["uploads"] != nil })
        #expect(create.headers == expected)
        let upload = try #require(log.first { $0.query["partNumber"] == "1" })
        #expect(upload.headers.isEmpty)
        let complete = try #require(log.first { $0.method == "POST" && $0.query["uploadId"] != nil })
        #expect(complete.headers == ["if-none-match": "*"])
        #expect(try store.getObject(key: "sse/mpu", range: nil) == [3])
    }

    @Test("no secret appears in logs, errors or descriptions")
    func secretsNeverPrinted() throws {
        let secret = "SECRET-CANARY-wJalrXUtnFEMI-K7MDENG-0123456789"
        let token = "TOKEN-CANARY-FwoGZXIvYXdzEJr-0123456789"
        let proxy = try FaultProxy(rules: """
            [{"method": "PUT", "action": "status", "status": 500, "times": 2},
             {"method": "GET", "action": "status", "status": 403, "code": "AccessDenied", "times": 1},
             {"method": "DELETE", "action": "reset", "times": -1}]
            """)
        defer { proxy.stop() }
        let logs = CapturingLogHandler()
        let credentials = AWSCredentials(accessKeyID: "AKIACANARY", secretAccessKey: secret, sessionToken: token)
        let store = try makeS3Store(endpoint: proxy.endpoint, logger: Logger(label: "s3") { _ in logs }) {
            $0.credentials = credentials
            $0.maxAttempts = 2
        }
        var texts: [String] = []
        do { _ = try store.putObject(key: "s", data: .bytes([1]), metadata: [:], ifNoneMatch: true) } catch {
            texts.append("\(error)")
            texts.append(String(reflecting: error))
        }
        do { _ = try store.getObject(key: "s", range: nil) } catch { texts.append("\(error)") }
        do { try store.deleteObject(key: "s") } catch { texts.append("\(error)") }
        do { _ = try store.getObject(key: "missing", range: nil) } catch { texts.append("\(error)") }
        #expect(texts.count == 5, "every call above must fail")
        var dumped = ""
        dump(credentials, to: &dumped)
        dump(store.configuration, to: &dumped)
        texts += [logs.text, "\(credentials)", String(reflecting: credentials), "\(store.configuration)", dumped]
        #expect(logs.count > 0)
        for text in texts {
            #expect(!text.contains(secret), "secret leaked: \(text)")
            #expect(!text.contains(token), "session token leaked: \(text)")
            #expect(!text.contains(String(secret.prefix(20))))
        }
    }
}
