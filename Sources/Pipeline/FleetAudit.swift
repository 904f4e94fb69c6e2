import Foundation
import KafkaSource
import Logging
import ObjectStore
import TidemarkConfig

// `etl-audit --fleet`: the audit of a whole consumer group (every engine of the fleet) from the
// store alone. Engines that scale out share one group and one sink but each has its own
// manifest, so the per-manifest audit (``Auditor``) sees the others' objects as unknown. The
// truth is the chain in S3 (docs/protocol.md, invariant 2), and every `.parquet` object's
// metadata says which offsets it holds; this audit rebuilds each partition's chain from that
// metadata and checks it against the group's committed offsets and the partitions' log start
// offsets. docs/operations.md, "Fleet audit".
//
// Pure core + thin I/O shell: ``FleetChain/check(topic:partition:spans:deadLetters:committed:logStart:layout:)``
// decides everything from compact per-partition ranges; ``FleetAuditor`` lists and HEADs the
// store to build them, and ``FleetKafkaOffsets`` reads Kafka.

/// One `.parquet` object as the fleet audit keeps it: its offset range and enough to rebuild its
/// key for a report. 24 bytes (stride) per object, whatever the key length.
public struct FleetSpan: Sendable, Equatable {
    /// First offset the object holds (`tidemark-start`).
    public var start: Int64
    /// Last offset the object holds (`tidemark-end`).
    public var end: Int64
    /// The key's `dt=` date as days since 1970-01-01 (rebuilds the key with ``KeyLayout``).
    public var day: Int32
    /// The metadata counts rejected records: a dead-letter object `[start, end]` must exist.
    public var hasRejected: Bool
    /// The object's key when a path template made it (the default layout rebuilds it from
    /// `day`, which keeps a 100,000-object inventory small).
    public var key: String?

    public init(start: Int64, end: Int64, day: Int32 = 0, hasRejected: Bool = false, key: String? = nil) {
        self.start = start
        self.end = end
        self.key = key
        self.day = day
        self.hasRejected = hasRejected
    }
}

/// One dead-letter object (`…/T+P+start+end.jsonl`), parsed from its key.
public struct FleetDeadLetter: Sendable, Equatable {
    public var key: String
    public var start: Int64
    public var end: Int64

    public init(key: String, start: Int64, end: Int64) {
        self.key = key
        self.start = start
        self.end = end
    }
}

/// Kafka's view of the group's partitions: committed offsets (absent: nothing committed) and
/// log start offsets (low watermarks; absent: unknown).
public struct FleetOffsets: Sendable, Equatable {
    public var committed: [TopicPartition: Int64]
    public var logStart: [TopicPartition: Int64]

    public init(committed: [TopicPartition: Int64] = [:], logStart: [TopicPartition: Int64] = [:]) {
        self.committed = committed
        self.logStart = logStart
    }
}

