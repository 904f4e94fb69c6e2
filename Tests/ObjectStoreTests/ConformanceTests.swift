import Crypto
import Foundation
@testable import ObjectStore
import TestSupport
import Testing

/// The same behaviour checks, run against both backends: S3Store on moto_server and
/// FileStore in a temp dir.
enum Conformance {
    static let mib = 1 << 20

    /// PutObject/HeadObject/GetObject(Range)/DeleteObject with metadata and If-None-Match.
    static func objectLifecycle(_ store: any ObjectStore) throws {
        let bytes = testBytes(70_000, seed: 1)
        let key = "dir/sub/obj ü+=.bin"
        #expect(try store.headObject(key: key) == nil)
        let etag = try store.putObject(key: key, data: .bytes(bytes), metadata: ["Owner": "engine", "batch-id": "42"],
                                       ifNoneMatch: true)
        #expect(etag == SigV4Signer.hex(Insecure.MD5.hash(data: bytes)))
        let info = try #require(try store.headObject(key: key))
        #expect(info.size == Int64(bytes.count))
        #expect(info.etag == etag)
        #expect(info.metadata["owner"] == "engine")
        #expect(info.metadata["batch-id"] == "42")
        #expect(try store.getObject(key: key, range: nil) == bytes)
        #expect(try store.getObject(key: key, range: 100...199) == Array(bytes[100...199]))
        #expect(try store.getObject(key: key, range: 69_990...80_000) == Array(bytes[69_990...]))

        // A second conditional create fails and leaves the first object intact.
        let second = #expect(throws: ObjectStoreError.self) {
            try store.putObject(key: key, data: .bytes([1, 2, 3]), metadata: [:], ifNoneMatch: true)
        }
        #expect(second?.kind == .alreadyExists)
        #expect(second?.key == key)
        #expect(try store.getObject(key: key, range: nil) == bytes)
        // An unconditional put overwrites.
        _ = try store.putObject(key: key, data: .bytes([9, 9]), metadata: [:], ifNoneMatch: false)
        #expect(try store.getObject(key: key, range: nil) == [9, 9])
        #expect(try store.headObject(key: key)?.metadata["owner"] == nil)

