import Foundation
import Parquet
import Testing
import TestSupport

/// Seeded random schemas, options and data, each read back by pyarrow and DuckDB.
@Suite("Randomized interop")
struct RandomizedInteropTests {
    static func randomValue(_ type: ParquetColumnType, _ rng: inout SplitMix64, cardinality: UInt64) -> TestValue {
        let pick = rng.next() % cardinality
        switch type {
        case .boolean: return .bool(pick % 2 == 0)
        case .int32: return .int32(Int32(truncatingIfNeeded: pick &* 2_654_435_761) &- (rng.next() % 2 == 0 ? 0 : Int32.max))
        case .int64: return .int64(Int64(bitPattern: pick &* 0x9E37_79B9_7F4A_7C15))
        case .double: return .double(Double(Int64(bitPattern: pick &* 31)) / 3)
        case .timestampMicrosUTC: return .timestamp(Int64(bitPattern: pick &* 1_000_003) % 9_000_000_000_000_000)
        case .string:
            let pieces = ["", "a", "é", "中", "🦀", "\u{0}", "zz", "e\u{301}"]
            var bytes: [UInt8] = []
            var x = pick
            for _ in 0..<Int(pick % 12) {
                bytes += Array(pieces[Int(x % UInt64(pieces.count))].utf8)
                x /= 3
                x += pick
            }
            return .string(bytes)
        }
    }

    @Test("random schemas, options and data round-trip through pyarrow and DuckDB", arguments: 0..<10)
    func randomRoundTrip(seed: UInt64) throws {
        var rng = SplitMix64(seed: 1_000 + seed)
        let types: [ParquetColumnType] = [.boolean, .int32, .int64, .double, .string, .timestampMicrosUTC]
        let columnCount = 1 + Int(rng.next() % 8)
        let schema = ParquetSchema(columns: (0..<columnCount).map { i in
            let type = types[Int(rng.next() % UInt64(types.count))]
            let delta = (type == .int64 || type == .timestampMicrosUTC) && rng.next() % 2 == 0
            return ParquetColumn(name: "c\(i)", type: type, nullable: rng.next() % 2 == 0,
                                 encoding: delta ? .deltaBinaryPacked : .plain)
        })
        var options = ParquetWriterOptions()
        options.compression = rng.next() % 3 == 0 ? .uncompressed : .zstd(level: Int32(rng.next() % 6) + 1)
        options.compressionThreads = Int(rng.next() % 4)
        options.dataPageMaxBytes = [64, 1024, 16 * 1024, 1 << 20][Int(rng.next() % 4)]
        options.dataPageMaxRows = [7, 100, 20_000][Int(rng.next() % 3)]
        options.dictionaryMaxBytes = [16, 512, 1 << 20][Int(rng.next() % 3)]
        options.dictionaryEnabled = rng.next() % 4 != 0
        options.rowGroupMaxRows = [nil, 333, 1_000][Int(rng.next() % 3)]
        options.rowGroupMaxBytes = [4 * 1024, 64 * 1024, 128 << 20][Int(rng.next() % 3)]
        options.statisticsTruncateLength = [4, 64][Int(rng.next() % 2)]
        let rows = [0, 1, 17, 2_500][Int(rng.next() % 4)]
        let cardinalities: [UInt64] = (0..<columnCount).map { _ in [1, 3, 50, 1 << 40][Int(rng.next() % 4)] }
        let nullRates: [UInt64] = (0..<columnCount).map { _ in [2, 5, 100][Int(rng.next() % 3)] }

        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("random.parquet").path
            let (summary, expected, columns) = try InteropTests.write(
                path: path, schema: schema, options: options, rows: rows
            ) { _, c in
                if schema.columns[c].nullable && rng.next() % nullRates[c] == 0 { return .null }
                return Self.randomValue(schema.columns[c].type, &rng, cardinality: cardinalities[c])
            }
            #expect(summary.rows == rows, "seed \(seed)")
            let report = try check(path, dump: dir.appendingPathComponent("dump"))
            #expect(report.pyarrow["num_rows"] as? Int == rows)
            #expect(report.duckdb["count"] as? Int == rows)
            try expectSameValues(report, expected, schema)
            // Null counts and exact (short-value) min/max per row group, against the test's own computation.
            var start = 0
            for group in report.pyarrowRowGroups {
                let n = group["num_rows"] as? Int ?? 0
                for (c, chunk) in (group["columns"] as? [[String: Any]] ?? []).enumerated() {
                    let slice = columns[c][start..<start + n]
                    let stats = try #require(chunk["statistics"] as? [String: Any])
                    #expect(stats["null_count"] as? Int == slice.filter { $0 == .null }.count, "seed \(seed) c\(c)")
                    guard let (lo, hi) = expectedMinMax(slice) else { continue }
                    if case .string(let a) = lo, a.count > options.statisticsTruncateLength { continue }
                    if case .string(let b) = hi, b.count > options.statisticsTruncateLength { continue }
                    #expect(statMatches(stats["min"], lo), "seed \(seed) c\(c) min")
                    #expect(statMatches(stats["max"], hi), "seed \(seed) c\(c) max")
                }
                start += n
            }
            #expect(start == rows)
        }
    }
}