/// The checks of the fleet audit over one partition: pure functions, no I/O.
public enum FleetChain {
    /// Every discrepancy of one partition.
    ///
    /// - overlap: offsets in two objects.
    /// - gap: offsets in no object that Kafka still holds (at or above `logStart`): between two
    ///   objects, before the first object (from the log start up to the committed offset), or
    ///   after the last one up to the committed offset. Re-readable: resetting the group's
    ///   offset to the gap's start delivers them (the probe skips the objects that exist).
    /// - lost_to_retention: offsets in no object below `logStart` that the group had to deliver
    ///   (between objects, or from the committed offset up to the log start): Kafka deleted
    ///   them, they can never be delivered.
    /// - orphan_rejected: ``DeadLetterOrphans``' rule, over the spans.
    /// - rejected_missing: an object whose metadata counts rejected records without its
    ///   dead-letter object (which is written before the `.parquet` object).
    ///
    /// Offsets at or above the committed offset after the last object are pending work, not a
    /// discrepancy; a committed offset behind the chain's end is normal in a fleet (the object
    /// exists, the commit follows, and the next owner's probe skips it).
    ///
    /// - Parameters:
    ///   - spans: the partition's objects, in any order.
    ///   - committed: the group's committed offset (nil: none).
    ///   - logStart: the partition's log start offset (nil: unknown; then nothing before the
    ///     first object is checked, and no hole is called lost to retention).
    public static func check(topic: String, partition: Int32, spans: [FleetSpan], deadLetters: [FleetDeadLetter],
                             committed: Int64?, logStart: Int64?, layout: KeyLayout) -> [Discrepancy] {
        var out: [Discrepancy] = []
        let sorted = spans.sorted { ($0.start, $0.end) < ($1.start, $1.end) }
        func key(_ s: FleetSpan) -> String {
            s.key ?? layout.objectKey(topic: topic, partition: partition, start: s.start, startTimestampMillis: Int64(s.day) * 86_400_000)
        }
        func hole(_ a: Int64, _ b: Int64, key: String?, _ why: String) {
            guard a <= b else { return }
            if let l = logStart, a < l {
                let e = min(b, l - 1)
                out.append(Discrepancy(kind: .lostToRetention, key: key, topic: topic, partition: partition, startOffset: a, endOffset: e,
                                       detail: "offsets \(a)...\(e) are in no object (\(why)) and below the log start offset \(l): Kafka deleted them, they can never be delivered"))
            }
            let g = max(a, logStart ?? a)
            if g <= b {
                out.append(Discrepancy(kind: .gap, key: key, topic: topic, partition: partition, startOffset: g, endOffset: b,
                                       detail: "offsets \(g)...\(b) are in no object (\(why)); Kafka still holds them: resetting the group's offset to \(g) re-reads them"))
            }
        }
        // Overlaps and holes between objects: one pass in start order with the furthest end so far.
        var reach: FleetSpan?
        for s in sorted {
            if let r = reach {
                if s.start <= r.end {
                    let e = min(r.end, s.end)
                    out.append(Discrepancy(kind: .overlap, key: key(s), topic: topic, partition: partition, startOffset: s.start, endOffset: e,
                                           detail: "objects \(key(r)) (\(r.start)...\(r.end)) and \(key(s)) (\(s.start)...\(s.end)) both hold offsets \(s.start)...\(e)"))
                } else if s.start > r.end + 1 {
                    hole(r.end + 1, s.start - 1, key: key(s), "between \(key(r)) and \(key(s))")
                }
            }
            if reach == nil || s.end > reach!.end { reach = s }
        }
        if let c = committed {
            // Before the first object: from the log start (or the committed offset, when it is
            // lower) up to the first object, but only what the group has committed past or can
            // no longer read (below the log start).
            let first = sorted.first?.start ?? Int64.max
            if let l = logStart {
                let lo = min(c, l), hi = min(first, max(c, l)) - 1
                hole(lo, hi, key: sorted.first.map(key), sorted.isEmpty
                     ? "the partition has no object but Kafka committed \(c)"
                     : "before the first object, Kafka committed \(c), log start \(l)")
            }
            // After the last object: up to the committed offset (or the log start, above it).
            if let r = reach {
                let target = max(c, logStart ?? c)
                hole(r.end + 1, target - 1, key: nil, "after the last object \(key(r)), Kafka committed \(c)")
            }
        }
        // Dead letters (DeadLetterOrphans' rule): the one of [s, e] belongs to the object at s
        // ending at e; an orphan when the object at s ends elsewhere, or when there is none at s
        // but the object before s covers s.
        let starts = sorted.map(\.start)
        func index(ofLast value: Int64, strictlyBelow: Bool) -> Int? {
            var lo = 0, hi = starts.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if strictlyBelow ? starts[mid] < value : starts[mid] <= value { lo = mid + 1 } else { hi = mid }
            }
            return lo == 0 ? nil : lo - 1
        }
        var accounted = Set<[Int64]>()
        for d in deadLetters {
            // Several objects could start at d.start in different dt= folders: any ending at e owns it.
            var atStart: [(key: String, end: Int64)] = []
            if let i = index(ofLast: d.start, strictlyBelow: false) {
                var j = i
                while j >= 0 && sorted[j].start == d.start { atStart.append((key(sorted[j]), sorted[j].end)); j -= 1 }
            }
            let before = atStart.isEmpty ? index(ofLast: d.start, strictlyBelow: true).map { (key(sorted[$0]), sorted[$0].start, sorted[$0].end) } : nil
            if let reason = DeadLetterOrphans.orphanReason(start: d.start, end: d.end, objectsAtStart: atStart, before: before) {
                out.append(Discrepancy(kind: .orphanRejected, key: d.key, topic: topic, partition: partition, startOffset: d.start, endOffset: d.end,
                                       detail: reason))
            } else if atStart.contains(where: { $0.end == d.end }) {
                accounted.insert([d.start, d.end])
            }
        }
        for s in sorted where s.hasRejected && !accounted.contains([s.start, s.end]) {
            out.append(Discrepancy(kind: .rejectedMissing, key: key(s), topic: topic, partition: partition, startOffset: s.start, endOffset: s.end,
                                   detail: "the object's metadata counts rejected records but there is no dead-letter object for \(s.start)...\(s.end)"))
        }
        return out
    }

    /// Days since 1970-01-01 of `YYYY-MM-DD` (days-from-civil, Howard Hinnant's algorithm).
    static func days(fromDate s: Substring) -> Int32? {
        let f = s.split(separator: "-")
        guard f.count == 3, let y0 = Int(f[0]), let m = Int(f[1]), let d = Int(f[2]), (1...12).contains(m), (1...31).contains(d) else { return nil }
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return Int32(exactly: era * 146_097 + doe - 719_468)
    }
}

