import Foundation
import Parquet
import Testing
import TestSupport

/// Deterministic PRNG for reproducible test data (SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One value as a test wrote it.
enum TestValue: Equatable {
    case null
    case int32(Int32)
    case int64(Int64)
    case double(Double)
    case bool(Bool)
    case string([UInt8])
    case timestamp(Int64)
}

/// The canonical dump of one column (format in tools/parquet_check.py), built from what the test wrote.
struct ExpectedColumn {
    var valid: [UInt8] = []
    var values: [UInt8] = []
    var lengths: [UInt8] = []

    private static func le<T: FixedWidthInteger>(_ v: T, _ out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    mutating func add(_ value: TestValue) {
        if case .null = value {
            valid.append(0)
            return
        }
        valid.append(1)
        switch value {
        case .null: break
        case .int32(let v): Self.le(v, &values)
        case .int64(let v), .timestamp(let v): Self.le(v, &values)
        case .double(let v): Self.le(v.bitPattern, &values)
        case .bool(let v): values.append(v ? 1 : 0)
        case .string(let b):
            Self.le(UInt32(b.count), &lengths)
            values.append(contentsOf: b)
        }
    }
}

/// Appends one value to the writer.
func append(_ value: TestValue, to writer: ParquetWriter, column: Int) {
    switch value {
    case .null: writer.appendNull(column: column)
    case .int32(let v): writer.append(v, column: column)
    case .int64(let v): writer.append(v, column: column)
    case .double(let v): writer.append(v, column: column)
    case .bool(let v): writer.append(v, column: column)
    case .string(let b): b.withUnsafeBytes { writer.append(utf8: $0, column: column) }
    case .timestamp(let v): writer.appendTimestamp(micros: v, column: column)
    }
}

/// What `tools/parquet_check.py read` reported.
struct CheckReport {
    let json: [String: Any]
    let dumpDirectory: URL?

    var pyarrow: [String: Any] { json["pyarrow"] as? [String: Any] ?? [:] }
    var duckdb: [String: Any] { json["duckdb"] as? [String: Any] ?? [:] }

    /// Reads a dump file written by the tool (empty when absent, e.g. `lengths` of an int column).
    func dump(_ reader: String, _ column: Int, _ kind: String) throws -> [UInt8] {
        let url = try #require(dumpDirectory).appendingPathComponent("\(reader).\(column).\(kind)")
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        return [UInt8](try Data(contentsOf: url))
    }

    var pyarrowRowGroups: [[String: Any]] { pyarrow["row_groups"] as? [[String: Any]] ?? [] }
}

/// Runs tools/parquet_check.py on a file (pyarrow and DuckDB; with `dump`, polars too),
/// optionally dumping values.
func check(_ path: String, dump: URL? = nil, sample: [String]? = nil) throws -> CheckReport {
    var args = sample ?? ["read", path]
    if let dump {
        args += ["--dump", dump.path]
    }
    let result = try runPythonTool("parquet_check.py", args, timeout: 300)
    try #require(result.status == 0, "parquet_check.py failed: \(result.stderr)")
    let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
    return CheckReport(json: try #require(object as? [String: Any]), dumpDirectory: dump)
}

/// Compares every column as read by pyarrow, DuckDB and polars with what was written, byte for byte.
func expectSameValues(_ report: CheckReport, _ expected: [ExpectedColumn], _ schema: ParquetSchema) throws {
    for reader in ["pyarrow", "duckdb", "polars"] {
        for (i, column) in expected.enumerated() {
            let name = schema.columns[i].name
            let valid = try report.dump(reader, i, "valid")
            #expect(valid.count == column.valid.count, "\(reader) \(name): row count")
            if let row = zip(valid, column.valid).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                Issue.record("\(reader) \(name): null mask differs first at row \(row)")
            }
            expectSameBytes(try report.dump(reader, i, "values"), column.values, "\(reader) \(name): values")
            expectSameBytes(try report.dump(reader, i, "lengths"), column.lengths, "\(reader) \(name): string lengths")
        }
    }
}

/// Records an issue naming the first differing byte. Not `#expect(a == b)`: on arrays of a
/// million bytes that differ, swift-testing would diff them element by element, for minutes.
func expectSameBytes(_ got: [UInt8], _ want: [UInt8], _ what: String) {
    guard got != want else { return }
    let at = zip(got, want).enumerated().first { $0.element.0 != $0.element.1 }?.offset
    Issue.record("\(what) differ (\(got.count) vs \(want.count) bytes, first at byte \(at.map(String.init) ?? "end"))")
}

/// Parquet order on bytes: unsigned lexicographic.
func bytesLess(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    a.lexicographicallyPrecedes(b)
}

/// Expected (min, max) of non-null values in Parquet's sort order, computed by the test.
func expectedMinMax(_ values: ArraySlice<TestValue>) -> (TestValue, TestValue)? {
    var lo: TestValue?
    var hi: TestValue?
    func less(_ a: TestValue, _ b: TestValue) -> Bool {
        switch (a, b) {
        case (.int32(let x), .int32(let y)): return x < y
        case (.int64(let x), .int64(let y)), (.timestamp(let x), .timestamp(let y)): return x < y
        case (.double(let x), .double(let y)): return x < y
        case (.bool(let x), .bool(let y)): return !x && y
        case (.string(let x), .string(let y)): return bytesLess(x, y)
        default: return false
        }
    }
    for v in values {
        if case .null = v { continue }
        if case .double(let d) = v, d.isNaN { continue }
        if lo == nil || less(v, lo!) { lo = v }
        if hi == nil || less(hi!, v) { hi = v }
    }
    guard let lo, let hi else { return nil }
    return (lo, hi)
}

/// A pyarrow statistics value (`{"int": "…"}`, `{"hex": "…"}`, `{"bool": …}`, `{"double": "0x…"}`) as a TestValue-comparable form.
func statBytes(_ any: Any?) -> [UInt8]? {
    guard let d = any as? [String: Any], let hex = d["hex"] as? String else { return nil }
    var out: [UInt8] = []
    var chars = Array(hex.utf8)
    while chars.count >= 2 {
        out.append(UInt8(String(decoding: chars[0..<2], as: UTF8.self), radix: 16)!)
        chars.removeFirst(2)
    }
    return out
}

func statMatches(_ any: Any?, _ value: TestValue) -> Bool {
    guard let d = any as? [String: Any] else { return false }
    switch value {
    case .int32(let v): return (d["int"] as? String).flatMap { Int64($0) } == Int64(v)
    case .int64(let v), .timestamp(let v): return (d["int"] as? String).flatMap { Int64($0) } == v
    case .bool(let v): return (d["bool"] as? Bool) == v
    case .double(let v):
        guard let s = d["double"] as? String, let x = Double(s) else { return false }
        return x == v
    case .string(let b): return statBytes(d) == b
    case .null: return false
    }
}
