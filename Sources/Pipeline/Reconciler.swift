import Foundation
import KafkaSource
import Logging
import Manifest
import ObjectStore

#if canImport(Glibc)
import Glibc
#endif

/// One thing recovery does (or, with a dry run, would do).
public struct RecoveryAction: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        /// Drive an unfinished batch through the commit protocol (upload / resume / commit).
        case finishBatch = "finish_batch"
        /// Abort a multipart upload no manifest batch owns, older than the grace period.
        case abortOrphanUpload = "abort_orphan_upload"
        /// Move a staged file no manifest row refers to into quarantine.
        case quarantineOrphanFile = "quarantine_orphan_file"
        /// Delete the leftover staged file of a final batch.
        case deleteLeftoverFile = "delete_leftover_file"
        /// Delete a dead-letter object no delivered batch accounts for (``DeadLetterOrphans``).
        case deleteOrphanDeadLetter = "delete_orphan_dead_letter"
        /// Kafka's committed offset is behind the manifest's committed chain: advance it.
        case advanceOffset = "advance_offset"
        /// Needs an operator: Kafka is ahead of the manifest (gap risk), a row points elsewhere...
        case attention
    }
    public var kind: Kind
    public var batchID: Int64?
    public var topic: String?
    public var partition: Int32?
    public var startOffset: Int64?
    public var endOffset: Int64?
    public var key: String?
    public var stateBefore: String?
    public var stateAfter: String?
    public var detail: String
    /// Whether the action changed anything (false for a batch left as it was).
    public var changed: Bool = true
}

/// The result of a recovery pass.
public struct RecoveryReport: Sendable, Codable {
    public var dryRun: Bool
    public var actions: [RecoveryAction] = []
    /// True when nothing was (or, in a dry run, would be) changed and nothing needs an operator.
    public var alreadyConsistent: Bool { !actions.contains { $0.changed } && !needsAttention }
    /// True when an action needs an operator (exit code 1).
    public var needsAttention: Bool { actions.contains { $0.kind == .attention } }
}

/// Reconciles the manifest, the staging directory, the store's multipart uploads and Kafka's
/// committed offsets after a crash. Batches go through the same ``BatchStateMachine`` and
/// ``BatchExecutor`` the engine uses; the engine runs the batch part of this at start.
public struct Reconciler {
    let manifest: Manifest
    let store: any ObjectStore
    let layout: KeyLayout
    let stagingDirectory: String
    let offsets: any OffsetAuthority
    /// Kafka's committed offsets per partition (nil when Kafka could not be asked).
    let committed: [TopicPartition: Int64]?
    let orphanUploadGrace: TimeInterval
    let partSize: Int64
    let concurrency: Int
    let logger: Logger

    public init(manifest: Manifest, store: any ObjectStore, layout: KeyLayout, stagingDirectory: String,
                offsets: any OffsetAuthority, committed: [TopicPartition: Int64]?, orphanUploadGrace: TimeInterval,
                partSize: Int64, concurrency: Int, logger: Logger) {
        self.manifest = manifest
        self.store = store
        self.layout = layout
        self.stagingDirectory = stagingDirectory
        self.offsets = offsets
        self.committed = committed
        self.orphanUploadGrace = orphanUploadGrace
        self.partSize = partSize
        self.concurrency = concurrency
        self.logger = logger
    }