/// What ``FleetAuditor`` does.
public struct FleetAuditOptions: Sendable {
    /// Parallel HEAD requests.
    public var concurrency = 16
    /// Multipart uploads initiated longer ago than this are reported (`[engine] orphan_upload_grace`).
    public var orphanUploadGrace: Duration = .seconds(3600)
    /// Only this topic-partition.
    public var partition: TopicPartition?
    /// "Now", for the age of multipart uploads.
    public var now = Date()
    /// Called after each listing page with (objects listed, `.parquet` objects HEADed).
    public var progress: (@Sendable (Int, Int) -> Void)?
    public init() {}
}

/// Audits the whole group's sink from object metadata (read-only everywhere).
public struct FleetAuditor: Sendable {
    let store: any ObjectStore
    let layout: KeyLayout
    let options: FleetAuditOptions

    public init(store: any ObjectStore, layout: KeyLayout, options: FleetAuditOptions) {
        self.store = store
        self.layout = layout
        self.options = options
    }

    /// The store's objects reduced to what the checks need.
    public struct Inventory: Sendable {
        /// Per partition: every `.parquet` object's range.
        public var spans: [TopicPartition: [FleetSpan]] = [:]
        /// Per partition: every dead-letter object.
        public var deadLetters: [TopicPartition: [FleetDeadLetter]] = [:]
        /// Objects that are neither (unknown_object) or whose metadata is unusable (bad_metadata).
        public var issues: [Discrepancy] = []
        public var objects = 0
        public var parquetObjects = 0
        public var bytes: Int64 = 0
        public var records: Int64 = 0
        public var rejectedRecords: Int64 = 0
    }

    /// Lists the sink prefix page by page; HEADs each page's `.parquet` objects in parallel
    /// (bounded by ``FleetAuditOptions/concurrency``) and keeps only their ranges. The next page
    /// is listed on this thread while the workers HEAD the current one.
    public func scan() throws -> Inventory {
        var inv = Inventory()
        let root = layout.prefix.isEmpty ? "" : layout.prefix + "/"
        let pool = HeadPool(store: store, workers: max(1, options.concurrency))
        defer { pool.close() }
        var listed = 0
        var headed = 0
        var page = try store.listObjects(prefix: root, startAfter: nil, continuationToken: nil, maxKeys: 1000)
        while true {
            var (local, toHead) = classify(page, root: root)
            pool.submit(toHead)
            listed += page.objects.count
            let next = try page.nextContinuationToken.map {
                try store.listObjects(prefix: root, startAfter: nil, continuationToken: $0, maxKeys: 1000)
            }
            local.merge(try pool.wait())
            inv.merge(local)
            headed += toHead.count
            options.progress?(listed, headed)
            guard let next else { break }
            page = next
        }
        return inv
    }

    typealias HeadItem = (key: String, tp: TopicPartition, start: Int64, day: Int32)

    /// Sorts one page: dead-letter objects (parsed from the key), `.parquet` objects to HEAD,
    /// anything else (unknown_object).
    func classify(_ page: ObjectPage, root: String) -> (Inventory, [HeadItem]) {
        var local = Inventory()
        var toHead: [HeadItem] = []
        for o in page.objects {
            let rel = o.key.dropFirst(root.count)
            if o.key.hasPrefix(layout.rejectedPrefix) {
                if let d = DeadLetterOrphans.parse(o.key) {
                    let tp = TopicPartition(topic: d.topic, partition: d.partition)
                    if let only = options.partition, only != tp { continue }
                    local.deadLetters[tp, default: []].append(FleetDeadLetter(key: o.key, start: d.start, end: d.end))
                    local.objects += 1
                    local.bytes += o.size
                    continue
                }
            } else if layout.template == nil ? rel.hasPrefix("topic=") : true, let k = layout.parseObjectKey(o.key),
                      let day = layout.template == nil ? Self.day(of: o.key) : 0 {
                let tp = TopicPartition(topic: k.topic, partition: k.partition)
                if let only = options.partition, only != tp { continue }
                toHead.append((o.key, tp, k.start, day))
                local.objects += 1
                local.bytes += o.size
                continue
            }
            if options.partition != nil { continue }
            local.objects += 1
            local.bytes += o.size
            local.issues.append(Discrepancy(kind: .unknownObject, key: o.key,
                                            detail: "object of \(o.size) bytes that is neither a batch's .parquet object nor a dead-letter object"))
        }
        return (local, toHead)
    }

