import Crypto
import Foundation
import KafkaSource
import Logging
import Manifest
import ObjectStore
import Parquet
import Synchronization

/// What `etl-audit` checks: the manifest, the objects under the sink prefix and Kafka's
/// committed offsets must tell the same story (docs/operations.md, "Audit").
public struct AuditOptions: Sendable {
    /// Download every object: recompute its SHA-256, read its Parquet footer.
    public var deep = false
    /// Only batches updated within this long (nil: all).
    public var since: Duration?
    /// Only this topic-partition.
    public var partition: TopicPartition?
    /// Parallel requests.
    public var concurrency = 8
    /// Called with (done, total, bytes) while objects are checked.
    public var progress: (@Sendable (Int, Int, Int64) -> Void)?
    public init() {}
}

/// One disagreement between the manifest, the store and Kafka.
public struct Discrepancy: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case missingObject = "missing_object"
        case sizeMismatch = "size_mismatch"
        case sha256Mismatch = "sha256_mismatch"
        case etagMismatch = "etag_mismatch"
        case unknownObject = "unknown_object"
        case gap
        case overlap
        case offsetBehind = "offset_behind"
        case offsetAhead = "offset_ahead"
        case rejectedMissing = "rejected_missing"
        case rejectedCountMismatch = "rejected_count_mismatch"
        case contentSHA256Mismatch = "content_sha256_mismatch"
        case rowCountMismatch = "row_count_mismatch"
        case offsetStatsMismatch = "offset_stats_mismatch"
        case unreadableParquet = "unreadable_parquet"
        /// A dead-letter object no delivered batch accounts for: its records are also in the
        /// winner's dead-letter object (``DeadLetterOrphans``; `etl-recover` deletes it).
        case orphanRejected = "orphan_rejected"
        /// Offsets below Kafka's committed offset that no batch holds: the manifest's chain
        /// starts after the committed offset it should start from.
        case chainStart = "chain_start"
        /// Offsets deleted by retention before they were delivered, as the engine recorded them
        /// in the manifest (`--fleet`: offsets in no object below the partition's log start
        /// offset that the group had to deliver): they can never be delivered.
        case lostToRetention = "lost_to_retention"
        /// `--fleet`: a multipart upload under the prefix older than `[engine] orphan_upload_grace`.
        case staleUpload = "stale_upload"
        /// `--fleet`: a `.parquet` object whose tidemark metadata is missing or disagrees with its key.
        case badMetadata = "bad_metadata"
        /// `--deep`: the footer's columns disagree with the schema it records (`tidemark-schema`),
        /// the fingerprint is not that schema's SHA-256 or not in the manifest, or an object
        /// without a recorded schema does not have the seed columns.
        case schemaMismatch = "schema_mismatch"
    }
    public var kind: Kind
    public var key: String?
    public var topic: String?
    public var partition: Int32?
    public var startOffset: Int64?
    public var endOffset: Int64?
    public var detail: String
}

/// The audit's result.
public struct AuditReport: Sendable, Codable {
    public var partitions = 0
    public var batches = 0
    public var objects = 0
    public var bytes: Int64 = 0
    public var records: Int64 = 0
    public var rejectedRecords: Int64 = 0
    /// Objects the manifest no longer describes because its rows were pruned: their start offset
    /// is at or below their partition's horizon (docs/protocol.md, "Manifest retention"). Not
    /// discrepancies; `--deep` checks them against their own metadata.
    public var beforeHorizon = 0
    public var deep = false
    public var discrepancies: [Discrepancy] = []
    public var counts: [String: Int] {
        Dictionary(grouping: discrepancies, by: \.kind.rawValue).mapValues(\.count)
    }
    public var isConsistent: Bool { discrepancies.isEmpty }
}

/// Compares the manifest with the object store and Kafka. Read-only everywhere.
public struct Auditor: Sendable {
    let manifest: Manifest
    let store: any ObjectStore
    let layout: KeyLayout
    let committed: [TopicPartition: Int64]
    let options: AuditOptions

    /// - Parameter committed: Kafka's committed offsets of the group, per partition.
    public init(manifest: Manifest, store: any ObjectStore, layout: KeyLayout,
                committed: [TopicPartition: Int64], options: AuditOptions) {
        self.manifest = manifest
        self.store = store
        self.layout = layout
        self.committed = committed
        self.options = options
    }

