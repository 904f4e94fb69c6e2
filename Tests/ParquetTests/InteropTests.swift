import Foundation
import Parquet
import Testing
import TestSupport

/// Writes files with `ParquetWriter` and reads them back with pyarrow and DuckDB
/// (tools/parquet_check.py), comparing every value, the types and the statistics.
@Suite("Interop with pyarrow and DuckDB")
struct InteropTests {
    /// Writes `rows` rows whose values come from `value(row, column)`, returning every value written.
    static func write(
        path: String, schema: ParquetSchema, options: ParquetWriterOptions, rows: Int,
        keyValueMetadata: [(key: String, value: String)] = [], keep: Bool = true,
        value: (Int, Int) -> TestValue
    ) throws -> (summary: ParquetWriteSummary, expected: [ExpectedColumn], columns: [[TestValue]]) {
        let output = try ParquetFileOutput(path: path)
        let writer = try ParquetWriter(output: output, schema: schema, options: options)
        var expected = Array(repeating: ExpectedColumn(), count: schema.columns.count)
        var columns = Array(repeating: [TestValue](), count: keep ? schema.columns.count : 0)
        for row in 0..<rows {
            for c in 0..<schema.columns.count {
                let v = value(row, c)
                append(v, to: writer, column: c)
                expected[c].add(v)
                if keep { columns[c].append(v) }
            }
            try writer.endRow()
        }
        let summary = try writer.close(keyValueMetadata: keyValueMetadata)
        try output.sync()
        try output.close()
        return (summary, expected, columns)
    }

    static let mixedSchema = ParquetSchema(columns: [
        ParquetColumn(name: "id", type: .int64, nullable: false),
        ParquetColumn(name: "maybe_int", type: .int64, nullable: true),
        ParquetColumn(name: "i32", type: .int32, nullable: true),
        ParquetColumn(name: "name", type: .string, nullable: false),
        ParquetColumn(name: "note", type: .string, nullable: true),
        ParquetColumn(name: "ts", type: .timestampMicrosUTC, nullable: false),
        ParquetColumn(name: "flag", type: .boolean, nullable: true),
        ParquetColumn(name: "score", type: .double, nullable: true),
        ParquetColumn(name: "level", type: .string, nullable: false),
        ParquetColumn(name: "serial32", type: .int32, nullable: false),
    ])

    /// Strings that break naive writers: empty, multi-byte, canonically-equal-but-different bytes.
    static let trickyStrings: [[UInt8]] = [
        [],
        Array("plain ascii".utf8),
        Array("\u{E9}clair".utf8),  // precomposed é
        Array("e\u{301}clair".utf8),  // e + combining acute: equal as Swift String, different bytes
        Array("zebra".utf8),
        Array("中文字符 and emoji 🦀🚀".utf8),
        Array("\u{10FFFF}".utf8),
        [0x7F],
        Array("ÿ".utf8),
    ]