    /// Checks a scanned store against Kafka's offsets and lists stale multipart uploads.
    public func check(_ inv: Inventory, offsets: FleetOffsets) throws -> AuditReport {
        var report = AuditReport()
        report.objects = inv.objects
        report.batches = inv.parquetObjects
        report.bytes = inv.bytes
        report.records = inv.records
        report.rejectedRecords = inv.rejectedRecords
        var issues = inv.issues
        var tps = Set(inv.spans.keys).union(inv.deadLetters.keys).union(offsets.committed.keys)
        if let only = options.partition { tps = tps.filter { $0 == only } }
        report.partitions = tps.count
        for tp in tps.sorted() {
            issues += FleetChain.check(topic: tp.topic, partition: tp.partition, spans: inv.spans[tp] ?? [],
                                       deadLetters: inv.deadLetters[tp] ?? [], committed: offsets.committed[tp],
                                       logStart: offsets.logStart[tp], layout: layout)
        }
        let cutoff = options.now.addingTimeInterval(-Double(options.orphanUploadGrace.components.seconds))
        for u in try store.listMultipartUploads(prefix: layout.prefix.isEmpty ? "" : layout.prefix + "/") {
            let k = layout.parseObjectKey(u.key)
            if let only = options.partition, k.map({ TopicPartition(topic: $0.topic, partition: $0.partition) }) != only { continue }
            guard (u.initiated ?? .distantPast) < cutoff else { continue }
            issues.append(Discrepancy(kind: .staleUpload, key: u.key, topic: k?.topic, partition: k?.partition, startOffset: k?.start,
                                      detail: "multipart upload \(u.uploadID) initiated \(u.initiated.map { "\($0)" } ?? "at an unknown time"), longer ago than orphan_upload_grace (\(options.orphanUploadGrace)): its writer is gone; etl-recover aborts it"))
        }
        report.discrepancies = issues.sorted {
            ($0.kind.rawValue, $0.topic ?? "", $0.partition ?? -1, $0.startOffset ?? -1, $0.key ?? "")
                < ($1.kind.rawValue, $1.topic ?? "", $1.partition ?? -1, $1.startOffset ?? -1, $1.key ?? "")
        }
        return report
    }

    /// ``scan()``, then Kafka's offsets for the partitions found (the closure may add partitions
    /// that have no object), then ``check(_:offsets:)``.
    public func run(offsets: (Set<TopicPartition>) throws -> FleetOffsets) throws -> AuditReport {
        let inv = try scan()
        var tps = Set(inv.spans.keys).union(inv.deadLetters.keys)
        if let only = options.partition { tps.insert(only) }
        return try check(inv, offsets: offsets(tps))
    }

    /// `workers` threads that live for the whole scan (threads started per page left their
    /// stacks' pages behind: RSS grew with every page) and HEAD one page's objects at a time.
    final class HeadPool: @unchecked Sendable {
        // @unchecked: every field below is read and written only with `cond` locked.
        private let cond = NSCondition()
        private let store: any ObjectStore
        private var items: [HeadItem] = []
        private var index = 0
        private var busy = 0
        private var closed = false
        private var running = 0
        private var found = Inventory()
        private var failure: (any Error)?

        init(store: any ObjectStore, workers: Int) {
            self.store = store
            running = workers
            for _ in 0..<workers {
                let t = Thread { [self] in work() }
                t.stackSize = 1 << 20
                t.start()
            }
        }

        /// Hands the workers one page's objects (call ``wait()`` before the next page).
        func submit(_ page: [HeadItem]) {
            cond.lock()
            items = page
            index = 0
            cond.broadcast()
            cond.unlock()
        }

        /// Waits until the page is HEADed; its ranges, or the first error.
        func wait() throws -> Inventory {
            cond.lock()
            defer { cond.unlock() }
            while (index < items.count && failure == nil) || busy > 0 { cond.wait() }
            items = []
            index = 0
            if let failure { throw failure }
            defer { found = Inventory() }
            return found
        }

        /// Stops the workers and waits for them to exit.
        func close() {
            cond.lock()
            closed = true
            cond.broadcast()
            while running > 0 { cond.wait() }
            cond.unlock()
        }

