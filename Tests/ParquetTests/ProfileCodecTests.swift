import Foundation
@testable import Parquet
import Testing
import TestSupport

/// The writer's profiles (modern, compatible) and codecs (zstd, snappy, gzip, none): every
/// combination is read back by pyarrow, DuckDB and polars, and the compatible profile's footer
/// uses only what pre-Parquet-2.0 readers know.
@Suite("Profiles and codecs")
struct ProfileCodecTests {
    /// The codecs under test with the `ColumnMetaData.codec` name readers must report for each.
    static let codecs: [(compression: ParquetCompression, name: String)] = [
        (.zstd(level: 3), "ZSTD"), (.snappy, "SNAPPY"), (.gzip(level: 6), "GZIP"), (.uncompressed, "UNCOMPRESSED"),
    ]

    /// The engine's output schema (Sources/Pipeline/OutputSchema.swift), which ParquetTests cannot
    /// import: per-record-distinct INT64 and timestamp columns without dictionary and asking for
    /// DELTA_BINARY_PACKED, dictionary strings, a nullable string, INT32, a nullable timestamp.
    static let engineSchema = ParquetSchema(columns: [
        ParquetColumn(name: "serial", type: .int64, nullable: false, dictionary: false, encoding: .deltaBinaryPacked),
        ParquetColumn(name: "event_time", type: .timestampMicrosUTC, nullable: false, dictionary: false,
                      encoding: .deltaBinaryPacked),
        ParquetColumn(name: "level", type: .string, nullable: false),
        ParquetColumn(name: "message", type: .string, nullable: false),
        ParquetColumn(name: "attributes", type: .string, nullable: true),
        ParquetColumn(name: "ingest_time", type: .timestampMicrosUTC, nullable: false, dictionary: false,
                      encoding: .deltaBinaryPacked),
        ParquetColumn(name: "kafka_topic", type: .string, nullable: false),
        ParquetColumn(name: "kafka_partition", type: .int32, nullable: false),
        ParquetColumn(name: "kafka_offset", type: .int64, nullable: false, dictionary: false,
                      encoding: .deltaBinaryPacked),
        ParquetColumn(name: "kafka_timestamp", type: .timestampMicrosUTC, nullable: true, dictionary: false,
                      encoding: .deltaBinaryPacked),
    ])

    /// Log-like rows from a seeded PRNG: increasing serials and offsets, timestamps around 2026
    /// with some before 1970, a few levels, distinct messages with multi-byte text, attributes
    /// null every third row, a nullable Kafka timestamp.
    static func engineValue(_ row: Int, _ column: Int, _ rng: inout SplitMix64) -> TestValue {
        let base: Int64 = 1_780_000_000_000_000
        switch column {
        case 0: return .int64(Int64(row) * 3 + Int64(rng.next() % 3))
        case 1: return .timestamp(row % 101 == 7 ? -86_400_000_001 : base + Int64(row) * 1_000 + Int64(rng.next() % 500))
        case 2: return .string(Array(["DEBUG", "INFO", "WARN", "ERROR"][Int(rng.next() % 4)].utf8))
        case 3: return .string(Array("request \(rng.next() % 1_000_000) served é中🚀 in \(row % 977) ms".utf8))
        case 4: return row % 3 == 0 ? .null : .string(Array("{\"user\":\"u\(rng.next() % 50)\"}".utf8))
        case 5: return .timestamp(base + Int64(row) * 1_000 + 250_000)
        case 6: return .string(Array("app-logs".utf8))
        case 7: return .int32(Int32(rng.next() % 12) - 1)
        case 8: return .int64(1_000_000_000_000 + Int64(row))
        default: return row % 5 == 4 ? .null : .timestamp(base + Int64(row) * 1_000 - Int64(rng.next() % 10_000))
        }
    }

    /// Small pages and row groups so every chunk has several pages and the file several row groups.
    static func options(_ profile: ParquetProfile, _ compression: ParquetCompression) -> ParquetWriterOptions {
        var options = ParquetWriterOptions()
        options.profile = profile
        options.compression = compression
        options.rowGroupMaxRows = 1_500
        options.dataPageMaxBytes = 8 * 1024
        return options
    }

    /// Writes `rows` engine-like rows to `path` with seed `seed`; returns what was written.
    static func writeEngineFile(
        path: String, profile: ParquetProfile, compression: ParquetCompression, rows: Int, seed: UInt64 = 20
    ) throws -> [ExpectedColumn] {
        var rng = SplitMix64(seed: seed)
        return try InteropTests.write(
            path: path, schema: engineSchema, options: options(profile, compression), rows: rows, keep: false
        ) { row, column in engineValue(row, column, &rng) }.expected
    }