    public func run() throws -> AuditReport {
        var report = AuditReport()
        report.deep = options.deep
        var batches = try manifest.batches(topic: options.partition?.topic, partition: options.partition?.partition)
        if let since = options.since {
            let cutoff = Date().addingTimeInterval(-Double(since.components.seconds))
            batches = batches.filter { $0.updatedAt >= cutoff }
        }
        let delivered = batches.filter { $0.state == .committed || $0.state == .uploaded }
        report.batches = delivered.count
        let byPartition = Dictionary(grouping: delivered) { TopicPartition(topic: $0.topic, partition: $0.partition) }
        report.partitions = byPartition.count
        // Pruned partitions: offsets at or below the horizon are described by the lake alone.
        // (A manifest from before migration v5, read-only, has none.)
        let horizons = Dictionary(try manifest.horizons().map { (TopicPartition(topic: $0.topic, partition: $0.partition), $0) }
            .filter { options.partition == nil || $0.0 == options.partition }, uniquingKeysWith: { a, _ in a })

        // 1. List every object under each topic's prefix and the dead-letter prefix.
        let topics = Set(batches.map(\.topic)).union(horizons.keys.map(\.topic)).union(options.partition.map { [$0.topic] } ?? [])
        var listed: [String: ObjectInfo] = [:]
        for prefix in topics.map({ layout.topicPrefix($0) }) + [layout.rejectedPrefix] {
            for o in try store.listAllObjects(prefix: prefix) { listed[o.key] = o }
        }
        // A path template's listing prefix can hold other topics' objects (its first segment
        // may vary): keep the audited topics' own, judged by file name.
        listed = listed.filter { key, _ in
            if let tp = options.partition { return layout.belongs(key, to: tp) }
            if let k = layout.parseObjectKey(key) { return topics.contains(k.topic) }
            if let d = DeadLetterOrphans.parse(key) { return topics.contains(d.topic) }
            return layout.template == nil
        }
        let parquetKeys = listed.keys.filter { $0.hasSuffix(".parquet") }.sorted()
        report.objects = listed.count
        // Objects whose start (from the key) is at or below their partition's horizon.
        let beforeHorizon = Set(listed.keys.filter { key in
            let at: (TopicPartition, Int64)?
            if let k = layout.parseObjectKey(key) {
                at = (TopicPartition(topic: k.topic, partition: k.partition), k.start)
            } else if let r = DeadLetterOrphans.parse(key) {
                at = (TopicPartition(topic: r.topic, partition: r.partition), r.start)
            } else {
                at = nil
            }
            guard let at, let h = horizons[at.0] else { return false }
            return at.1 <= h.prunedThrough
        })
        report.bytes = listed.values.reduce(0) { $0 + $1.size }

        // 2. Shallow checks need no request per object: the listing's size and ETag are compared
        //    with the manifest (the ETag changes on any overwrite, unlike metadata we wrote
        //    ourselves). Objects the manifest does not know are HEADed for their ranges; --deep
        //    HEADs everything (metadata sha256, dead-letter counts) and downloads everything.
        var issues: [Discrepancy] = []
        let known = Dictionary(delivered.map { ($0.objectKey, $0) }, uniquingKeysWith: { a, b in a.id > b.id ? a : b })
        let knownRejected = Set(delivered.compactMap(\.rejectedKey))
        let toHead = options.deep ? parquetKeys : parquetKeys.filter { known[$0] == nil && !beforeHorizon.contains($0) }
        let heads = try headAll(toHead)

        for b in delivered {
            report.records += b.goodCount
            report.rejectedRecords += b.rejectedCount
            guard let o = listed[b.objectKey] else {
                issues.append(d(.missingObject, b, "no object at the key the manifest records"))
                continue
            }
            if o.size != b.fileSize {
                issues.append(d(.sizeMismatch, b, "object has \(o.size) bytes, manifest \(b.fileSize)"))
            }
            if let recorded = b.etag.map(Self.normalizeETag), let listedTag = o.etag.map(Self.normalizeETag), recorded != listedTag {
                issues.append(d(.etagMismatch, b, "object ETag \(listedTag), manifest recorded \(recorded) at upload: the object was overwritten"))
            }
            if let h = heads[b.objectKey], h.metadata[BatchMetadataKey.sha256] != b.fileSHA256 {
                issues.append(d(.sha256Mismatch, b, "object metadata sha256 \(h.metadata[BatchMetadataKey.sha256] ?? "none"), manifest \(b.fileSHA256)"))
            }
            if let rk = b.rejectedKey {
                if listed[rk] == nil {
                    issues.append(d(.rejectedMissing, b, "dead-letter object \(rk) is missing"))
                } else if let h = heads[b.objectKey], h.metadata[BatchMetadataKey.rejected] != String(b.rejectedCount) {
                    issues.append(d(.rejectedCountMismatch, b, "object says \(h.metadata[BatchMetadataKey.rejected] ?? "?") rejected, manifest \(b.rejectedCount)"))
                }
            }
        }
        // The listing above already holds the dead-letter and topic prefixes: no second listing.
        let orphans = try DeadLetterOrphans.find(store: store, layout: layout, listed: Array(listed.keys))
        let orphanKeys = Set(orphans.map(\.key))
        for o in orphans {
            issues.append(Discrepancy(kind: .orphanRejected, key: o.key, topic: o.topic, partition: o.partition,
                                      startOffset: o.startOffset, endOffset: o.endOffset, detail: o.reason))
        }
        for key in listed.keys.sorted() where known[key] == nil && !knownRejected.contains(key) && !orphanKeys.contains(key) {
            if beforeHorizon.contains(key) {
                report.beforeHorizon += 1
                continue
            }
            var x = Discrepancy(kind: .unknownObject, key: key, detail: "object of \(listed[key]!.size) bytes that the manifest does not know")
            if let h = heads[key] {
                x.topic = h.metadata[BatchMetadataKey.topic]
                x.partition = h.metadata[BatchMetadataKey.partition].flatMap { Int32($0) }
                x.startOffset = h.metadata[BatchMetadataKey.start].flatMap { Int64($0) }
                x.endOffset = h.metadata[BatchMetadataKey.end].flatMap { Int64($0) }
            }
            issues.append(x)
        }

        // 3. Chains: the manifest's delivered batches, and every object's range, per partition.
        for (tp, list) in byPartition {
            let sorted = list.sorted { $0.startOffset < $1.startOffset }
            // Across the horizon: the pruned delivered chain ended at delivered_through, so the
            // first delivered batch kept continues it (what this check said before pruning).
            if options.since == nil, let first = sorted.first, let through = horizons[tp]?.deliveredThrough,
               first.startOffset > through + 1 {
                issues.append(Discrepancy(kind: .gap, key: first.objectKey, topic: tp.topic, partition: tp.partition,
                                          startOffset: through + 1, endOffset: first.startOffset - 1,
                                          detail: "offsets \(through + 1)...\(first.startOffset - 1) are in no batch: the pruned chain ended at \(through)"))
            }
            for (a, b) in zip(sorted, sorted.dropFirst()) {
                if b.startOffset > a.endOffset + 1 {
                    issues.append(Discrepancy(kind: .gap, key: b.objectKey, topic: tp.topic, partition: tp.partition,
                                              startOffset: a.endOffset + 1, endOffset: b.startOffset - 1,
                                              detail: "offsets \(a.endOffset + 1)...\(b.startOffset - 1) are in no batch"))
                } else if b.startOffset <= a.endOffset {
                    issues.append(Discrepancy(kind: .overlap, key: b.objectKey, topic: tp.topic, partition: tp.partition,
                                              startOffset: b.startOffset, endOffset: min(a.endOffset, b.endOffset),
                                              detail: "batches \(a.id) and \(b.id) both hold offsets \(b.startOffset)...\(min(a.endOffset, b.endOffset))"))
                }
            }
            // Kafka's committed offset should be the chain's end + 1, or lie inside in-flight work.
            if let last = sorted.last, let c = committed[tp] {
                let end = last.endOffset + 1
                let inFlight = batches.contains { $0.topic == tp.topic && $0.partition == tp.partition && !$0.state.isFinal }
                if c < end && !inFlight && last.state == .committed {
                    issues.append(Discrepancy(kind: .offsetBehind, key: last.objectKey, topic: tp.topic, partition: tp.partition,
                                              startOffset: c, endOffset: end - 1,
                                              detail: "Kafka committed \(c) but the manifest's chain ends at \(end - 1): offsets \(c)...\(end - 1) would be read again"))
                } else if c > end {
                    issues.append(Discrepancy(kind: .offsetAhead, key: nil, topic: tp.topic, partition: tp.partition,
                                              startOffset: end, endOffset: c - 1,
                                              detail: "Kafka committed \(c) but the manifest's chain ends at \(end - 1): offsets \(end)...\(c - 1) were committed without a batch (gap risk)"))
                }
            }
        }
        // Overlaps between objects (e.g. a second writer), from their metadata.
        var ranges: [TopicPartition: [(Int64, Int64, String)]] = [:]
        for b in delivered where listed[b.objectKey] != nil {
            ranges[TopicPartition(topic: b.topic, partition: b.partition), default: []].append((b.startOffset, b.endOffset, b.objectKey))
        }
        for (key, h) in heads where known[key] == nil {
            guard let t = h.metadata[BatchMetadataKey.topic], let p = h.metadata[BatchMetadataKey.partition].flatMap({ Int32($0) }),
                  let s = h.metadata[BatchMetadataKey.start].flatMap({ Int64($0) }),
                  let e = h.metadata[BatchMetadataKey.end].flatMap({ Int64($0) }) else { continue }
            ranges[TopicPartition(topic: t, partition: p), default: []].append((s, e, key))
        }
        for (tp, rs) in ranges {
            let sorted = rs.sorted { $0.0 < $1.0 }
            for (a, b) in zip(sorted, sorted.dropFirst()) where b.0 <= a.1 {
                let already = issues.contains { $0.kind == .overlap && $0.key == b.2 }
                if !already {
                    issues.append(Discrepancy(kind: .overlap, key: b.2, topic: tp.topic, partition: tp.partition,
                                              startOffset: b.0, endOffset: min(a.1, b.1),
                                              detail: "objects \(a.2) and \(b.2) both hold offsets \(b.0)...\(min(a.1, b.1))"))
                }
            }
        }

        // Where the chain starts: this manifest's first batch of a partition (in any state, even
        // abandoned) began at a chain position, so every offset from there up to Kafka's committed
        // offset must be in some object (ours, or another writer's found in the listing). A hole
        // there is a loss the adjacent-batch check cannot see: committed, but never delivered.
        for (tp, all) in Dictionary(grouping: batches, by: { TopicPartition(topic: $0.topic, partition: $0.partition) }) {
            guard let c = committed[tp], let lowest = all.map(\.startOffset).min(), c > lowest else { continue }
            var pos = lowest
            let sorted = (ranges[tp] ?? []).sorted { $0.0 < $1.0 }
            var next: Int64 = c
            for (s, e, _) in sorted {
                if s > pos { next = min(s, c); break }
                pos = max(pos, e + 1)
            }
            let firstDelivered = byPartition[tp]?.map(\.startOffset).min() ?? c
            if pos < next && pos < firstDelivered {
                issues.append(Discrepancy(kind: .chainStart, key: nil, topic: tp.topic, partition: tp.partition,
                                          startOffset: pos, endOffset: next - 1,
                                          detail: "offsets \(pos)...\(next - 1) are in no object, but Kafka committed \(c) and this manifest's first batch of the partition started at \(lowest): those records were committed without being delivered"))
            }
        }

        // Ranges lost to retention, as the engine recorded them; a gap or chain-start hole that
        // lies inside one is that loss, reported once.
        let losses = try manifest.losses().filter { l in
            options.partition.map { $0.topic == l.topic && $0.partition == l.partition } ?? true
        }
        for l in losses {
            issues.append(Discrepancy(kind: .lostToRetention, key: nil, topic: l.topic, partition: l.partition,
                                      startOffset: l.startOffset, endOffset: l.endOffset,
                                      detail: "offsets \(l.startOffset)...\(l.endOffset) were \(l.detail), detected \(l.detectedAt)"))
        }
        issues.removeAll { d in
            guard d.kind == .gap || d.kind == .chainStart, let s = d.startOffset, let e = d.endOffset else { return false }
            return losses.contains { $0.topic == d.topic && $0.partition == d.partition && $0.startOffset <= s && e <= $0.endOffset }
        }

        // 4. Deep: content hash and Parquet footer of every delivered object; objects before the
        //    horizon against their own metadata (the lake describes them, not the manifest).
        if options.deep {
            let lakeOnly = beforeHorizon.filter { $0.hasSuffix(".parquet") && known[$0] == nil }.sorted().compactMap { key in
                heads[key].flatMap { Self.recordFromMetadata(key: key, $0) }
            }
            issues += try deepCheck(delivered.filter { listed[$0.objectKey] != nil } + lakeOnly)
        }
        report.discrepancies = issues.sorted { ($0.kind.rawValue, $0.key ?? "") < ($1.kind.rawValue, $1.key ?? "") }
        return report
    }

