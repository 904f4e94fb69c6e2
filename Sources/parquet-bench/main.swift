// parquet-bench: encodes log records from a prepared input file with ParquetWriter and reports
// timing as one JSON line. Driven by bench/parquet_bench.py, which generates the rows, runs this
// binary and pyarrow on the same rows, and prints the comparison. Not a test.
//
// Input format (little endian), written by bench/parquet_bench.py:
//   "TMBENCH1", u64 rows, then 8 columns in order:
//   int64 column:  u64 byte length, values
//   int32 column:  u64 byte length, values
//   string column: u64 offsets byte length, int32 offsets (rows + 1), u64 data length, data
import Foundation
import Parquet

#if canImport(Glibc)
import Glibc
#endif

struct Arguments {
    var input = ""
    var output = ""
    var level: Int32 = 3
    var rowGroupMaxBytes: Int?
    var threads: Int?
    /// Encode the INT64 columns as etl-engine does (no dictionary, DELTA_BINARY_PACKED), for
    /// the end-to-end benchmark's encode limit; without it, the defaults pyarrow is compared with.
    var engineEncodings = false

    init() {
        var it = CommandLine.arguments.dropFirst().makeIterator()
        while let a = it.next() {
            switch a {
            case "--input": input = it.next() ?? ""
            case "--output": output = it.next() ?? ""
            case "--level": level = Int32(it.next() ?? "") ?? 3
            case "--row-group-max-bytes": rowGroupMaxBytes = Int(it.next() ?? "")
            case "--threads": threads = Int(it.next() ?? "")
            case "--engine-encodings": engineEncodings = true
            default:
                FileHandle.standardError.write(Data("unknown argument \(a)\n".utf8))
                exit(2)
            }
        }
        if input.isEmpty || output.isEmpty {
            FileHandle.standardError.write(Data(
                "usage: parquet-bench --input FILE --output FILE [--level N] [--threads N] [--row-group-max-bytes B] [--engine-encodings]\n".utf8))
            exit(2)
        }
    }
}

/// User + system CPU seconds of the whole process (all threads) so far.
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
        + Double(usage.ru_stime.tv_usec) / 1e6
}

/// Resident set size now, in KiB (from /proc/self/status VmRSS).
func currentRSSKiB() -> Int {
    statusKiB("VmRSS:")
}

func statusKiB(_ key: String) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
    for line in status.split(separator: "\n") where line.hasPrefix(key) {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? -1
    }
    return -1
}

/// Peak resident set size of this process image, in KiB (/proc/self/status VmHWM; unlike
/// getrusage's ru_maxrss it is not inherited across exec from the parent).
func peakRSSKiB() -> Int {
    statusKiB("VmHWM:")
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("parquet-bench: \(message)\n".utf8))
    exit(1)
}

enum Column {
    case int64(UnsafePointer<Int64>)
    case int32(UnsafePointer<Int32>)
    case string(offsets: UnsafePointer<Int32>, data: UnsafeRawPointer)
}

@inline(__always)
func appendString(_ writer: ParquetWriter, _ column: Column, _ row: Int, _ index: Int) {
    guard case .string(let offsets, let data) = column else { return }
    let start = Int(offsets[row])
    let end = Int(offsets[row + 1])
    writer.append(utf8: UnsafeRawBufferPointer(start: data + start, count: end - start), column: index)
}

func run() {
    let args = Arguments()
    guard let file = FileManager.default.contents(atPath: args.input) else { fail("cannot read \(args.input)") }
    let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: file.count, alignment: 16)
    _ = file.copyBytes(to: raw.bindMemory(to: UInt8.self))
    let base = UnsafeRawPointer(raw.baseAddress!)
    var cursor = 0
    func readU64() -> Int {
        let v = base.loadUnaligned(fromByteOffset: cursor, as: UInt64.self)
        cursor += 8
        return Int(UInt64(littleEndian: v))
    }
    guard String(decoding: UnsafeRawBufferPointer(start: base, count: 8), as: UTF8.self) == "TMBENCH1" else {
        fail("bad input magic")
    }
    cursor = 8
    let rows = readU64()

    func fixed<T>(_ type: T.Type) -> UnsafePointer<T> {
        let n = readU64()
        let p = (base + cursor).assumingMemoryBound(to: T.self)
        cursor += n
        return p
    }

    func string() -> Column {
        let offsets = fixed(Int32.self)
        let n = readU64()
        let data = base + cursor
        cursor += n
        return .string(offsets: offsets, data: data)
    }

    let serial = fixed(Int64.self)
    let eventTime = fixed(Int64.self)
    let level = string()
    let message = string()
    let topic = string()
    let partition = fixed(Int32.self)
    let offset = fixed(Int64.self)
    let ingestTime = fixed(Int64.self)
    guard cursor == file.count else { fail("input has \(file.count - cursor) trailing bytes") }

    // INT64 columns: PLAIN-or-dictionary by default, or as etl-engine writes them.
    func int64Column(_ name: String, _ type: ParquetColumnType) -> ParquetColumn {
        args.engineEncodings
            ? ParquetColumn(name: name, type: type, nullable: false, dictionary: false, encoding: .deltaBinaryPacked)
            : ParquetColumn(name: name, type: type, nullable: false)
    }
    let schema = ParquetSchema(columns: [
        int64Column("serial", .int64),
        int64Column("event_time", .timestampMicrosUTC),
        ParquetColumn(name: "level", type: .string, nullable: false),
        ParquetColumn(name: "message", type: .string, nullable: false),
        ParquetColumn(name: "kafka_topic", type: .string, nullable: false),
        ParquetColumn(name: "kafka_partition", type: .int32, nullable: false),
        int64Column("kafka_offset", .int64),
        int64Column("ingest_time", .timestampMicrosUTC),
    ])
    var options = ParquetWriterOptions()
    options.compression = .zstd(level: args.level)
    if let threads = args.threads {
        options.compressionThreads = threads
    }
    if let bytes = args.rowGroupMaxBytes {
        options.rowGroupMaxBytes = bytes
    }

    let rssBefore = currentRSSKiB()
    let cpuBefore = cpuSeconds()
    let started = ContinuousClock.now
    let summary: ParquetWriteSummary
    do {
        let output = try ParquetFileOutput(path: args.output)
        let writer = try ParquetWriter(output: output, schema: schema, options: options)
        for row in 0..<rows {
            writer.append(serial[row], column: 0)
            writer.appendTimestamp(micros: eventTime[row], column: 1)
            appendString(writer, level, row, 2)
            appendString(writer, message, row, 3)
            appendString(writer, topic, row, 4)
            writer.append(partition[row], column: 5)
            writer.append(offset[row], column: 6)
            writer.appendTimestamp(micros: ingestTime[row], column: 7)
            try writer.endRow()
        }
        summary = try writer.close(keyValueMetadata: [("tidemark.topic", "app-logs")])
        try output.close()
    } catch {
        fail("\(error)")
    }
    let elapsed = ContinuousClock.now - started
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let cpu = cpuSeconds() - cpuBefore
    print(
        "{\"rows\": \(summary.rows), \"row_groups\": \(summary.rowGroups), \"seconds\": \(seconds), \"cpu_seconds\": \(cpu), "
            + "\"output_bytes\": \(summary.bytesWritten), \"rss_before_kib\": \(rssBefore), \"peak_rss_kib\": \(peakRSSKiB())}")
}

run()