        try store.deleteObject(key: key)
        #expect(try store.headObject(key: key) == nil)
        try store.deleteObject(key: key)  // deleting an absent key succeeds
        let missing = #expect(throws: ObjectStoreError.self) { try store.getObject(key: key, range: nil) }
        #expect(missing?.kind == .notFound)
    }

    /// A file-range body streams the right slice.
    static func fileRangeBody(_ store: any ObjectStore) throws {
        try withTemporaryDirectory { dir in
            let bytes = testBytes(300_000, seed: 2)
            let path = try writeFile(bytes, in: dir)
            _ = try store.putObject(key: "slice", data: .fileRange(path: path, offset: 1000, length: 5000), metadata: [:],
                                    ifNoneMatch: false)
            #expect(try store.getObject(key: "slice", range: nil) == Array(bytes[1000..<6000]))
        }
    }

    /// ListObjectsV2 over more than 1,000 keys: pages, continuation, start-after, prefix.
    static func listingPagination(_ store: any ObjectStore) throws {
        let count = 1_005
        let keys = (0..<count).map { String(format: "list/k%05d", $0) }
        try concurrentlyPerform(keys, threads: 8) { key in
            _ = try store.putObject(key: key, data: .bytes(Array(key.utf8)), metadata: [:], ifNoneMatch: false)
        }
        _ = try store.putObject(key: "other/x", data: .bytes([1]), metadata: [:], ifNoneMatch: false)

        let first = try store.listObjects(prefix: "list/", startAfter: nil, continuationToken: nil, maxKeys: 1000)
        #expect(first.objects.count == 1000)
        let token = try #require(first.nextContinuationToken)
        let second = try store.listObjects(prefix: "list/", startAfter: nil, continuationToken: token, maxKeys: 1000)
        #expect(second.objects.count == 5)
        #expect(second.nextContinuationToken == nil)
        #expect((first.objects + second.objects).map(\.key) == keys)
        #expect(first.objects[0].size == Int64(keys[0].utf8.count))

        let all = try store.listAllObjects(prefix: "")
        #expect(all.count == count + 1)
        let after = try store.listObjects(prefix: "list/", startAfter: "list/k01000", continuationToken: nil, maxKeys: 10)
        #expect(after.objects.map(\.key) == Array(keys[1001...]))
        let small = try store.listObjects(prefix: "list/k0000", startAfter: nil, continuationToken: nil, maxKeys: 3)
        #expect(small.objects.map(\.key) == Array(keys[0..<3]))
        #expect(small.nextContinuationToken != nil)
    }

    /// A 3-part multipart upload with checksums; ListParts; complete; a second conditional
    /// complete of the same key fails with alreadyExists.
    static func multipartLifecycle(_ store: any ObjectStore) throws {
        let key = "mpu/three-parts.parquet"
        let bytes = testBytes(2 * 5 * mib + 1234, seed: 3)
        let uploadID = try store.createMultipartUpload(key: key, metadata: ["tidemark-batch": "7"])
        #expect(try store.listMultipartUploads(prefix: "mpu/").map(\.uploadID).contains(uploadID))
        var parts: [UploadedPart] = []
        for number in 1...3 {
            let lower = (number - 1) * 5 * mib
            let upper = min(bytes.count, number * 5 * mib)
            let part = try store.uploadPart(key: key, uploadID: uploadID, partNumber: number,
                                            data: .bytes(Array(bytes[lower..<upper])))
            #expect(part.size == Int64(upper - lower))
            #expect(part.etag == SigV4Signer.hex(Insecure.MD5.hash(data: bytes[lower..<upper])))
            parts.append(part)
        }
        let listed = try store.listParts(key: key, uploadID: uploadID)
        #expect(listed.map(\.partNumber) == [1, 2, 3])
        #expect(listed.map(\.etag) == parts.map(\.etag))
        #expect(listed.map(\.size) == parts.map(\.size))
        // Objects in progress are invisible.
        #expect(try store.headObject(key: key) == nil)

        let etag = try store.completeMultipartUpload(key: key, uploadID: uploadID, parts: parts, ifNoneMatch: true)
        #expect(etag.hasSuffix("-3"))
        #expect(try store.getObject(key: key, range: nil) == bytes)
        #expect(try store.headObject(key: key)?.metadata["tidemark-batch"] == "7")
        #expect(!(try store.listMultipartUploads(prefix: "mpu/").map(\.uploadID).contains(uploadID)))

        // A second writer of the same key, conditional: refused, first object kept.
        let second = try store.createMultipartUpload(key: key, metadata: [:])
        let part = try store.uploadPart(key: key, uploadID: second, partNumber: 1, data: .bytes([1, 2, 3]))
        let refused = #expect(throws: ObjectStoreError.self) {
            try store.completeMultipartUpload(key: key, uploadID: second, parts: [part], ifNoneMatch: true)
        }
        #expect(refused?.kind == .alreadyExists)
        #expect(refused?.uploadID == second)
        #expect(try store.getObject(key: key, range: nil) == bytes)
        try store.abortMultipartUpload(key: key, uploadID: second)
    }

    /// Abort discards the upload; listing and ListParts agree.
    static func abort(_ store: any ObjectStore) throws {
        let key = "abort/me"
        let keep = try store.createMultipartUpload(key: "abort/keep", metadata: [:])
        let uploadID = try store.createMultipartUpload(key: key, metadata: [:])
        _ = try store.uploadPart(key: key, uploadID: uploadID, partNumber: 1, data: .bytes([1, 2, 3]))
        #expect(Set(try store.listMultipartUploads(prefix: "abort/").map(\.uploadID)) == [keep, uploadID])
        try store.abortMultipartUpload(key: key, uploadID: uploadID)
        #expect(try store.listMultipartUploads(prefix: "abort/").map(\.uploadID) == [keep])
        let gone = #expect(throws: ObjectStoreError.self) { try store.listParts(key: key, uploadID: uploadID) }
        #expect(gone?.kind == .notFound)
        #expect(try store.headObject(key: key) == nil)
        #expect(try store.listAllObjects(prefix: "abort/").isEmpty)
        try store.abortMultipartUpload(key: "abort/keep", uploadID: keep)
    }

    /// The uploader: PutObject below one part, multipart above, with whole-file SHA-256 and
    /// size in metadata, callbacks in order, and resume after a crash mid-upload.
    static func uploaderAndResume(_ store: any ObjectStore) throws {
        try withTemporaryDirectory { dir in
            let uploader = MultipartUploader(store: store, partSize: 5 << 20, concurrency: 3)
            let small = testBytes(1000, seed: 4)
            let smallPath = try writeFile(small, in: dir, name: "small")
            let created = Locked<[String]>([])
            _ = try uploader.upload(file: smallPath, key: "up/small", metadata: ["a": "b"],
                                    onUploadCreated: { id in created.withLock { $0.append(id) } },
                                    onPartUploaded: { _ in })
            #expect(created.withLock { $0 }.isEmpty, "small files use one PutObject")
            let smallInfo = try #require(try store.headObject(key: "up/small"))
            #expect(smallInfo.metadata[MultipartUploader.sha256MetadataKey] == SigV4Signer.hex(SHA256.hash(data: small)))
            #expect(smallInfo.metadata[MultipartUploader.sizeMetadataKey] == "1000")
            #expect(smallInfo.metadata["a"] == "b")

            // A 4-part file; the "engine" crashes after recording two parts.
            let big = testBytes(3 * 5 * mib + 77, seed: 5)
            let bigPath = try writeFile(big, in: dir, name: "big")
            let recorded = Locked<[UploadedPart]>([])
            struct Crash: Error {}
            #expect(throws: Crash.self) {
                try uploader.upload(file: bigPath, key: "up/big", metadata: [:],
                                    onUploadCreated: { id in created.withLock { $0.append(id) } },
                                    onPartUploaded: { part in
                                        try recorded.withLock { parts in
                                            if parts.count == 2 { throw Crash() }
                                            parts.append(part)
                                        }
                                    })
            }
            let uploadID = try #require(created.withLock { $0 }.first)
            #expect(try store.listMultipartUploads(prefix: "up/").map(\.uploadID) == [uploadID])
            #expect(try store.headObject(key: "up/big") == nil)

            // Resume: only the parts not recorded are uploaded again.
            let before = recorded.withLock { $0 }
            let resumedParts = Locked<[Int]>([])
            let etag = try uploader.upload(file: bigPath, key: "up/big", metadata: [:], resume: (uploadID, before),
                                           onUploadCreated: { _ in Issue.record("resume must not create an upload") },
                                           onPartUploaded: { part in resumedParts.withLock { $0.append(part.partNumber) } })
            #expect(Set(resumedParts.withLock { $0 }) == Set(1...4).subtracting(before.map(\.partNumber)))
            #expect(etag.hasSuffix("-4"))
            #expect(try store.getObject(key: "up/big", range: nil) == big)
            let info = try #require(try store.headObject(key: "up/big"))
            #expect(info.metadata[MultipartUploader.sha256MetadataKey] == SigV4Signer.hex(SHA256.hash(data: big)))
            #expect(info.metadata[MultipartUploader.sizeMetadataKey] == "\(big.count)")

            // The same file again, conditionally: alreadyExists.
            let again = #expect(throws: ObjectStoreError.self) {
                try uploader.upload(file: bigPath, key: "up/big", metadata: [:], onUploadCreated: { _ in },
                                    onPartUploaded: { _ in })
            }
            #expect(again?.kind == .alreadyExists)
            for upload in try store.listMultipartUploads(prefix: "up/") {
                try store.abortMultipartUpload(key: upload.key, uploadID: upload.uploadID)
            }
        }
    }
}