        private func work() {
            cond.lock()
            while true {
                while index >= items.count && !closed { cond.wait() }
                if closed { break }
                let item = items[index]
                index += 1
                busy += 1
                cond.unlock()
                var mine = Inventory()
                var error: (any Error)?
                do {
                    if let h = try store.headObject(key: item.key) {  // nil: deleted since the listing
                        FleetAuditor.absorb(h.metadata, key: item.key, tp: item.tp, start: item.start, day: item.day,
                                            keepKey: item.day == 0, into: &mine)
                    }
                } catch let e {
                    error = e
                }
                cond.lock()
                busy -= 1
                found.merge(mine)
                if let error, failure == nil {
                    failure = error
                    index = items.count  // stop taking this page's objects
                }
                cond.broadcast()
            }
            running -= 1
            cond.broadcast()
            cond.unlock()
        }
    }

    /// The `dt=` segment of a key, as days since 1970-01-01.
    static func day(of key: String) -> Int32? {
        guard let seg = key.split(separator: "/").first(where: { $0.hasPrefix("dt=") }) else { return nil }
        return FleetChain.days(fromDate: seg.dropFirst(3))
    }

    static func absorb(_ m: [String: String], key: String, tp: TopicPartition, start: Int64, day: Int32, keepKey: Bool = false,
                       into inv: inout Inventory) {
        inv.parquetObjects += 1
        guard let t = m[BatchMetadataKey.topic], let p = m[BatchMetadataKey.partition].flatMap({ Int32($0) }),
              let s = m[BatchMetadataKey.start].flatMap({ Int64($0) }), let e = m[BatchMetadataKey.end].flatMap({ Int64($0) }) else {
            inv.issues.append(Discrepancy(kind: .badMetadata, key: key, topic: tp.topic, partition: tp.partition, startOffset: start,
                                          detail: "no tidemark-topic/partition/start/end metadata: not written by an engine, its offsets are unknown"))
            return
        }
        guard t == tp.topic, p == tp.partition, s == start, e >= s else {
            inv.issues.append(Discrepancy(kind: .badMetadata, key: key, topic: tp.topic, partition: tp.partition, startOffset: start, endOffset: e,
                                          detail: "metadata says \(t)[\(p)] \(s)...\(e), the key says \(tp.topic)[\(tp.partition)] from \(start): left out of the chain"))
            return
        }
        let rejected = m[BatchMetadataKey.rejected].flatMap { Int64($0) } ?? 0
        inv.records += m[BatchMetadataKey.records].flatMap { Int64($0) } ?? 0
        inv.rejectedRecords += rejected
        inv.spans[tp, default: []].append(FleetSpan(start: s, end: e, day: day, hasRejected: rejected > 0,
                                                    key: keepKey ? key : nil))
    }
}

extension FleetAuditor.Inventory {
    mutating func merge(_ o: Self) {
        for (tp, s) in o.spans { spans[tp, default: []].append(contentsOf: s) }
        for (tp, d) in o.deadLetters { deadLetters[tp, default: []].append(contentsOf: d) }
        issues += o.issues
        objects += o.objects
        parquetObjects += o.parquetObjects
        bytes += o.bytes
        records += o.records
        rejectedRecords += o.rejectedRecords
    }
}

/// Reads the group's committed offsets and the partitions' log start offsets from Kafka: the
/// partitions of the configured topics (a metadata request) and any other partition that has
/// objects. Read-only: it never joins the group nor commits.
public enum FleetKafkaOffsets {
    public static func read(_ cfg: EngineConfig, partitions found: Set<TopicPartition>, only: TopicPartition?,
                            logger: Logger, timeout: Duration = .seconds(30)) throws -> FleetOffsets {
        var tps = found
        if only == nil {
            let meta = try KafkaProducer(bootstrapServers: cfg.kafka.brokers, properties: cfg.kafka.properties, logger: logger)
            for topic in cfg.kafka.topics {
                let n = try meta.partitionCount(topic: topic, timeout: timeout)
                for p in 0..<n { tps.insert(TopicPartition(topic: topic, partition: Int32(p))) }
            }
        }
        guard !tps.isEmpty else { return FleetOffsets() }
        let kc = KafkaConsumerConfig(bootstrapServers: cfg.kafka.brokers, groupID: cfg.kafka.groupID,
                                     topics: cfg.kafka.topics, properties: cfg.kafka.properties)
        let consumer = try KafkaConsumer(config: kc, rebalanceHandler: nil, logger: logger)
        defer { try? consumer.close(timeout: .seconds(5)) }
        var out = FleetOffsets()
        out.committed = try consumer.committed(Array(tps), timeout: timeout).mapValues(\.offset)
        for tp in tps.sorted() {
            let w = try consumer.watermarks(tp, cached: false, timeout: timeout)
            if w.low >= 0 { out.logStart[tp] = w.low }
        }
        return out
    }
}