    /// Computes the plan and, unless `dryRun`, carries it out. `upload: false` leaves STAGED
    /// batches for the engine (they are reported, not driven).
    public func run(dryRun: Bool, upload: Bool = true) throws -> RecoveryReport {
        var report = RecoveryReport(dryRun: dryRun)
        let all = try manifest.batches()
        let executor = BatchExecutor(manifest: manifest, store: store, layout: layout, offsets: offsets,
                                     partSize: partSize, concurrency: concurrency,
                                     quarantineDirectory: stagingDirectory + "/quarantine", logger: logger)

        // 1. Unfinished batches, per partition in offset order, as the partition's machine
        //    decides (the engine's upload scheduler asks the same machine): a batch is uploaded
        //    only at the chain frontier (Kafka's committed offset, moved by delivered objects),
        //    and a batch after a break in the chain is abandoned, so recovery never uploads or
        //    commits past offsets that are not delivered.
        let unfinished = Dictionary(grouping: all.filter { !$0.state.isFinal }) { TopicPartition(topic: $0.topic, partition: $0.partition) }
        for tp in unfinished.keys.sorted() {
            var machine = PartitionMachine()
            if let committed { machine.apply(.committed(committed[tp])) }
            for b in unfinished[tp]!.sorted(by: { $0.startOffset < $1.startOffset }) {
                var a = RecoveryAction(kind: .finishBatch, batchID: b.id, topic: b.topic, partition: b.partition,
                                       startOffset: b.startOffset, endOffset: b.endOffset, key: b.objectKey,
                                       stateBefore: b.state.rawValue, stateAfter: nil, detail: plannedStep(b))
                if !upload && b.state == .staged {
                    a.detail = "left for the engine (--no-upload)"
                    a.changed = false
                    report.actions.append(a)
                    continue
                }
                switch machine.decide(start: b.startOffset, end: b.endOffset, state: b.state) {
                case .readCommitted:
                    a.kind = .attention
                    a.changed = false
                    a.detail = "left for the engine: Kafka's committed offset is unknown, so recovery cannot tell whether the offsets before this batch are delivered"
                case .wait(let missing):
                    a.changed = false
                    a.detail = "left for the engine: offsets \(missing.lowerBound)...\(missing.upperBound) before it are not delivered; the engine reads them again, then uploads this batch"
                case .abandon(let reason):
                    a.stateAfter = BatchState.abandoned.rawValue
                    a.detail = "ABANDONED: \(reason); its records will be read again from Kafka"
                    if !dryRun {
                        try executor.abandonWithoutUpload(b, reason: reason)
                        try manifest.logEvent(batchID: b.id, kind: "RECOVER", detail: a.detail)
                    }
                case .drive(let covered):
                    if let covered {
                        a.detail += "; offsets before \(covered) are delivered by other objects, so it may only find its own object"
                    }
                    if dryRun {
                        // Plan as if it succeeds, so the batches after it are planned too.
                        machine.apply(.finished(start: b.startOffset, end: b.endOffset, outcome: .committed))
                        break
                    }
                    let outcome = try executor.drive(b, coveredThrough: covered)
                    machine.apply(.finished(start: b.startOffset, end: b.endOffset, outcome: outcome))
                    a.stateAfter = try manifest.batch(id: b.id)?.state.rawValue
                    a.changed = a.stateAfter != a.stateBefore
                    a.detail = describe(outcome)
                    try manifest.logEvent(batchID: b.id, kind: "RECOVER", detail: a.detail)
                    if case .needsAttention = outcome { a.kind = .attention }
                    if case .uploadedNotOwned = outcome {
                        a.detail += "; the partition's owner will find the object through its S3 probe and skip past it"
                    }
                }
                report.actions.append(a)
            }
        }

        // 2. Staging directory: leftovers of final batches, files with no row (the engine's rule
        //    at start, ``StagingJanitor``).
        let janitor = StagingJanitor(directory: stagingDirectory)
        let tidy = janitor.plan(files: janitor.files(), batches: try manifest.batches())
        for d in tidy.delete {
            report.actions.append(RecoveryAction(kind: .deleteLeftoverFile, key: d.path, detail: d.why))
        }
        for path in tidy.quarantine {
            report.actions.append(RecoveryAction(kind: .quarantineOrphanFile, key: path,
                                                 detail: "staged file with no manifest row, moved to \(janitor.quarantineDirectory)"))
        }
        if !dryRun { try janitor.apply(tidy, manifest: manifest) }
        let stagingPrefix = (stagingDirectory as NSString).standardizingPath + "/"
        for b in all where !b.state.isFinal && !(b.filePath as NSString).standardizingPath.hasPrefix(stagingPrefix) {
            report.actions.append(RecoveryAction(kind: .attention, batchID: b.id, topic: b.topic, partition: b.partition,
                                                 startOffset: b.startOffset, endOffset: b.endOffset, key: b.filePath,
                                                 detail: "manifest row points at a file outside the staging directory \(stagingDirectory)"))
        }

        // 3. Multipart uploads under the prefix that no live batch owns, older than the grace period.
        let owned = Set(try manifest.unfinishedBatches().compactMap(\.uploadID))
        let cutoff = Date().addingTimeInterval(-orphanUploadGrace)
        for u in try store.listMultipartUploads(prefix: layout.prefix.isEmpty ? "" : layout.prefix + "/") where !owned.contains(u.uploadID) {
            guard (u.initiated ?? .distantPast) < cutoff else { continue }
            report.actions.append(RecoveryAction(kind: .abortOrphanUpload, key: u.key,
                                                 detail: "upload \(u.uploadID) started \(u.initiated.map { "\($0)" } ?? "at an unknown time") is owned by no manifest batch"))
            if !dryRun {
                try? store.abortMultipartUpload(key: u.key, uploadID: u.uploadID)
                try manifest.logEvent(batchID: nil, kind: "ABORT_ORPHAN_UPLOAD", detail: "\(u.key) \(u.uploadID)")
            }
        }

        // 4. Dead-letter objects whose batch lost its start to another writer's object, or whose
        //    offsets another writer delivered with other cuts: their records are in the winner's
        //    dead-letter object too. Decided from the store alone (any engine's etl-recover).
        for o in try DeadLetterOrphans.find(store: store, layout: layout) {
            report.actions.append(RecoveryAction(kind: .deleteOrphanDeadLetter, topic: o.topic, partition: o.partition,
                                                 startOffset: o.startOffset, endOffset: o.endOffset, key: o.key,
                                                 detail: "orphan dead-letter object: \(o.reason)"))
            if !dryRun {
                try store.deleteObject(key: o.key)
                try manifest.logEvent(batchID: nil, kind: "DELETE_ORPHAN_DEAD_LETTER", detail: "\(o.key): \(o.reason)")
            }
        }

        // 5. Kafka's committed offsets against the manifest's committed chain.
        if let committed {
            let done = try manifest.batches(states: [.committed])
            for (tp, list) in Dictionary(grouping: done, by: { TopicPartition(topic: $0.topic, partition: $0.partition) }) {
                let c = committed[tp] ?? -1
                // Only as far as the manifest's delivered chain is contiguous from Kafka's
                // committed offset (or, with none, from its first batch): never past a hole.
                var chain = PartitionMachine()
                chain.apply(.assigned(committed: committed[tp] ?? list.map(\.startOffset).min()!))
                for b in list { chain.apply(.finished(start: b.startOffset, end: b.endOffset, outcome: .committed)) }
                let chainEnd = chain.frontier! - 1
                if c < chainEnd + 1 {
                    var a = RecoveryAction(kind: .advanceOffset, topic: tp.topic, partition: tp.partition,
                                           startOffset: c, endOffset: chainEnd,
                                           detail: "Kafka committed \(c < 0 ? "nothing" : String(c)), manifest delivered up to \(chainEnd): commit \(chainEnd + 1)")
                    if !dryRun {
                        let ok = (try? offsets.commit(tp, offset: chainEnd + 1, metadata: list.last?.objectKey ?? "")) ?? false
                        if !ok {
                            a.kind = .attention
                            a.detail += " — refused by the group coordinator (the group has live members); the owner's S3 probe skips the delivered range"
                        }
                    }
                    report.actions.append(a)
                } else if c > chainEnd + 1 {
                    let inFlight = try manifest.unfinishedBatches(topic: tp.topic, partition: tp.partition).map(\.endOffset).max()
                    if inFlight.map({ c > $0 + 1 }) ?? true {
                        report.actions.append(RecoveryAction(kind: .attention, topic: tp.topic, partition: tp.partition,
                                                             startOffset: chainEnd + 1, endOffset: c - 1,
                                                             detail: "gap risk: Kafka committed \(c) but this manifest delivered only up to \(chainEnd); offsets \(chainEnd + 1)...\(c - 1) were committed by someone else (another engine, or a manual reset)"))
                    }
                }
            }
        }
        return report
    }

