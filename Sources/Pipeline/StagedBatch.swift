import Crypto
import Foundation
import KafkaSource
import Parquet

#if canImport(Glibc)
import Glibc
#endif

/// Forwards Parquet bytes to a file while hashing them, so the SHA-256 and size are known the
/// moment the file is closed (no second read).
final class HashingOutput: ParquetOutput {
    let file: ParquetFileOutput
    private(set) var hasher = SHA256()
    private(set) var size: Int64 = 0

    init(path: String) throws {
        file = try ParquetFileOutput(path: path, bufferSize: 64 << 10)  // one per open batch: kept small (pages arrive in large writes)
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        hasher.update(bufferPointer: bytes)
        size += Int64(bytes.count)
        try file.write(bytes)
    }

    var hexDigest: String { hasher.finalize().map { String(format: "%02x", $0) }.joined() }
}

/// Errors while writing a batch into the staging directory, naming the file.
public struct StagingError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var message: String
    public var description: String { "staging \(path): \(message)" }
}

/// One batch being written into the staging directory: good records into a Parquet file,
/// rejected records into a JSON-lines dead-letter file, both hashed while written.
///
/// Files are written under temporary names (`*.tmp`) and only get their final names in
/// ``seal(keyValueMetadata:)`` after fsync; a crash leaves only `.tmp` files, which startup
/// removes (no manifest row refers to them).
final class StagedBatchWriter {
    let topic: String
    let partition: Int32
    let startOffset: Int64
    let startTimestampMillis: Int64?
    private(set) var endOffset: Int64
    private(set) var goodCount: Int64 = 0
    private(set) var rejectedCount: Int64 = 0
    /// Uncompressed input bytes (message values), for the max_bytes cut.
    private(set) var inputBytes: Int = 0
    let openedAt: ContinuousClock.Instant
    let directory: String
    let parquetPath: String
    let rejectedPath: String
    private let output: HashingOutput
    private let writer: ParquetWriter
    private var rejectedFD: Int32 = -1
    private var rejectedHasher = SHA256()
    private var rejectedSize: Int64 = 0
    private let topicBytes: [UInt8]
    /// The columns of this batch's rows (one schema per object).
    let layout: OutputLayout

    init(directory: String, topic: String, partition: Int32, startOffset: Int64, startTimestampMillis: Int64?,
         options: ParquetWriterOptions, shared: ParquetWriterScratch? = nil, layout: OutputLayout = .seed) throws {
        self.layout = layout
        self.topic = topic
        self.partition = partition
        self.startOffset = startOffset
        self.startTimestampMillis = startTimestampMillis
        self.endOffset = startOffset - 1
        self.directory = directory
        let base = "\(directory)/\(topic)+\(partition)+\(KeyLayout.offset20(startOffset))"
        parquetPath = base + ".parquet"
        rejectedPath = base + ".rejected.jsonl"
        openedAt = .now
        topicBytes = Array(topic.utf8)
        unlink(parquetPath + ".tmp")
        do {
            output = try HashingOutput(path: parquetPath + ".tmp")
            writer = try ParquetWriter(output: output, schema: layout.schema, options: options, shared: shared)
        } catch {
            throw StagingError(path: parquetPath + ".tmp", message: "\(error)")
        }
    }

    /// Records added (good + rejected). Offsets are not dense, so this can be less than the
    /// range's span.
    var recordCount: Int64 { goodCount + rejectedCount }

    /// Extends the range over offsets after the last record that hold no record the consumer
    /// returns (transaction markers, aborted or compacted records), up to `offset`, so the next
    /// batch of the chain can start at `offset + 1`.
    func coverThrough(_ offset: Int64) {
        precondition(offset >= endOffset, "a batch's range only grows")
        endOffset = offset
    }

    /// Adds one Kafka record: parsed into a row, or written to the dead-letter file with its reason.
    func add(_ message: borrowing KafkaMessageView, parser: LogRecordParser, ingestMicros: Int64) throws {
        try message.withValue { value in
            let parsed: Result<ParsedRecord, RejectReason>
            switch parser.parse(value) {
            case .success(let r): parsed = .success(ParsedRecord(content: .seed(r), eventTimeMicros: r.eventTimeMicros))
            case .failure(let e): parsed = .failure(e)
            }
            try add(message, value: value, parsed: parsed, ingestMicros: ingestMicros)
        }
    }