    @Test("every profile x codec file reads back exactly in pyarrow, DuckDB and polars, with the codec and encodings the profile promises",
          arguments: ParquetProfile.allCases, 0..<4)
    func profileCodecRoundTrip(profile: ParquetProfile, codecIndex: Int) throws {
        let (compression, codecName) = Self.codecs[codecIndex]
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("\(profile)-\(codecName).parquet").path
            let rows = 4_000
            let expected = try Self.writeEngineFile(path: path, profile: profile, compression: compression, rows: rows)
            let report = try check(path, dump: dir.appendingPathComponent("dump"))
            try expectSameValues(report, expected, Self.engineSchema)
            #expect(report.pyarrow["num_rows"] as? Int == rows)
            #expect((report.pyarrow["num_row_groups"] as? Int ?? 0) > 1)

            let types = (report.pyarrow["schema"] as? [[String: Any]] ?? []).map { $0["type"] as? String ?? "" }
            #expect(types == ["int64", "timestamp[us, tz=UTC]", "string", "string", "string", "timestamp[us, tz=UTC]",
                              "string", "int32", "int64", "timestamp[us, tz=UTC]"])
            #expect(report.duckdb["types"] as? [String] == [
                "BIGINT", "TIMESTAMP WITH TIME ZONE", "VARCHAR", "VARCHAR", "VARCHAR", "TIMESTAMP WITH TIME ZONE",
                "VARCHAR", "INTEGER", "BIGINT", "TIMESTAMP WITH TIME ZONE",
            ])

            let chunks = report.pyarrowRowGroups.flatMap { $0["columns"] as? [[String: Any]] ?? [] }
            #expect(chunks.count == Self.engineSchema.columns.count * report.pyarrowRowGroups.count)
            for chunk in chunks {
                #expect(chunk["compression"] as? String == codecName, "codec of \(chunk["path"] ?? "?")")
            }
            let duckMeta = report.duckdb["metadata"] as? [[String: Any]] ?? []
            #expect(duckMeta.allSatisfy { $0["compression"] as? String == codecName })

            func encodings(_ column: String) -> Set<String> {
                Set(chunks.filter { $0["path"] as? String == column }.flatMap { $0["encodings"] as? [String] ?? [] })
            }
            let allEncodings = chunks.flatMap { $0["encodings"] as? [String] ?? [] }
            let pageEncodings = duckMeta.flatMap { $0["encoding_stats"] as? [String] ?? [] }
            let parquetSchema = report.pyarrow["parquet_schema"] as? [[String: Any]] ?? []
            let converted = parquetSchema.map { $0["converted_type"] as? String ?? "" }
            switch profile {
            case .modern:
                // What the columns ask for: DELTA on the INT64 columns, RLE_DICTIONARY data pages.
                for column in ["serial", "event_time", "ingest_time", "kafka_offset", "kafka_timestamp"] {
                    #expect(encodings(column).contains("DELTA_BINARY_PACKED"), "\(column) is DELTA_BINARY_PACKED")
                }
                #expect(pageEncodings.contains { $0.hasPrefix("DATA_PAGE:RLE_DICTIONARY:") })
                #expect(!allEncodings.contains("PLAIN_DICTIONARY"))
                #expect(converted == ["NONE", "TIMESTAMP_MICROS", "UTF8", "UTF8", "UTF8", "TIMESTAMP_MICROS", "UTF8",
                                      "NONE", "NONE", "TIMESTAMP_MICROS"])
            case .compatible:
                #expect(!allEncodings.contains("DELTA_BINARY_PACKED"), "compatible footer lists DELTA_BINARY_PACKED")
                #expect(!pageEncodings.contains { $0.contains("DELTA") })
                #expect(!allEncodings.contains("RLE_DICTIONARY"))
                #expect(Set(allEncodings).isSubset(of: ["PLAIN", "PLAIN_DICTIONARY", "RLE"]), "\(Set(allEncodings))")
                // Dictionary columns: PLAIN_DICTIONARY dictionary page and data pages, as parquet-mr v1.
                #expect(encodings("level").contains("PLAIN_DICTIONARY"))
                #expect(pageEncodings.contains { $0.hasPrefix("DICTIONARY_PAGE:PLAIN_DICTIONARY:") })
                #expect(pageEncodings.contains { $0.hasPrefix("DATA_PAGE:PLAIN_DICTIONARY:") })
                for column in ["serial", "event_time", "ingest_time", "kafka_offset", "kafka_timestamp"] {
                    #expect(encodings(column).contains("PLAIN"), "\(column) falls back to PLAIN")
                }
                #expect(converted == ["INT_64", "TIMESTAMP_MICROS", "UTF8", "UTF8", "UTF8", "TIMESTAMP_MICROS", "UTF8",
                                      "INT_32", "INT_64", "TIMESTAMP_MICROS"])
                let logical = parquetSchema.map { $0["logical_type"] as? String ?? "" }
                #expect(logical[7].contains("Int(bitWidth=32, isSigned=true)"), "\(logical[7])")
                #expect(logical[0].contains("Int(bitWidth=64, isSigned=true)"), "\(logical[0])")
            }
            // Our own footer reader maps the annotated columns back to the same writer types.
            let metadata = try ParquetFooter.read(path: path)
            #expect(metadata.schema.map(\.columnType) == Self.engineSchema.columns.map { Optional($0.type) })
            #expect(metadata.rowGroups.allSatisfy { $0.columns.allSatisfy { $0.codec == compression.codec } })
        }
    }

    @Test("each codec's files are byte-identical whether pages are compressed inline, on the writer's threads or on shared threads",
          arguments: ParquetProfile.allCases, 0..<4)
    func compressionPathsAgree(profile: ParquetProfile, codecIndex: Int) throws {
        let compression = Self.codecs[codecIndex].compression
        try withTemporaryDirectory { dir in
            func write(_ name: String, threads: Int, shared: ParquetWriterScratch?) throws -> Data {
                let path = dir.appendingPathComponent(name).path
                var options = Self.options(profile, compression)
                options.compressionThreads = threads
                let output = try ParquetFileOutput(path: path)
                let writer = try ParquetWriter(output: output, schema: Self.engineSchema, options: options, shared: shared)
                var rng = SplitMix64(seed: 5)
                for row in 0..<3_000 {
                    for c in 0..<Self.engineSchema.columns.count {
                        append(Self.engineValue(row, c, &rng), to: writer, column: c)
                    }
                    try writer.endRow()
                }
                _ = try writer.close()
                try output.close()
                return try Data(contentsOf: URL(fileURLWithPath: path))
            }
            let inline = try write("inline.parquet", threads: 0, shared: nil)
            let threaded = try write("threads.parquet", threads: 2, shared: nil)
            let scratch = ParquetWriterScratch(compressionThreads: 1)
            let shared = try write("shared.parquet", threads: 0, shared: scratch)
            #expect(inline.count > 1_000)
            #expect(threaded == inline, "threaded output differs from inline")
            #expect(shared == inline, "shared-thread output differs from inline")
        }
    }

    @Test("Snappy, gzip and ZSTD page bodies decompress to the input with independent implementations",
          arguments: [0, 1, 100, 70_000, 1 << 20])
    func compressorsRoundTrip(size: Int) throws {
        // Half compressible text, half PRNG bytes: both of the codecs' paths (matches, literals).
        var rng = SplitMix64(seed: UInt64(size) + 1)
        var input = [UInt8]()
        input.reserveCapacity(size)
        let text = Array("tidemark log line é中🚀 ".utf8)
        while input.count < size {
            if input.count % 8192 < 4096 {
                input.append(text[input.count % text.count])
            } else {
                input.append(UInt8(truncatingIfNeeded: rng.next()))
            }
        }
        try withTemporaryDirectory { dir in
            let inputURL = dir.appendingPathComponent("input.bin")
            try Data(input).write(to: inputURL)
            for (name, compressor) in [("snappy", SnappyCompressor() as any PageCompressor),
                                       ("gzip", try GzipCompressor(level: 6)), ("zstd", try ZstdCompressor(level: 3))] {
                let out = ByteBuffer(capacity: 16)
                // Twice through the same compressor: state must not leak from one page to the next.
                for round in 0..<2 {
                    try input.withUnsafeBytes { try compressor.compress($0, into: out) }
                    let url = dir.appendingPathComponent("\(name).\(round)")
                    try Data(out.array).write(to: url)
                    if name == "gzip" {
                        // RFC 1952 member: magic 1f 8b, method 8 (deflate).
                        #expect(Array(out.array.prefix(3)) == [0x1F, 0x8B, 0x08], "gzip header")
                    }
                    // Python's gzip module (zlib) for gzip; Arrow's codecs for Snappy and ZSTD.
                    let result = try runProcess("python3", ["-c", """
                        import gzip, sys
                        import pyarrow as pa
                        name, path, expected_path, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
                        data = open(path, 'rb').read()
                        if name == 'gzip':
                            out = gzip.decompress(data)
                        else:
                            out = pa.decompress(data, decompressed_size=size, codec=name).to_pybytes()
                        sys.exit(0 if out == open(expected_path, 'rb').read() else 3)
                        """, name, url.path, inputURL.path, String(size)], timeout: 120)
                    #expect(result.status == 0, "\(name) round \(round), \(size) bytes: \(result.stderr)")
                }
            }
        }
    }
}
