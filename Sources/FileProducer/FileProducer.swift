import KafkaSource
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Follows a log file into Kafka, exactly once across restarts (docs/producer.md).
///
/// Every file gets its own identity (``Checkpoint/fileID``, the `tidemark.fileid` header) when
/// it is first opened, stored in the checkpoint before any of its lines is sent. Start: loads
/// the checkpoint and reads the newest records of every target partition; for the
/// checkpointed file only, `lastEnd[p]` is the `tidemark.end` of the newest record carrying
/// its identity in partition p. Lines of that file are sent only if
/// `end > max(checkpoint, lastEnd[p])` (lines up to the checkpoint are not even read again);
/// every other file (opened later, or the same file read again after a truncation) has a new
/// identity that no record can carry, so all its lines are sent. Every record carries
/// ``SourceHeaders``. Every `checkpointLines` lines or `checkpointInterval`, on a file switch,
/// when a fingerprint is fixed, and at exit, the producer flushes (waits for every
/// acknowledgement) and only then writes the checkpoint.
///
/// Used from one thread (blocking calls; run it on a thread of its own, not in the Swift
/// concurrency pool). Not `Sendable`.
public final class FileProducer {
    private let options: FileProducerOptions
    private let logger: Logger
    private let store: CheckpointStore
    private let producer: KafkaProducer
    private let partitions: [Int32]
    private let partitionCount: Int
    /// File identity (or `fp:` + fingerprint for records without `tidemark.fileid`) → partition →
    /// end offset of the newest record from that file at start. Used once, for the resumed
    /// file, then emptied.
    private var lastEnd: [String: [Int32: UInt64]] = [:]
    private var summary = FileProducerSummary()
    /// The current file's `tidemark.file` header value.
    private var fileHeader: [UInt8] = []
    /// The current file's `tidemark.fileid` header value.
    private var fileIDHeader: [UInt8] = []
    /// `lastEnd` of the current file, per partition (only ever non-empty for the resumed file).
    private var fileLastEnd: [Int32: UInt64] = [:]
    /// The identity `fileLastEnd` belongs to.
    private var fileLastEndID: String?
    /// Lines skipped by the resume rule since the last one sent (for one log line per resume).
    private var resumeSkipped = 0

    /// Opens the state directory (taking its lock) and connects to Kafka; sends nothing yet.
    /// - Throws: ``FileProducerError`` naming the path or the Kafka operation that failed.
    public init(options: FileProducerOptions, logger: Logger) throws(FileProducerError) {
        self.options = options
        self.logger = logger
        guard options.maxLineBytes > 0 else { throw .invalidOption("--max-line-bytes must be positive") }
        // Fail fast, before connecting, on a file that exists but may not be read.
        let probe = open(options.file, O_RDONLY | O_CLOEXEC)
        if probe >= 0 {
            Glibc.close(probe)
        } else if errno != ENOENT {
            throw .fromErrno(errno, path: options.file, operation: "open")
        }
        store = try CheckpointStore(directory: options.stateDirectory)
        var props = ["compression.type": "zstd", "linger.ms": "20",
                     "message.max.bytes": "\(max(1_000_000, options.maxLineBytes + 65_536))"]
        for (k, v) in options.kafkaProperties { props[k] = v }
        do {
            producer = try KafkaProducer(bootstrapServers: options.brokers, properties: props, logger: logger)
        } catch let error as KafkaError {
            throw .kafka(operation: "create producer", path: nil, offset: nil, underlying: error)
        } catch {
            throw .invalidOption("\(error)")
        }
        do {
            partitionCount = try producer.partitionCount(topic: options.topic, timeout: options.kafkaTimeout)
        } catch let error as KafkaError {
            throw .kafka(operation: "read metadata of \(options.topic)", path: nil, offset: nil, underlying: error)
        } catch {
            throw .invalidOption("\(error)")
        }
        switch options.partitioning {
        case .fixed(let p):
            guard p >= 0 && Int(p) < partitionCount else {
                throw .invalidOption("--partition \(p): topic \(options.topic) has \(partitionCount) partitions")
            }
            partitions = [p]
        case .keySerial:
            partitions = (0..<Int32(partitionCount)).map { $0 }
        }
    }

