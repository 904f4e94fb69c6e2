import Foundation
import KafkaSource
import ObjectStore
import Pipeline
import Testing

/// `etl-audit --fleet`'s checks: the pure chain check over (start, end) ranges, and the store
/// scan over a FileStore holding two engines' objects of one group.
@Suite("fleet audit")
struct FleetAuditTests {
    /// (kind, start, end) of each discrepancy, for comparing against what a case built.
    struct Found: Hashable, CustomStringConvertible {
        var kind: String
        var start: Int64?
        var end: Int64?
        var description: String { "\(kind) \(start.map(String.init) ?? "-")...\(end.map(String.init) ?? "-")" }
    }

    let layout = KeyLayout(prefix: "lake/x")

    func check(_ spans: [(Int64, Int64)], dead: [(Int64, Int64)] = [], rejected: Set<Int64> = [],
               committed: Int64?, logStart: Int64?) -> [Discrepancy] {
        FleetChain.check(topic: "t", partition: 0,
                         spans: spans.map { FleetSpan(start: $0.0, end: $0.1, day: 20_000, hasRejected: rejected.contains($0.0)) },
                         deadLetters: dead.map { FleetDeadLetter(key: "dl-\($0.0)-\($0.1)", start: $0.0, end: $0.1) },
                         committed: committed, logStart: logStart, layout: layout)
    }

    func found(_ d: [Discrepancy]) -> Set<Found> {
        Set(d.map { Found(kind: $0.kind.rawValue, start: $0.startOffset, end: $0.endOffset) })
    }

    // MARK: pure chain check

    @Test("a tiled chain is clean whatever the committed offset up to its end + 1, in any input order")
    func cleanChain() {
        let tiles: [(Int64, Int64)] = [(250, 399), (0, 99), (100, 249)]
        for c: Int64? in [nil, 0, 100, 250, 400] {
            #expect(check(tiles, committed: c, logStart: 0).isEmpty, "committed \(c.map(String.init) ?? "none")")
        }
        // The log start moved past the first objects (retention): still clean.
        #expect(check(tiles, committed: 400, logStart: 300).isEmpty)
    }