    /// Adds one Kafka record with the configured parser: parses it and calls
    /// ``add(_:value:parsed:ingestMicros:)``.
    func add(_ message: borrowing KafkaMessageView, parser: RecordParser, ingestMicros: Int64) throws {
        try message.withValue { value in
            try add(message, value: value, parsed: parser.parse(value), ingestMicros: ingestMicros)
        }
    }

    /// Adds one Kafka record already parsed (by ``RecordParser/parse(_:)``, from `value`, the
    /// message's value as `message.withValue` passes it): a row in this batch's layout, or a
    /// dead-letter line with the reason.
    func add(_ message: borrowing KafkaMessageView, value: UnsafeRawBufferPointer, parsed: Result<ParsedRecord, RejectReason>,
             ingestMicros: Int64) throws {
        let offset = message.offset
        precondition(offset > endOffset, "offsets must increase within a batch")
        let ts = message.timestamp.milliseconds
        switch parsed {
        case .success(let record):
            switch record.content {
            case .seed(let r):
                writer.append(r.serial, column: OutputSchema.serial)
                writer.appendTimestamp(micros: r.eventTimeMicros, column: OutputSchema.eventTime)
                writer.append(r.level, column: OutputSchema.level)
                if let range = r.messageRange {
                    writer.append(utf8: UnsafeRawBufferPointer(rebasing: value[range]), column: OutputSchema.message)
                } else {
                    writer.append(r.messageText ?? "", column: OutputSchema.message)
                }
                if let a = r.attributes { writer.append(a, column: OutputSchema.attributes) } else {
                    writer.appendNull(column: OutputSchema.attributes)
                }
            case .fields(let values, let attributes):
                for (column, v) in values.enumerated() { append(v, column: column, value: value) }
                if let column = layout.attributesColumn {
                    if let attributes { attributes.withUnsafeBytes { writer.append(utf8: $0, column: column) } } else {
                        writer.appendNull(column: column)
                    }
                }
            case .raw(let range):
                writer.append(utf8: UnsafeRawBufferPointer(rebasing: value[range]), column: 0)
            }
            let c = layout.ingestColumn
            writer.appendTimestamp(micros: ingestMicros, column: c)
            topicBytes.withUnsafeBytes { writer.append(utf8: $0, column: c + 1) }
            writer.append(partition, column: c + 2)
            writer.append(offset, column: c + 3)
            if let ts { writer.appendTimestamp(micros: ts * 1000, column: c + 4) } else {
                writer.appendNull(column: c + 4)
            }
            if let column = layout.keyColumn {
                if let key = message.withKey({ $0.map { KafkaKeyText.text($0) } }) { writer.append(key, column: column) } else {
                    writer.appendNull(column: column)
                }
            }
            if let column = layout.headersColumn {
                if let headers = Self.headersJSON(message) { writer.append(headers, column: column) } else {
                    writer.appendNull(column: column)
                }
            }
            try writer.endRow()
            goodCount += 1
        case .failure(let reason):
            try writeRejected(value, offset: offset, timestampMillis: ts, reason: reason.description)
            rejectedCount += 1
        }
        endOffset = offset
        inputBytes += value.count
    }

    @inline(__always) private func append(_ v: FieldValue, column: Int, value: UnsafeRawBufferPointer) {
        switch v {
        case .null: writer.appendNull(column: column)
        case .int64(let x): writer.append(x, column: column)
        case .double(let x): writer.append(x, column: column)
        case .bool(let x): writer.append(x, column: column)
        case .timestamp(let x): writer.appendTimestamp(micros: x, column: column)
        case .slice(let r): writer.append(utf8: UnsafeRawBufferPointer(rebasing: value[r]), column: column)
        case .text(let s): writer.append(s, column: column)
        }
    }