    deinit { producer.close() }

    /// Follows the file until `stop` is requested or the exit mode says so, then flushes,
    /// checkpoints and returns.
    /// - Throws: ``FileProducerError``: `kafka` (delivery or flush failed; nothing after the last
    ///   checkpoint is lost, a restart resends what Kafka does not hold), `permissionDenied`, `io`.
    public func run(stop: StopFlag) throws(FileProducerError) -> FileProducerSummary {
        let checkpoint = try store.load()
        if let checkpoint {
            logger.info("checkpoint loaded", metadata: [
                "file.path": "\(checkpoint.path)", "file.offset": "\(checkpoint.offset)", "file.line": "\(checkpoint.line)",
            ])
        }
        try readPartitionTails()
        // A version-1 checkpoint names no file identity: that file's records are known by fingerprint.
        let legacyKey = checkpoint.flatMap { $0.fileID == nil ? $0.fingerprint.map { "fp:" + $0 } : nil }
        let tailer = FileTailer(path: options.file, resume: checkpoint, maxLineBytes: options.maxLineBytes,
                                fingerprintGrace: options.fingerprintGrace, startFrom: options.startFrom,
                                siblings: SiblingRule(globs: options.rotatedGlobs), logger: logger)
        tailer.finalizeShortFiles = options.exitMode == .atEOF
        var pending = 0
        var pendingSince: ContinuousClock.Instant?
        var lastActivity = ContinuousClock.now
        var loggedMissing = false

        while !stop.isRequested {
            let event = try tailer.next()
            switch event {
            case .line(let line):
                lastActivity = .now
                loggedMissing = false
                try send(line)
                pending += 1
                if pendingSince == nil { pendingSince = .now }
            case .tooLong(let line):
                lastActivity = .now
                summary.tooLong += 1
                logger.warning("line longer than --max-line-bytes not sent", metadata: [
                    "file.path": "\(line.path)", "file.offset": "\(line.start)", "file.line": "\(line.number)",
                    "line.bytes": "\(line.end - line.start)",
                ])
                try store.appendSkipped([
                    "path": line.path, "file": line.fingerprint, "offset": "\(line.start)", "end": "\(line.end)",
                    "line": "\(line.number)", "reason": "longer than \(options.maxLineBytes) bytes",
                ])
                pending += 1
                if pendingSince == nil { pendingSince = .now }
            case .position(let position, let change):
                lastActivity = .now
                if change == .opened || change == .resumed { summary.files += 1 }
                fileHeader = Array((position.fingerprint ?? "").utf8)
                fileIDHeader = Array((position.fileID ?? "").utf8)
                if change == .resumed {
                    // What Kafka holds of the resumed file, by its identity (and, after an
                    // upgrade from a version-1 checkpoint, by its fingerprint). Used for this
                    // file only: no later file can carry its identity.
                    fileLastEnd = position.fileID.flatMap { lastEnd[$0] } ?? [:]
                    if let legacyKey, let old = lastEnd[legacyKey] {
                        fileLastEnd.merge(old) { max($0, $1) }
                    }
                    fileLastEndID = position.fileID
                    lastEnd = [:]
                } else if position.fileID != fileLastEndID {
                    fileLastEnd = [:]
                    fileLastEndID = nil
                    lastEnd = [:]
                }
                if change == .resumed && !fileLastEnd.isEmpty {
                    logger.info("records of this file already in Kafka", metadata: [
                        "file.path": "\(position.path)",
                        "last_end": "\(fileLastEnd.sorted { $0.key < $1.key }.map { "p\($0.key)=\($0.value)" }.joined(separator: ","))",
                    ])
                }
                try flushAndCheckpoint(position)
                pending = 0
                pendingSince = nil
            case .idle(let missing):
                if missing && !loggedMissing {
                    logger.notice("waiting for \(options.file) to appear")
                    loggedMissing = true
                }
                if pendingSince.map({ $0.duration(to: .now) >= options.checkpointInterval }) ?? false,
                   let position = tailer.position {
                    try flushAndCheckpoint(position)
                    pending = 0
                    pendingSince = nil
                    // The flush may have waited long for the broker (an outage): the file may have
                    // changed meanwhile (grown, rotated, copytruncated), so look at it again before
                    // deciding that the producer is idle. (Found by the crash suite: a flush that
                    // outlasted --until-idle across a broker outage exited at once, and a
                    // copytruncate made during the outage was never read: 411 lines lost.)
                    lastActivity = .now
                    continue
                }
                switch options.exitMode {
                case .never: break
                case .atEOF:
                    if tailer.atEnd { return try finish(tailer) }
                case .idle(let limit):
                    if lastActivity.duration(to: .now) >= limit { return try finish(tailer) }
                }
                sleep(options.pollInterval)
                continue
            }
            if pending >= options.checkpointLines
                || (pendingSince.map { $0.duration(to: .now) >= options.checkpointInterval } ?? false),
                let position = tailer.position {
                try flushAndCheckpoint(position)
                pending = 0
                pendingSince = nil
            }
        }
        logger.notice("stop requested: flushing and checkpointing")
        return try finish(tailer)
    }