    @Test("offsets in two objects are an overlap, nested ones too, with the overlapping range")
    func overlaps() {
        let d = check([(0, 99), (50, 149), (150, 199)], committed: 200, logStart: 0)
        #expect(found(d) == [Found(kind: "overlap", start: 50, end: 99)])
        #expect(d[0].key == layout.objectKey(topic: "t", partition: 0, start: 50, startTimestampMillis: 20_000 * 86_400_000))
        // A small object inside a large one: the larger end keeps reaching, no gap after the small one.
        #expect(found(check([(0, 199), (50, 60), (200, 299)], committed: 300, logStart: 0))
                == [Found(kind: "overlap", start: 50, end: 60)])
        // Two objects at one start.
        #expect(found(check([(0, 99), (0, 149), (150, 199)], committed: 200, logStart: 0))
                == [Found(kind: "overlap", start: 0, end: 99)])
    }

    @Test("holes: between objects, before the first object below the committed offset, after the last one up to it")
    func gaps() {
        #expect(found(check([(0, 99), (150, 199)], committed: 200, logStart: 0)) == [Found(kind: "gap", start: 100, end: 149)])
        // Before the first object: from the log start to the first object, or to the committed
        // offset when that is lower (what lies above it is pending work).
        #expect(found(check([(100, 199)], committed: 200, logStart: 0)) == [Found(kind: "gap", start: 0, end: 99)])
        #expect(found(check([(100, 199)], committed: 50, logStart: 0)) == [Found(kind: "gap", start: 0, end: 49)])
        #expect(found(check([(100, 199)], committed: 200, logStart: 40)) == [Found(kind: "gap", start: 40, end: 99)])
        // Unknown log start: nothing can be said before the first object.
        #expect(check([(100, 199)], committed: 200, logStart: nil).isEmpty)
        // No committed offset: the group starts at the log start, nothing is owed yet.
        #expect(check([(100, 199)], committed: nil, logStart: 0).isEmpty)
        // Committed past the chain's end.
        #expect(found(check([(0, 99)], committed: 130, logStart: 0)) == [Found(kind: "gap", start: 100, end: 129)])
        // A partition without objects whose offsets were committed.
        #expect(found(check([], committed: 70, logStart: 10)) == [Found(kind: "gap", start: 10, end: 69)])
    }

    @Test("holes below the log start are lost to retention; a hole across it is split")
    func retention() {
        // Committed offset below the log start, no object in between.
        #expect(found(check([], committed: 20, logStart: 100)) == [Found(kind: "lost_to_retention", start: 20, end: 99)])
        #expect(found(check([(150, 199)], committed: 20, logStart: 100)) == [Found(kind: "lost_to_retention", start: 20, end: 99)])
        // Objects holding the offsets between the committed offset and the log start: nothing lost.
        #expect(check([(0, 99), (100, 199)], committed: 20, logStart: 100).isEmpty)
        // The last object ends below the log start, the committed offset is lower still.
        #expect(found(check([(0, 59)], committed: 20, logStart: 100)) == [Found(kind: "lost_to_retention", start: 60, end: 99)])
        // A hole between objects across the log start.
        #expect(found(check([(0, 99), (300, 399)], committed: 400, logStart: 200))
                == [Found(kind: "lost_to_retention", start: 100, end: 199), Found(kind: "gap", start: 200, end: 299)])
    }

    @Test("dead letters: DeadLetterOrphans' rule over the ranges, and a missing one")
    func deadLetters() {
        let spans: [(Int64, Int64)] = [(0, 99), (100, 199)]
        // Its own batch's dead-letter object.
        #expect(check(spans, dead: [(100, 199)], rejected: [100], committed: 200, logStart: 0).isEmpty)
        // The object at its start ends elsewhere: the writer lost the race.
        #expect(found(check(spans, dead: [(0, 50)], committed: 200, logStart: 0)) == [Found(kind: "orphan_rejected", start: 0, end: 50)])
        // No object at its start, but an object covers it: delivered with other cuts.
        #expect(found(check(spans, dead: [(50, 120)], committed: 200, logStart: 0)) == [Found(kind: "orphan_rejected", start: 50, end: 120)])
        // Neither: pending (its batch may be in flight).
        #expect(check(spans, dead: [(200, 260)], committed: 200, logStart: 0).isEmpty)
        // An object counting rejected records without its dead-letter object.
        #expect(found(check(spans, rejected: [0], committed: 200, logStart: 0)) == [Found(kind: "rejected_missing", start: 0, end: 99)])
    }

    // MARK: store scan (FileStore)

    /// Writes a batch's `.parquet` object with the metadata an engine writes, and its dead-letter
    /// object when it has rejected records. Returns the key.
    @discardableResult
    func put(_ store: FileStore, _ topic: String, _ p: Int32, _ s: Int64, _ e: Int64, day: Int64, rejected: Int64 = 0,
             metadata: [String: String]? = nil) throws -> String {
        let ts = day * 86_400_000 + 3_600_000
        let key = layout.objectKey(topic: topic, partition: p, start: s, startTimestampMillis: ts)
        var meta = [BatchMetadataKey.topic: topic, BatchMetadataKey.partition: String(p), BatchMetadataKey.start: String(s),
                    BatchMetadataKey.end: String(e), BatchMetadataKey.records: String(e - s + 1 - rejected),
                    BatchMetadataKey.rejected: String(rejected), BatchMetadataKey.sha256: String(repeating: "ab", count: 32)]
        if rejected > 0 {
            let rk = layout.rejectedKey(topic: topic, partition: p, start: s, end: e, startTimestampMillis: ts)
            _ = try store.putObject(key: rk, data: .bytes(Array("{}\n".utf8)), metadata: [:], ifNoneMatch: false)
            meta[BatchMetadataKey.rejectedKey] = rk
        }
        _ = try store.putObject(key: key, data: .bytes(Array("PAR1 \(topic) \(p) \(s) \(e) PAR1".utf8)),
                                metadata: metadata ?? meta, ifNoneMatch: true)
        return key
    }

    @Test("two engines' objects of one group: clean, then each kind of damage named with its offsets")
    func twoEnginesInAFileStore() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try FileStore(root: dir.path)
        let t = "logs"
        // Engine A delivered partition 0 up to 199, then B took it over; B owns 1; both wrote 2
        // and 3. Dates cross midnight, so keys sit under several dt= folders.
        try put(store, t, 0, 0, 99, day: 20_000)
        try put(store, t, 0, 100, 199, day: 20_000, rejected: 3)
        try put(store, t, 0, 200, 349, day: 20_001)
        try put(store, t, 1, 0, 149, day: 20_000)
        try put(store, t, 1, 150, 299, day: 20_001, rejected: 1)
        try put(store, t, 2, 0, 99, day: 20_000)
        let p2Middle = try put(store, t, 2, 100, 199, day: 20_000)
        let p2Last = try put(store, t, 2, 200, 299, day: 20_001)
        let p3First = try put(store, t, 3, 0, 49, day: 20_000)
        let p3Second = try put(store, t, 3, 50, 99, day: 20_000)
        let tp = { TopicPartition(topic: t, partition: $0) }
        var offsets = FleetOffsets(committed: [tp(0): 350, tp(1): 300, tp(2): 300, tp(3): 100],
                                   logStart: [tp(0): 0, tp(1): 0, tp(2): 0, tp(3): 0])
        var options = FleetAuditOptions()
        options.concurrency = 4
        let asked = LockedBox<Set<TopicPartition>>([])
        func audit(_ o: FleetAuditOptions = options) throws -> AuditReport {
            try FleetAuditor(store: store, layout: layout, options: o).run { tps in
                asked.set(tps)
                return offsets
            }
        }

        let clean = try audit()
        #expect(clean.isConsistent, "\(clean.discrepancies)")
        #expect(clean.objects == 12)       // 10 .parquet + 2 dead-letter objects
        #expect(clean.batches == 10)
        #expect(clean.partitions == 4)
        #expect(clean.records == (100 + 100 + 150 + 150 + 150 + 300 + 100) - 4)
        #expect(clean.rejectedRecords == 4)
        #expect(asked.get() == Set((0...3).map(tp)))

        // The damage, one of each kind, each at offsets this test chooses.
        try put(store, t, 0, 150, 199, day: 20_000)                                            // overlap 150...199
        try store.deleteObject(key: p2Middle)                                                   // gap 100...199 in partition 2
        try store.deleteObject(key: p3First)                                                    // hole 0...49 below committed 100
        let orphan = layout.rejectedKey(topic: t, partition: 1, start: 0, end: 120, startTimestampMillis: 20_000 * 86_400_000)
        _ = try store.putObject(key: orphan, data: .bytes(Array("{}\n".utf8)), metadata: [:], ifNoneMatch: false)
        let uploadKey = layout.objectKey(topic: t, partition: 1, start: 300, startTimestampMillis: 20_001 * 86_400_000)
        let uploadID = try store.createMultipartUpload(key: uploadKey, metadata: [:])
        let stray = layout.topicPrefix(t) + "README.txt"
        _ = try store.putObject(key: stray, data: .bytes(Array("hello".utf8)), metadata: [:], ifNoneMatch: false)
        let unlabelled = layout.objectKey(topic: t, partition: 1, start: 400, startTimestampMillis: 0)
        _ = try store.putObject(key: unlabelled, data: .bytes([1, 2, 3]), metadata: [:], ifNoneMatch: false)
        offsets.committed[tp(4)] = 10   // a partition with no object at all, whose offsets were committed
        offsets.logStart[tp(4)] = 0

        // The upload is fresh: not reported yet.
        var r = try audit()
        func kinds(_ r: AuditReport) -> Set<String> { Set(r.discrepancies.map { "\($0.kind.rawValue) \($0.partition.map(String.init) ?? "-") \($0.startOffset.map(String.init) ?? "-")...\($0.endOffset.map(String.init) ?? "-")" }) }
        let expected: Set<String> = [
            "overlap 0 150...199", "gap 2 100...199", "gap 3 0...49", "orphan_rejected 1 0...120",
            "unknown_object - -...-", "bad_metadata 1 400...-", "gap 4 0...9",
        ]
        #expect(kinds(r) == expected, "\(r.discrepancies)")
        #expect(r.partitions == 5)
        let byKind = Dictionary(grouping: r.discrepancies, by: \.kind)
        #expect(byKind[.gap]?.first { $0.partition == 2 }?.key == p2Last)
        #expect(byKind[.gap]?.first { $0.partition == 3 }?.key == p3Second)
        #expect(byKind[.orphanRejected]?.first?.key == orphan)
        #expect(byKind[.unknownObject]?.first?.key == stray)

        // Two hours later the upload is older than the grace period (1 h).
        var later = options
        later.now = Date().addingTimeInterval(7200)
        r = try audit(later)
        #expect(kinds(r) == expected.union(["stale_upload 1 300...-"]), "\(r.discrepancies)")
        let stale = r.discrepancies.first { $0.kind == .staleUpload }
        #expect(stale?.key == uploadKey)
        #expect(stale?.detail.contains(uploadID) == true)

        // One partition only.
        var one = later
        one.partition = tp(2)
        r = try audit(one)
        #expect(kinds(r) == ["gap 2 100...199"], "\(r.discrepancies)")
        #expect(r.partitions == 1)
    }

    @Test("listing pages of 1,000: 2,500 objects across pages form one clean chain, then one deleted object is a gap")
    func manyPages() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try FileStore(root: dir.path)
        var keys: [String] = []
        for i in 0..<2500 {
            keys.append(try put(store, "big", Int32(i % 2), Int64(i / 2) * 10, Int64(i / 2) * 10 + 9, day: 20_000 + Int64(i / 500)))
        }
        let tps = [TopicPartition(topic: "big", partition: 0), TopicPartition(topic: "big", partition: 1)]
        let offsets = FleetOffsets(committed: [tps[0]: 12_500, tps[1]: 12_500], logStart: [tps[0]: 0, tps[1]: 0])
        let pages = LockedBox<[Int]>([])
        var options = FleetAuditOptions()
        options.progress = { listed, _ in pages.set(pages.get() + [listed]) }
        let auditor = FleetAuditor(store: store, layout: layout, options: options)
        let clean = try auditor.run { _ in offsets }
        #expect(clean.isConsistent, "\(clean.discrepancies.prefix(5))")
        #expect(clean.batches == 2500)
        #expect(pages.get() == [1000, 2000, 2500])
        try store.deleteObject(key: keys[1001])    // partition 1, offsets 5000...5009
        let r = try auditor.run { _ in offsets }
        #expect(r.discrepancies.map { "\($0.kind.rawValue) \($0.partition!) \($0.startOffset!)...\($0.endOffset!)" } == ["gap 1 5000...5009"])

        // A HEAD failing on the second page stops the scan with that error (etl-audit: exit 2),
        // and the worker threads are stopped (the call returns).
        let failing = FailingHeads(inner: store, okHeads: 1500)
        #expect(throws: ObjectStoreError.self) {
            _ = try FleetAuditor(store: failing, layout: layout, options: options).run { _ in offsets }
        }
        #expect(failing.heads.get() < 2499)
    }
}