/// Runs `body` for every item on `threads` threads; rethrows the first error.
func concurrentlyPerform<T: Sendable>(_ items: [T], threads: Int, _ body: @escaping @Sendable (T) throws -> Void) throws {
    let next = Locked(0)
    let failure = Locked<(any Error)?>(nil)
    let group = DispatchGroup()
    for _ in 0..<threads {
        group.enter()
        Thread {
            defer { group.leave() }
            while true {
                let index = next.withLock { n -> Int in
                    defer { n += 1 }
                    return n
                }
                guard index < items.count, failure.withLock({ $0 == nil }) else { return }
                do { try body(items[index]) } catch { failure.withLock { $0 = error } }
            }
        }.start()
    }
    group.wait()
    if let error = failure.withLock({ $0 }) { throw error }
}

@Suite("FileStore")
struct FileStoreTests {
    func withStore(_ body: (FileStore, URL) throws -> Void) throws {
        try withTemporaryDirectory { dir in try body(try FileStore(root: dir.path + "/store"), dir) }
    }

    @Test("put, head, ranged get, conditional create, overwrite and delete")
    func objects() throws { try withStore { store, _ in try Conformance.objectLifecycle(store) } }

    @Test("a file-range body stores exactly that slice")
    func fileRange() throws { try withStore { store, _ in try Conformance.fileRangeBody(store) } }

    @Test("lists more than 1,000 keys in pages, with start-after and prefixes")
    func pagination() throws { try withStore { store, _ in try Conformance.listingPagination(store) } }