    /// `kafka_headers`: a JSON object of the headers, values by the ``KafkaKeyText`` rule (text,
    /// or `base64:`...), a header without a value as null; a name given twice keeps its last
    /// value. Nil when the record has no headers.
    static func headersJSON(_ message: borrowing KafkaMessageView) -> String? {
        var pairs: [(String, String?)] = []
        message.forEachHeader { name, value in
            let text = value.map { KafkaKeyText.text($0) }
            if let i = pairs.firstIndex(where: { $0.0 == name }) { pairs[i].1 = text } else { pairs.append((name, text)) }
        }
        guard !pairs.isEmpty else { return nil }
        var out: [UInt8] = [UInt8(ascii: "{")]
        for (i, (name, text)) in pairs.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONText.appendString(name, to: &out)
            out.append(UInt8(ascii: ":"))
            if let text { JSONText.appendString(text, to: &out) } else { out += Array("null".utf8) }
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// One JSON object per rejected record: topic, partition, offset, kafka_timestamp_ms,
    /// reason, raw_base64 (the exact bytes), and raw_text when the bytes are valid UTF-8.
    private func writeRejected(_ raw: UnsafeRawBufferPointer, offset: Int64, timestampMillis: Int64?, reason: String) throws {
        if rejectedFD < 0 {
            unlink(rejectedPath + ".tmp")
            rejectedFD = open(rejectedPath + ".tmp", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
            guard rejectedFD >= 0 else {
                throw StagingError(path: rejectedPath + ".tmp", message: String(cString: strerror(errno)))
            }
        }
        var object: [String: Any] = [
            "topic": topic, "partition": Int(partition), "offset": offset, "reason": reason,
            "raw_base64": Data(raw).base64EncodedString(),
        ]
        if let ts = timestampMillis { object["kafka_timestamp_ms"] = ts }
        if let text = String(validating: raw, as: UTF8.self) { object["raw_text"] = text }
        var line = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        line.append(0x0A)
        rejectedHasher.update(data: line)
        rejectedSize += Int64(line.count)
        try line.withUnsafeBytes { try writeAll(rejectedFD, $0, path: rejectedPath + ".tmp") }
    }

    /// The facts of a sealed batch.
    struct Sealed {
        var parquetPath: String
        var sha256: String
        var size: Int64
        var rejectedPath: String?
        var rejectedSHA256: String?
        var rejectedSize: Int64?
        var rows: Int
    }

    /// Finishes both files: footer with `keyValueMetadata`, fsync, rename to the final names,
    /// fsync of the directory. Only then may the manifest say STAGED.
    func seal(keyValueMetadata: [(key: String, value: String)]) throws -> Sealed {
        let summary: ParquetWriteSummary
        do {
            summary = try writer.close(keyValueMetadata: keyValueMetadata)
            try output.file.sync()
            try output.file.close()
        } catch {
            throw StagingError(path: parquetPath + ".tmp", message: "\(error)")
        }
        try renameDurably(parquetPath + ".tmp", parquetPath)
        var sealed = Sealed(parquetPath: parquetPath, sha256: output.hexDigest, size: output.size,
                            rows: summary.rows)
        if rejectedFD >= 0 {
            guard fsync(rejectedFD) == 0 else {
                throw StagingError(path: rejectedPath + ".tmp", message: "fsync: \(String(cString: strerror(errno)))")
            }
            close(rejectedFD)
            rejectedFD = -1
            try renameDurably(rejectedPath + ".tmp", rejectedPath)
            sealed.rejectedPath = rejectedPath
            sealed.rejectedSHA256 = rejectedHasher.finalize().map { String(format: "%02x", $0) }.joined()
            sealed.rejectedSize = rejectedSize
        }
        try fsyncDirectory(directory)
        return sealed
    }

    /// Drops the batch: closes and removes its temporary files.
    func discard() {
        try? output.file.close()
        unlink(parquetPath + ".tmp")
        if rejectedFD >= 0 { close(rejectedFD) }
        unlink(rejectedPath + ".tmp")
    }

    private func renameDurably(_ from: String, _ to: String) throws {
        guard rename(from, to) == 0 else {
            throw StagingError(path: to, message: "rename from \(from): \(String(cString: strerror(errno)))")
        }
    }
}

func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    var done = 0
    while done < bytes.count {
        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 {
            if errno == EINTR { continue }
            throw StagingError(path: path, message: "write: \(String(cString: strerror(errno)))")
        }
        done += n
    }
}

func fsyncDirectory(_ path: String) throws {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw StagingError(path: path, message: "open directory: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    guard fsync(fd) == 0 else { throw StagingError(path: path, message: "fsync directory: \(String(cString: strerror(errno)))") }
}

/// SHA-256 (lower-case hex) and size of a file, streamed in 1 MiB blocks.
func hashFile(_ path: String) throws -> (sha256: String, size: Int64)? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 {
        if errno == ENOENT { return nil }
        throw StagingError(path: path, message: "open: \(String(cString: strerror(errno)))")
    }
    defer { close(fd) }
    var hasher = SHA256()
    var size: Int64 = 0
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw StagingError(path: path, message: "read: \(String(cString: strerror(errno)))")
        }
        if n == 0 { break }
        buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        size += Int64(n)
    }
    return (hasher.finalize().map { String(format: "%02x", $0) }.joined(), size)
}