/// A FileStore whose HEADs fail after `okHeads` of them: the scan must stop with the error.
struct FailingHeads: ObjectStore {
    let inner: FileStore
    let okHeads: Int
    let heads = LockedBox<Int>(0)
    var capabilities: ObjectStoreCapabilities { inner.capabilities }
    func createMultipartUpload(key: String, metadata: [String: String]) throws -> String { try inner.createMultipartUpload(key: key, metadata: metadata) }
    func uploadPart(key: String, uploadID: String, partNumber: Int, data: ObjectBody) throws -> UploadedPart {
        try inner.uploadPart(key: key, uploadID: uploadID, partNumber: partNumber, data: data)
    }
    func completeMultipartUpload(key: String, uploadID: String, parts: [UploadedPart], ifNoneMatch: Bool) throws -> String {
        try inner.completeMultipartUpload(key: key, uploadID: uploadID, parts: parts, ifNoneMatch: ifNoneMatch)
    }
    func abortMultipartUpload(key: String, uploadID: String) throws { try inner.abortMultipartUpload(key: key, uploadID: uploadID) }
    func listMultipartUploads(prefix: String) throws -> [MultipartUploadInfo] { try inner.listMultipartUploads(prefix: prefix) }
    func listParts(key: String, uploadID: String) throws -> [UploadedPart] { try inner.listParts(key: key, uploadID: uploadID) }
    func putObject(key: String, data: ObjectBody, metadata: [String: String], ifNoneMatch: Bool) throws -> String {
        try inner.putObject(key: key, data: data, metadata: metadata, ifNoneMatch: ifNoneMatch)
    }
    func headObject(key: String) throws -> ObjectInfo? {
        let n = heads.update { $0 + 1 }
        if n > okHeads { throw ObjectStoreError(kind: .transient, operation: "HeadObject", bucket: "test", key: key, message: "injected failure") }
        return try inner.headObject(key: key)
    }
    func getObject(key: String, range: ClosedRange<Int64>?) throws -> [UInt8] { try inner.getObject(key: key, range: range) }
    func listObjects(prefix: String, startAfter: String?, continuationToken: String?, maxKeys: Int) throws -> ObjectPage {
        try inner.listObjects(prefix: prefix, startAfter: startAfter, continuationToken: continuationToken, maxKeys: maxKeys)
    }
    func deleteObject(key: String) throws { try inner.deleteObject(key: key) }
}

/// A value shared with @Sendable closures in tests.
final class LockedBox<T: Sendable>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ v: T) { value = v }
    func get() -> T { lock.withLock { value } }
    func set(_ v: T) { lock.withLock { value = v } }
    /// Applies `f` and returns the new value.
    func update(_ f: (T) -> T) -> T { lock.withLock { value = f(value); return value } }
}