    static func mixedValue(_ row: Int, _ column: Int, _ rng: inout SplitMix64) -> TestValue {
        let extremes: [Int64] = [.min, .max, 0, -1, 1, .min + 1, .max - 1]
        let timestamps: [Int64] = [
            -2_208_988_800_000_000,  // 1900-01-01
            -1,  // 1969-12-31T23:59:59.999999Z
            0,
            4_102_444_800_000_000,  // 2100-01-01
            7_258_118_400_000_000,  // 2200-01-01
            -62_135_596_800_000_000,  // 0001-01-01
        ]
        switch column {
        case 0: return .int64(Int64(row))
        case 1:
            if row % 5 == 0 { return .null }
            return row % 3 == 0 ? .int64(extremes[row % extremes.count]) : .int64(Int64(bitPattern: rng.next()))
        case 2:
            if row % 4 == 1 { return .null }
            let picks: [Int32] = [.min, .max, 0, -7]
            return row % 2 == 0 ? .int32(picks[row % 4]) : .int32(Int32(truncatingIfNeeded: rng.next() % 1000))
        case 3:
            if row % 2 == 0 { return .string(trickyStrings[row % trickyStrings.count]) }
            return .string(Array("name-\(rng.next() % 100_000)-ü".utf8))
        case 4:
            if row % 3 == 0 { return .null }
            if row % 997 == 1 {
                // > 64 KiB, multi-byte, so pages hold a single huge value. Alternately the smallest
                // (starts with U+0001) and the largest (starts with U+10FFFF) value of the column,
                // so both string statistics get truncated.
                let unit = Array("long-é-中-🚀-".utf8)
                var s: [UInt8] = Array(((row / 997) % 2 == 0 ? "\u{1}" : "\u{10FFFF}z").utf8)
                while s.count < 70_000 + row { s += unit }
                return .string(s)
            }
            // Not the empty string here (column 3 has those), so the long strings can be the minimum.
            return .string(trickyStrings[1 + Int(rng.next() % UInt64(trickyStrings.count - 1))])
        case 5:
            return row % 2 == 0
                ? .timestamp(timestamps[row % timestamps.count]) : .timestamp(Int64(rng.next() % 10_000_000_000_000_000) - 5_000_000_000_000_000)
        case 6:
            if row % 6 == 5 { return .null }
            return .bool(rng.next() % 2 == 0)
        case 7:
            if row % 8 == 7 { return .null }
            let specials: [Double] = [-0.0, 0.0, .infinity, -.infinity, .leastNonzeroMagnitude, -1.5e300]
            return row % 5 == 0 ? .double(specials[row % specials.count]) : .double(Double(Int64(rng.next() % 2_000_001) - 1_000_000) / 7)
        case 8:
            let levels = ["DEBUG", "INFO", "WARN", "ERROR"]
            return .string(Array(levels[Int(rng.next() % 4)].utf8))
        default:
            return .int32(Int32(row % 100))
        }
    }