    @Test("3-part upload, list parts, complete, second conditional complete is alreadyExists")
    func multipart() throws { try withStore { store, _ in try Conformance.multipartLifecycle(store) } }

    @Test("abort removes the upload from listings; ListParts then reports notFound")
    func abort() throws { try withStore { store, _ in try Conformance.abort(store) } }

    @Test("uploader: single put for small files, resume after a crash uploads only missing parts")
    func uploader() throws { try withStore { store, _ in try Conformance.uploaderAndResume(store) } }

    @Test("hidden folders never appear in listings, and keys cannot reach them or escape the root")
    func hiddenFolders() throws {
        try withStore { store, dir in
            let uploadID = try store.createMultipartUpload(key: "a", metadata: [:])
            _ = try store.uploadPart(key: "a", uploadID: uploadID, partNumber: 1, data: .bytes([1]))
            _ = try store.putObject(key: "visible", data: .bytes([1]), metadata: [:], ifNoneMatch: true)
            #expect(try store.listAllObjects(prefix: "").map(\.key) == ["visible"])
            #expect(try store.listAllObjects(prefix: ".tidemark").isEmpty)
            #expect(FileManager.default.fileExists(atPath: store.root + "/.tidemark-uploads/\(uploadID)/part-00001"))
            for bad in [".tidemark-uploads/x", "../escape", "a//b", "a/./b", "trailing/", ""] {
                let error = #expect(throws: ObjectStoreError.self, "\(bad)") {
                    try store.putObject(key: bad, data: .bytes([1]), metadata: [:], ifNoneMatch: false)
                }
                #expect(error?.kind == .invalidArgument)
            }
            #expect(!FileManager.default.fileExists(atPath: dir.path + "/escape"))
        }
    }

    @Test("complete checks parts like S3: order, etags, 5 MiB minimum for all but the last")
    func completeValidation() throws {
        try withStore { store, _ in
            let uploadID = try store.createMultipartUpload(key: "v", metadata: [:])
            let p1 = try store.uploadPart(key: "v", uploadID: uploadID, partNumber: 1, data: .bytes([1, 2]))
            let p2 = try store.uploadPart(key: "v", uploadID: uploadID, partNumber: 2, data: .bytes([3]))
            let tooSmall = #expect(throws: ObjectStoreError.self) {
                try store.completeMultipartUpload(key: "v", uploadID: uploadID, parts: [p1, p2], ifNoneMatch: true)
            }
            #expect(tooSmall?.s3Code == "EntityTooSmall")
            var wrong = p1
            wrong.etag = "00"
            let badPart = #expect(throws: ObjectStoreError.self) {
                try store.completeMultipartUpload(key: "v", uploadID: uploadID, parts: [wrong], ifNoneMatch: true)
            }
            #expect(badPart?.s3Code == "InvalidPart")
            let order = #expect(throws: ObjectStoreError.self) {
                try store.completeMultipartUpload(key: "v", uploadID: uploadID, parts: [p2, p1], ifNoneMatch: true)
            }
            #expect(order?.s3Code == "InvalidPartOrder")
            // Uploading a part number again replaces it, as in S3.
            let p1b = try store.uploadPart(key: "v", uploadID: uploadID, partNumber: 1, data: .bytes([7]))
            #expect(try store.listParts(key: "v", uploadID: uploadID).map(\.etag) == [p1b.etag, p2.etag])
            _ = try store.completeMultipartUpload(key: "v", uploadID: uploadID, parts: [p1b], ifNoneMatch: true)
            #expect(try store.getObject(key: "v", range: nil) == [7])
            #expect(try store.listMultipartUploads(prefix: "").isEmpty)
        }
    }

    @Test("no temp files are left behind and deleting removes emptied directories")
    func tidiness() throws {
        try withStore { store, _ in
            _ = try store.putObject(key: "a/b/c", data: .bytes([1]), metadata: [:], ifNoneMatch: true)
            _ = try? store.putObject(key: "a/b/c", data: .bytes([2]), metadata: [:], ifNoneMatch: true)
            #expect(try FileManager.default.contentsOfDirectory(atPath: store.root + "/.tidemark-tmp").isEmpty)
            try store.deleteObject(key: "a/b/c")
            #expect(!FileManager.default.fileExists(atPath: store.root + "/a"))
            _ = try store.putObject(key: "a", data: .bytes([3]), metadata: [:], ifNoneMatch: true)
            #expect(try store.getObject(key: "a", range: nil) == [3])
        }
    }
}