    /// ETags come quoted from S3 listings and responses; compare them bare.
    static func normalizeETag(_ tag: String) -> String {
        tag.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
    }

    private func d(_ kind: Discrepancy.Kind, _ b: BatchRecord, _ detail: String) -> Discrepancy {
        Discrepancy(kind: kind, key: b.objectKey, topic: b.topic, partition: b.partition,
                    startOffset: b.startOffset, endOffset: b.endOffset,
                    detail: b.id < 0 ? "object before the manifest horizon (judged by its own metadata): \(detail)" : "batch \(b.id): \(detail)")
    }

    /// A pseudo-batch (id -1) from an object's own metadata, for the deep check of objects
    /// before the manifest horizon; nil when the metadata lacks a fact (`bad_metadata` is the
    /// fleet audit's finding).
    static func recordFromMetadata(key: String, _ o: ObjectInfo) -> BatchRecord? {
        let m = o.metadata
        guard let t = m[BatchMetadataKey.topic], let p = m[BatchMetadataKey.partition].flatMap({ Int32($0) }),
              let s = m[BatchMetadataKey.start].flatMap({ Int64($0) }), let e = m[BatchMetadataKey.end].flatMap({ Int64($0) }),
              let good = m[BatchMetadataKey.records].flatMap({ Int64($0) }), let sha = m[BatchMetadataKey.sha256] else { return nil }
        let rejected = m[BatchMetadataKey.rejected].flatMap { Int64($0) } ?? 0
        return BatchRecord(id: -1, staged: NewBatch(topic: t, partition: p, startOffset: s, endOffset: e, goodCount: good,
                                                    rejectedCount: rejected, objectKey: key, rejectedKey: nil, filePath: "",
                                                    fileSHA256: sha, fileSize: o.size),
                           state: .committed, uploadID: nil, etag: o.etag, note: nil, createdAt: .distantPast, updatedAt: .distantPast)
    }