    private func plannedStep(_ b: BatchRecord) -> String {
        switch b.state {
        case .staged: return "verify the staged file's SHA-256, then upload (or ABANDON and quarantine if missing/corrupt)"
        case .uploading: return "ListParts for upload \(b.uploadID ?? "?"), keep matching parts, upload the rest, complete"
        case .uploaded: return "commit offset \(b.endOffset + 1) if the group allows"
        default: return "none"
        }
    }

    private func describe(_ o: BatchStateMachine.Outcome) -> String {
        switch o {
        case .committed: return "uploaded and committed"
        case .uploadedNotOwned: return "in the store (UPLOADED); offset not committed by etl-recover"
        case .abandoned(let reason): return "ABANDONED: \(reason); its records will be read again from Kafka"
        case .superseded(let at): return "SUPERSEDED: another writer's object holds this start; the chain continues at \(at)"
        case .needsAttention(let why): return "NEEDS ATTENTION: \(why)"
        }
    }
}

/// Commits as a non-member of the group (etl-recover): accepted by Kafka only while the group
/// has no live member; otherwise the commit is refused and reported.
public final class DirectOffsets: OffsetAuthority, @unchecked Sendable {
    // @unchecked Sendable: the consumer is used under `lock` only.
    private let consumer: KafkaConsumer
    private let lock = NSLock()
    public init(consumer: KafkaConsumer) { self.consumer = consumer }

    public func committedOffset(_ tp: TopicPartition) throws -> (offset: Int64?, owned: Bool) {
        lock.lock()
        defer { lock.unlock() }
        let c = try consumer.committed([tp], timeout: .seconds(30))
        return (c[tp]?.offset, true)
    }

    public func commit(_ tp: TopicPartition, offset: Int64, metadata: String) throws -> Bool {
        lock.lock()
        defer { lock.unlock() }
        do {
            try consumer.commit([tp: (offset, metadata)])
            return true
        } catch let e as KafkaError where e.isGenerationMismatch {
            return false
        }
    }
}