    @Test("mixed types, nulls, tricky strings, extremes, several row groups and dictionary fallback read back exactly")
    func mixedRoundTrip() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("mixed.parquet").path
            var options = ParquetWriterOptions()
            options.rowGroupMaxRows = 3_000
            options.dataPageMaxBytes = 16 * 1024
            options.dictionaryMaxBytes = 8 * 1024
            var rng = SplitMix64(seed: 7)
            let rows = 10_000
            let kv = [(key: "tidemark.topic", value: "logs-é"), (key: "tidemark.offsets", value: "100-10099")]
            let (summary, expected, columns) = try Self.write(
                path: path, schema: Self.mixedSchema, options: options, rows: rows, keyValueMetadata: kv
            ) { row, column in Self.mixedValue(row, column, &rng) }
            #expect(summary.rows == rows)
            #expect(summary.rowGroups == 4)
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.size] as? NSNumber)?.int64Value == summary.bytesWritten)

            let report = try check(path, dump: dir.appendingPathComponent("dump"))
            try expectSameValues(report, expected, Self.mixedSchema)

            // Types as the readers see them.
            let types = (report.pyarrow["schema"] as? [[String: Any]] ?? []).map { $0["type"] as? String ?? "" }
            #expect(types == ["int64", "int64", "int32", "string", "string", "timestamp[us, tz=UTC]", "bool", "double", "string", "int32"])
            let nullable = (report.pyarrow["schema"] as? [[String: Any]] ?? []).map { $0["nullable"] as? Bool ?? false }
            #expect(nullable == Self.mixedSchema.columns.map(\.nullable))
            let parquetSchema = report.pyarrow["parquet_schema"] as? [[String: Any]] ?? []
            #expect(parquetSchema[3]["converted_type"] as? String == "UTF8")
            #expect(parquetSchema[5]["converted_type"] as? String == "TIMESTAMP_MICROS")
            #expect((parquetSchema[5]["logical_type"] as? String ?? "").contains("isAdjustedToUTC=true"))
            #expect(report.duckdb["types"] as? [String] == [
                "BIGINT", "BIGINT", "INTEGER", "VARCHAR", "VARCHAR", "TIMESTAMP WITH TIME ZONE", "BOOLEAN", "DOUBLE", "VARCHAR", "INTEGER",
            ])
            #expect(report.pyarrow["created_by"] as? String == "tidemark version 0.1.0 (build dev)")
            let pyKV = report.pyarrow["key_value"] as? [String: String]
            #expect(pyKV?["tidemark.topic"] == "logs-é")
            #expect(pyKV?["tidemark.offsets"] == "100-10099")
            #expect((report.duckdb["key_value"] as? [String: String])?["tidemark.topic"] == "logs-é")
            #expect(report.duckdb["count"] as? Int == rows)

            // Statistics per row group, against min/max the test computes from what it wrote.
            var start = 0
            let groups = report.pyarrowRowGroups
            let meta = report.duckdb["metadata"] as? [[String: Any]] ?? []
            var sawTruncation = false
            #expect(groups.count == 4)
            for (groupIndex, group) in groups.enumerated() {
                let n = group["num_rows"] as? Int ?? 0
                let chunks = group["columns"] as? [[String: Any]] ?? []
                for (c, chunk) in chunks.enumerated() {
                    #expect(chunk["num_values"] as? Int == n, "num_values counts nulls")
                    let slice = columns[c][start..<start + n]
                    let stats = try #require(chunk["statistics"] as? [String: Any])
                    let nulls = slice.filter { $0 == .null }.count
                    #expect(stats["null_count"] as? Int == nulls, "null_count of \(Self.mixedSchema.columns[c].name)")
                    guard let (lo, hi) = expectedMinMax(slice) else { continue }
                    #expect(stats["has_min_max"] as? Bool == true, "\(Self.mixedSchema.columns[c].name) has min/max")
                    if c == 4, case .string(let loBytes) = lo, case .string(let hiBytes) = hi,
                        loBytes.count > 64 || hiBytes.count > 64
                    {
                        // Truncated string statistics must still bound the data.
                        let minStat = try #require(statBytes(stats["min"]))
                        let maxStat = try #require(statBytes(stats["max"]))
                        #expect(minStat.count <= 64 && loBytes.starts(with: minStat))
                        #expect(!bytesLess(maxStat, hiBytes) && maxStat.count <= 68)
                        #expect(String(validating: maxStat, as: UTF8.self) != nil)
                        // DuckDB sees the exactness flags (Statistics 7/8).
                        let duck = meta.first { ($0["row_group_id"] as? Int) == groupIndex && ($0["path"] as? String) == "note" }
                        #expect((duck?["max_is_exact"] as? Bool) == (hiBytes.count <= 64))
                        #expect((duck?["min_is_exact"] as? Bool) == (loBytes.count <= 64))
                        sawTruncation = true
                        continue
                    }
                    #expect(statMatches(stats["min"], lo), "min of \(Self.mixedSchema.columns[c].name) row group at \(start)")
                    #expect(statMatches(stats["max"], hi), "max of \(Self.mixedSchema.columns[c].name) row group at \(start)")
                }
                start += n
            }
            #expect(sawTruncation, "the long-string row groups exercise truncated statistics")

            // Dictionary fallback: the high-cardinality string column must hold dictionary and PLAIN data pages.
            let nameStats = meta.filter { $0["path"] as? String == "name" }.compactMap { $0["encoding_stats"] as? [String] }
            #expect(!nameStats.isEmpty)
            for stats in nameStats {
                #expect(stats.contains("DICTIONARY_PAGE:PLAIN:1"))
                #expect(stats.contains { $0.hasPrefix("DATA_PAGE:RLE_DICTIONARY:") })
                #expect(stats.contains { $0.hasPrefix("DATA_PAGE:PLAIN:") })
            }
            // Low-cardinality columns stay fully dictionary-encoded.
            for entry in meta where entry["path"] as? String == "level" {
                let stats = entry["encoding_stats"] as? [String] ?? []
                #expect(!stats.contains { $0.hasPrefix("DATA_PAGE:PLAIN:") })
            }
            // DuckDB's view of string statistics is byte order too: max of {"zebra", "éclair", …}.
            let levelMax = meta.filter { $0["path"] as? String == "level" }.compactMap { $0["max"] as? String }
            #expect(levelMax.allSatisfy { $0 == "WARN" })
        }
    }

    @Test("canonically equal strings with different bytes stay distinct (dictionary keyed on bytes)")
    func distinctByteSequences() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("nfc.parquet").path
            let schema = ParquetSchema(columns: [ParquetColumn(name: "s", type: .string, nullable: false)])
            let nfc = "\u{E9}", nfd = "e\u{301}"
            #expect(nfc == nfd)  // Swift String equality merges them; the file must not.
            let (_, expected, _) = try Self.write(path: path, schema: schema, options: .init(), rows: 100) { row, _ in
                .string(Array((row % 2 == 0 ? nfc : nfd).utf8))
            }
            let report = try check(path, dump: dir.appendingPathComponent("dump"))
            try expectSameValues(report, expected, schema)
            let stats = try #require((report.pyarrowRowGroups.first?["columns"] as? [[String: Any]])?.first?["statistics"] as? [String: Any])
            #expect(statBytes(stats["min"]) == Array(nfd.utf8))  // 0x65 < 0xC3
            #expect(statBytes(stats["max"]) == Array(nfc.utf8))
        }
    }

    @Test("0 rows and 1 row files are readable", arguments: [0, 1])
    func tinyFiles(rows: Int) throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("tiny.parquet").path
            var rng = SplitMix64(seed: 3)
            let (summary, expected, _) = try Self.write(
                path: path, schema: Self.mixedSchema, options: .init(), rows: rows
            ) { row, column in Self.mixedValue(row, column, &rng) }
            #expect(summary.rows == rows)
            let report = try check(path, dump: dir.appendingPathComponent("dump"))
            #expect(report.pyarrow["num_rows"] as? Int == rows)
            #expect(report.duckdb["count"] as? Int == rows)
            try expectSameValues(report, expected, Self.mixedSchema)
            let types = (report.pyarrow["schema"] as? [[String: Any]] ?? []).map { $0["type"] as? String ?? "" }
            #expect(types[5] == "timestamp[us, tz=UTC]")
        }
    }

    @Test("DELTA_BINARY_PACKED INT64 columns read back exactly: runs, wrapping extremes, nulls, every block edge",
          arguments: [1, 2, 31, 33, 127, 128, 129, 3_000])
    func deltaBinaryPacked(rows: Int) throws {
        let schema = ParquetSchema(columns: [
            ParquetColumn(name: "offset", type: .int64, nullable: false, dictionary: false, encoding: .deltaBinaryPacked),
            ParquetColumn(name: "wild", type: .int64, nullable: true, dictionary: false, encoding: .deltaBinaryPacked),
            ParquetColumn(name: "event", type: .timestampMicrosUTC, nullable: false, dictionary: false,
                          encoding: .deltaBinaryPacked),
            ParquetColumn(name: "constant", type: .timestampMicrosUTC, nullable: true, dictionary: false,
                          encoding: .deltaBinaryPacked),
            ParquetColumn(name: "fallback", type: .int64, nullable: false, encoding: .deltaBinaryPacked),
        ])
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("delta.parquet").path
            var options = ParquetWriterOptions()
            options.dataPageMaxRows = 200   // several pages, each with a partial last block
            options.dictionaryMaxBytes = 256   // "fallback" leaves its dictionary after 32 values
            var rng = SplitMix64(seed: 5)
            let extremes: [Int64] = [.min, .max, 0, -1, 1, .min + 1, .max - 1]
            var event: Int64 = 1_795_735_685_505_000
            let (_, expected, _) = try Self.write(path: path, schema: schema, options: options, rows: rows) { row, column in
                switch column {
                case 0: return .int64(1_000_000 + Int64(row))
                case 1:
                    if row % 7 == 3 { return .null }
                    return row % 2 == 0 ? .int64(extremes[row % extremes.count]) : .int64(Int64(bitPattern: rng.next()))
                case 2:
                    event += Int64(rng.next() % 4) * 1000 - (row % 50 == 0 ? 90_000 : 0)
                    return .timestamp(event)
                case 3: return row % 11 == 5 ? .null : .timestamp(-62_135_596_800_000_000)
                default: return .int64(Int64(row % 97) * 3 - 100)
                }
            }
            let report = try check(path, dump: dir.appendingPathComponent("dump"))
            try expectSameValues(report, expected, schema)
            let chunks = report.pyarrowRowGroups.first?["columns"] as? [[String: Any]] ?? []
            #expect(chunks.count == 5)
            for chunk in chunks.prefix(4) {   // "fallback" may keep its dictionary in small files
                #expect((chunk["encodings"] as? [String] ?? []).contains("DELTA_BINARY_PACKED"), "\(chunk)")
            }
        }
    }

    @Test("uncompressed files and disabled dictionaries read back exactly")
    func uncompressedPlain() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("plain.parquet").path
            var options = ParquetWriterOptions()
            options.compression = .uncompressed
            options.dictionaryEnabled = false
            options.dataPageMaxBytes = 4096
            var rng = SplitMix64(seed: 11)
            let (_, expected, _) = try Self.write(
                path: path, schema: Self.mixedSchema, options: options, rows: 2_000
            ) { row, column in Self.mixedValue(row, column, &rng) }
            let report = try check(path, dump: dir.appendingPathComponent("dump"))
            try expectSameValues(report, expected, Self.mixedSchema)
            let chunks = report.pyarrowRowGroups.first?["columns"] as? [[String: Any]] ?? []
            #expect(chunks.allSatisfy { $0["compression"] as? String == "UNCOMPRESSED" })
            #expect(chunks.allSatisfy { $0["has_dictionary_page"] as? Bool == false })
        }
    }

    @Test("1,000,000 log rows in several row groups read back exactly (ZSTD, default options)")
    func millionRows() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("million.parquet").path
            let schema = ParquetSchema(columns: [
                ParquetColumn(name: "serial", type: .int64, nullable: false),
                ParquetColumn(name: "event_time", type: .timestampMicrosUTC, nullable: false),
                ParquetColumn(name: "level", type: .string, nullable: false),
                ParquetColumn(name: "message", type: .string, nullable: true),
            ])
            var options = ParquetWriterOptions()
            options.rowGroupMaxBytes = 8 << 20
            let levels = ["DEBUG", "INFO", "WARN", "ERROR"].map { Array($0.utf8) }
            let rows = 1_000_000
            let (summary, expected, _) = try Self.write(
                path: path, schema: schema, options: options, rows: rows, keep: false
            ) { row, column in
                switch column {
                case 0: return .int64(Int64(row))
                case 1: return .timestamp(1_700_000_000_000_000 + Int64(row) * 1_000)
                case 2: return .string(levels[row & 3])
                default: return row % 10 == 9 ? .null : .string(Array("request \(row) served in \(row % 977) ms".utf8))
                }
            }
            #expect(summary.rows == rows)
            #expect(summary.rowGroups > 1)
            let report = try check(path, dump: dir.appendingPathComponent("dump"))
            #expect(report.pyarrow["num_rows"] as? Int == rows)
            #expect(report.pyarrow["num_row_groups"] as? Int == summary.rowGroups)
            try expectSameValues(report, expected, schema)
            // Footer reader agrees with pyarrow on the row groups.
            let metadata = try ParquetFooter.read(path: path)
            #expect(metadata.numRows == Int64(rows))
            #expect(metadata.rowGroups.map { Int($0.numRows) } == report.pyarrowRowGroups.map { $0["num_rows"] as? Int ?? -1 })
            let serialMax = metadata.rowGroups.compactMap { $0.columns[0].statistics?.maxInt64 }.max()
            #expect(serialMax == Int64(rows - 1))
        }
    }
}