    private func headAll(_ keys: [String]) throws -> [String: ObjectInfo] {
        let out = Mutex<[String: ObjectInfo]>([:])
        let failure = Mutex<(any Error)?>(nil)
        let next = Atomic<Int>(0)
        let total = keys.count
        DispatchQueue.concurrentPerform(iterations: max(1, min(options.concurrency, keys.count))) { _ in
            while failure.withLock({ $0 == nil }) {
                let i = next.add(1, ordering: .relaxed).oldValue
                guard i < keys.count else { return }
                do {
                    if let info = try store.headObject(key: keys[i]) { out.withLock { $0[keys[i]] = info } }
                } catch {
                    failure.withLock { $0 = $0 ?? error }
                }
                if !options.deep { options.progress?(i + 1, total, 0) }
            }
        }
        if let e = failure.withLock({ $0 }) { throw e }
        return out.withLock { $0 }
    }

    /// Streams each object in 8 MiB ranges (bounded memory), hashing it, and decodes the footer
    /// from the tail with the project's Parquet footer reader.
    private func deepCheck(_ batches: [BatchRecord]) throws -> [Discrepancy] {
        // A manifest from before migration v4 (read-only: not migrated) has no schemas table.
        let recordedSchemas = try? manifest.schemas()
        let found = Mutex<[Discrepancy]>([])
        let next = Atomic<Int>(0)
        let done = Atomic<Int>(0)
        let bytes = Atomic<Int64>(0)
        let failure = Mutex<(any Error)?>(nil)
        DispatchQueue.concurrentPerform(iterations: max(1, min(options.concurrency, batches.count))) { _ in
            while failure.withLock({ $0 == nil }) {
                let i = next.add(1, ordering: .relaxed).oldValue
                guard i < batches.count else { return }
                let b = batches[i]
                do {
                    let issues = try deepCheck(b, bytes: bytes, recordedSchemas: recordedSchemas)
                    if !issues.isEmpty { found.withLock { $0 += issues } }
                } catch {
                    failure.withLock { $0 = $0 ?? error }
                }
                let n = done.add(1, ordering: .relaxed).newValue
                options.progress?(n, batches.count, bytes.load(ordering: .relaxed))
            }
        }
        if let e = failure.withLock({ $0 }) { throw e }
        return found.withLock { $0 }
    }