    /// Sends `line` to its partition unless the resume rule says Kafka already holds it.
    private func send(_ line: TailedLine) throws(FileProducerError) {
        let key: [UInt8]?
        let partition: Int32
        switch options.partitioning {
        case .fixed(let p):
            key = nil
            partition = p
        case .keySerial:
            let k = KafkaPartitioner.serialKey(of: line.bytes)
            key = k
            partition = KafkaPartitioner.partition(forKey: k, partitionCount: partitionCount)
        }
        // The resume rule; lines at or before the checkpoint were not even read again.
        if line.end <= fileLastEnd[partition] ?? 0 {
            summary.alreadyInKafka += 1
            resumeSkipped += 1
            return
        }
        if resumeSkipped > 0 {
            logger.notice("resume: lines beyond the checkpoint were already in Kafka, not sent again", metadata: [
                "lines": "\(resumeSkipped)", "file.path": "\(line.path)", "next.offset": "\(line.start)",
            ])
            resumeSkipped = 0
        }
        do {
            try producer.send(topic: options.topic, partition: partition, key: key, value: line.bytes,
                              headers: SourceHeaders.make(fileBytes: fileHeader, fileIDBytes: fileIDHeader, line: line))
        } catch {
            throw .kafka(operation: "send", path: line.path, offset: line.start, underlying: kafkaError(error))
        }
        summary.sent += 1
    }

    private func finish(_ tailer: FileTailer) throws(FileProducerError) -> FileProducerSummary {
        if let position = tailer.position { try flushAndCheckpoint(position) }
        producer.close()
        return summary
    }

    private func flushAndCheckpoint(_ position: Checkpoint) throws(FileProducerError) {
        do {
            try producer.flush(timeout: options.kafkaTimeout)
        } catch {
            throw .kafka(operation: "flush", path: position.path, offset: position.offset, underlying: kafkaError(error))
        }
        if summary.checkpoint == position { return }
        try store.save(position)
        summary.checkpoint = position
        summary.checkpoints += 1
    }

    /// Reads the newest records of every target partition and records, per file identity
    /// (`fp:` + fingerprint for records without one), the `tidemark.end` of the newest record
    /// in each partition.
    private func readPartitionTails() throws(FileProducerError) {
        for p in partitions {
            let records: [KafkaMessage]
            do {
                records = try producer.lastMessages(topic: options.topic, partition: p, count: options.tailRecords,
                                                    timeout: options.kafkaTimeout)
            } catch {
                throw .kafka(operation: "read the last records of \(options.topic)/\(p)", path: nil, offset: nil,
                             underlying: kafkaError(error))
            }
            // The newest record that came from a given file wins (records are in offset order).
            for record in records {
                guard let source = SourceHeaders.source(of: record.headers) else { continue }
                lastEnd[source.fileID ?? "fp:" + source.fingerprint, default: [:]][p] = source.end
            }
        }
    }

    /// KafkaSource's producer throws ``KafkaError`` only; anything else is wrapped.
    private func kafkaError(_ error: any Error) -> KafkaError {
        error as? KafkaError ?? KafkaError(code: .fail, message: "\(error)", operation: "produce")
    }

    private func sleep(_ d: Duration) {
        let (s, atto) = d.components
        var request = timespec(tv_sec: Int(s), tv_nsec: Int(atto / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}