    private func deepCheck(_ b: BatchRecord, bytes: borrowing Atomic<Int64>, recordedSchemas: [SchemaRecord]?) throws -> [Discrepancy] {
        guard let info = try store.headObject(key: b.objectKey) else { return [] }
        var hasher = SHA256()
        var offset: Int64 = 0
        var tail: [UInt8] = []
        let chunk: Int64 = 8 << 20
        while offset < info.size {
            let end = min(info.size, offset + chunk) - 1
            let part = try store.getObject(key: b.objectKey, range: offset...end)
            hasher.update(data: part)
            bytes.add(Int64(part.count), ordering: .relaxed)
            // Keep the last 1 MiB + 8 bytes for the footer (footers here are a few KiB).
            tail += part
            if tail.count > (1 << 20) + 8 { tail.removeFirst(tail.count - ((1 << 20) + 8)) }
            offset = end + 1
        }
        var out: [Discrepancy] = []
        let sha = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        if sha != b.fileSHA256 {
            out.append(d(.contentSHA256Mismatch, b, "content sha256 \(sha), manifest \(b.fileSHA256)"))
        }
        do {
            let meta = try ParquetFooter.decode(tail: tail)
            if meta.numRows != b.goodCount {
                out.append(d(.rowCountMismatch, b, "Parquet footer has \(meta.numRows) rows, manifest \(b.goodCount) good records"))
            }
            let stats = meta.rowGroups.flatMap(\.columns).filter { $0.name == "kafka_offset" }.compactMap(\.statistics)
            let mins = stats.compactMap(\.minInt64), maxs = stats.compactMap(\.maxInt64)
            if let lo = mins.min(), let hi = maxs.max() {
                // Offsets are not dense (transaction markers, compaction): the records lie
                // within the range, not necessarily at its ends.
                if lo < b.startOffset || hi > b.endOffset {
                    out.append(d(.offsetStatsMismatch, b, "kafka_offset statistics \(lo)...\(hi), batch \(b.startOffset)...\(b.endOffset)"))
                }
            } else if b.goodCount > 0 {
                out.append(d(.offsetStatsMismatch, b, "no kafka_offset statistics in the footer"))
            }
            if let problem = Self.schemaProblem(meta, recorded: recordedSchemas) { out.append(d(.schemaMismatch, b, problem)) }
        } catch {
            out.append(d(.unreadableParquet, b, "footer: \(error)"))
        }
        return out
    }

    /// Whether the footer's columns are the ones its recorded schema describes, and the schema
    /// is one of `recorded` (the manifest's; nil or empty: not checked). Objects from before
    /// schemas were recorded must have the seed columns (``OutputSchema``).
    static func schemaProblem(_ meta: ParquetFileMetadata, recorded: [SchemaRecord]?) -> String? {
        let actual = meta.schema.map { ($0.name, $0.columnType.map(Self.typeName) ?? "\($0.physicalType)", $0.nullable) }
        guard let json = meta.value(forKey: BatchMetadataKey.schema) else {
            let seed = OutputSchema.schema.columns.map { ($0.name, Self.typeName($0.type), $0.nullable) }
            return actual.elementsEqual(seed, by: ==) ? nil
                : "no \(BatchMetadataKey.schema) in the footer, and the columns are not the seed columns"
        }
        let described = SchemaDescription(json: json)
        guard meta.value(forKey: BatchMetadataKey.schemaFingerprint) == described.fingerprint else {
            return "\(BatchMetadataKey.schemaFingerprint) is not the SHA-256 of \(BatchMetadataKey.schema)"
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let columns = object["columns"] as? [[String: Any]] else {
            return "\(BatchMetadataKey.schema) is not a schema description"
        }
        let expected = columns.map { ($0["name"] as? String ?? "", $0["type"] as? String ?? "", $0["nullable"] as? Bool ?? true) }
        guard actual.elementsEqual(expected, by: ==) else {
            return "footer columns \(actual.map(\.0)) do not match the recorded schema's \(expected.map(\.0))"
        }
        if let recorded, !recorded.isEmpty,
           !recorded.contains(where: { $0.fingerprint == described.fingerprint }) {
            return "schema \(described.fingerprint.prefix(12)) is not recorded in the manifest"
        }
        return nil
    }

    static func typeName(_ t: ParquetColumnType) -> String {
        switch t {
        case .boolean: return "bool"
        case .int32: return "int32"
        case .int64: return "int64"
        case .double: return "double"
        case .string: return "string"
        case .timestampMicrosUTC: return "timestamp"
        }
    }
}
