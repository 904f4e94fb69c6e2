import Foundation
import Parquet
import Testing
import TestSupport

/// The footer reader against files written by pyarrow and by our writer, and its error paths.
@Suite("Footer reader")
struct FooterReaderTests {
    static func hex(_ bytes: [UInt8]?) -> String? {
        bytes.map { $0.map { String(format: "%02x", $0) }.joined() }
    }

    static let codecs: [String: ParquetCodec] = [
        "zstd": .zstd, "snappy": .snappy, "gzip": .gzip, "none": .uncompressed, "lz4": .lz4Raw,
    ]

    @Test(
        "decodes pyarrow-written files like pyarrow does",
        arguments: [("zstd", true), ("snappy", true), ("gzip", false), ("none", true), ("none", false), ("lz4", true)])
    func pyarrowFiles(codec: String, dictionary: Bool) throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("py.parquet").path
            var args = ["write-sample", path, "--codec", codec, "--rows", "1000", "--row-group-size", "400"]
            if !dictionary { args.append("--no-dictionary") }
            let report = try check(path, sample: args)
            let metadata = try ParquetFooter.read(path: path)
            let py = report.pyarrow
            #expect(metadata.numRows == Int64(py["num_rows"] as? Int ?? -1))
            #expect(metadata.createdBy == py["created_by"] as? String)
            #expect(metadata.value(forKey: "tidemark.topic") == "logs")
            #expect(metadata.keyValueDictionary["tidemark.partition"] == "3")
            let names = (py["schema"] as? [[String: Any]] ?? []).map { $0["name"] as? String ?? "" }
            #expect(metadata.schema.map(\.name) == names)
            #expect(metadata.schema.map(\.columnType) == [.int64, .timestampMicrosUTC, .string, .string, .int32, .boolean, .double])
            #expect(metadata.schema[3].nullable)
            let groups = report.pyarrowRowGroups
            #expect(metadata.rowGroups.count == groups.count)
            for (group, pyGroup) in zip(metadata.rowGroups, groups) {
                #expect(group.numRows == Int64(pyGroup["num_rows"] as? Int ?? -1))
                #expect(group.totalByteSize == Int64(pyGroup["total_byte_size"] as? Int ?? -1))
                let pyColumns = pyGroup["columns"] as? [[String: Any]] ?? []
                #expect(group.columns.count == pyColumns.count)
                for (chunk, pyChunk) in zip(group.columns, pyColumns) {
                    #expect(chunk.name == pyChunk["path"] as? String)
                    #expect(chunk.codec == Self.codecs[codec])
                    if codec != "lz4" {  // pyarrow calls LZ4_RAW (7) "LZ4"
                        #expect(chunk.codec.description == pyChunk["compression"] as? String)
                    }
                    #expect(chunk.numValues == Int64(pyChunk["num_values"] as? Int ?? -1))
                    #expect(chunk.dataPageOffset == Int64(pyChunk["data_page_offset"] as? Int ?? -1))
                    #expect(chunk.totalCompressedSize == Int64(pyChunk["total_compressed_size"] as? Int ?? -1))
                    #expect(chunk.totalUncompressedSize == Int64(pyChunk["total_uncompressed_size"] as? Int ?? -1))
                    #expect((chunk.dictionaryPageOffset != nil) == (pyChunk["has_dictionary_page"] as? Bool ?? false))
                    let pyStats = try #require(pyChunk["statistics"] as? [String: Any])
                    let stats = try #require(chunk.statistics)
                    #expect(stats.nullCount == (pyStats["null_count"] as? Int).map(Int64.init))
                    let pyMin = pyStats["min"] as? [String: Any]
                    let pyMax = pyStats["max"] as? [String: Any]
                    switch chunk.physicalType {
                    case .byteArray:
                        #expect(Self.hex(stats.minValue) == pyMin?["hex"] as? String)
                        #expect(Self.hex(stats.maxValue) == pyMax?["hex"] as? String)
                    case .int64, .int32:
                        #expect(stats.minInt64.map(String.init) == pyMin?["int"] as? String)
                        #expect(stats.maxInt64.map(String.init) == pyMax?["int"] as? String)
                    case .boolean:
                        #expect(stats.minValue == [(pyMin?["bool"] as? Bool ?? true) ? 1 : 0])
                        #expect(stats.maxValue == [(pyMax?["bool"] as? Bool ?? false) ? 1 : 0])
                    default:
                        #expect(stats.minValue?.count == 8)
                    }
                }
            }
        }
    }

    /// A small file from our writer, in memory.
    static func sampleFile(rows: Int = 50, kv: [(key: String, value: String)] = [("k", "v")]) throws -> [UInt8] {
        let output = ParquetMemoryOutput()
        let schema = ParquetSchema(columns: [
            ParquetColumn(name: "id", type: .int64, nullable: false),
            ParquetColumn(name: "s", type: .string, nullable: true),
            ParquetColumn(name: "t", type: .timestampMicrosUTC, nullable: false),
        ])
        var options = ParquetWriterOptions()
        options.rowGroupMaxRows = 20
        let writer = try ParquetWriter(output: output, schema: schema, options: options)
        for i in 0..<rows {
            writer.append(Int64(i) - 10, column: 0)
            if i % 4 == 0 { writer.appendNull(column: 1) } else { writer.append("v\(i % 7)", column: 1) }
            writer.appendTimestamp(micros: Int64(i) * -1_000_000, column: 2)
            try writer.endRow()
        }
        _ = try writer.close(keyValueMetadata: kv)
        return output.bytes
    }

    @Test("decodes our own files from a tail of any sufficient length, as a ranged GET would fetch")
    func ownFilesFromTail() throws {
        let file = try Self.sampleFile()
        let trailer = try ParquetFooter.trailerLength(last8: Array(file.suffix(8)))
        #expect(trailer < file.count)
        for extra in [0, 1, 100] {
            let tail = Array(file.suffix(min(file.count, trailer + extra)))
            let metadata = try ParquetFooter.decode(tail: tail)
            #expect(metadata.footerLength == trailer - 8)
            #expect(metadata.numRows == 50)
            #expect(metadata.rowGroups.map(\.numRows) == [20, 20, 10])
            #expect(metadata.keyValueDictionary == ["k": "v"])
            #expect(metadata.createdBy == "tidemark version 0.1.0 (build dev)")
            #expect(metadata.schema.map(\.columnType) == [.int64, .string, .timestampMicrosUTC])
            #expect(metadata.schema[2].logicalType == .timestamp(isAdjustedToUTC: true, unit: .micros))
            let first = metadata.rowGroups[0]
            #expect(first.columns[0].statistics?.minInt64 == -10)
            #expect(first.columns[0].statistics?.maxInt64 == 9)
            #expect(first.columns[1].statistics?.nullCount == 5)
            #expect(first.columns[2].statistics?.minInt64 == -19_000_000)
            #expect(first.columns.allSatisfy { $0.numValues == 20 && $0.codec == .zstd })
        }
    }

    @Test("rejects truncated tails, bad magic and oversized footer lengths with typed errors")
    func rejectsBadTrailers() throws {
        let file = try Self.sampleFile()
        let trailer = try ParquetFooter.trailerLength(last8: Array(file.suffix(8)))
        #expect(throws: ParquetError.self) { try ParquetFooter.decode(tail: Array(file.suffix(trailer - 1))) }
        #expect(throws: ParquetError.self) { try ParquetFooter.decode(tail: Array(file.suffix(5))) }
        var badMagic = Array(file.suffix(8))
        badMagic[7] = 0x45  // "PARE" (encrypted footer)
        do {
            _ = try ParquetFooter.trailerLength(last8: badMagic)
            Issue.record("accepted a PARE trailer")
        } catch let error as ParquetError {
            #expect(error.code == .notParquet)
        }
        let huge: [UInt8] = [0xFF, 0xFF, 0xFF, 0x7F] + Array("PAR1".utf8)
        do {
            _ = try ParquetFooter.trailerLength(last8: huge)
            Issue.record("accepted a 2 GiB footer length")
        } catch let error as ParquetError {
            #expect(error.code == .limitExceeded)
        }
        try withTemporaryDirectory { dir in
            let small = dir.appendingPathComponent("small.parquet").path
            #expect(FileManager.default.createFile(atPath: small, contents: Data("PAR1PAR1".utf8)))
            #expect(throws: ParquetError.self) { try ParquetFooter.read(path: small) }
            let cut = dir.appendingPathComponent("cut.parquet").path
            #expect(FileManager.default.createFile(atPath: cut, contents: Data(file.prefix(file.count - 3))))
            #expect(throws: ParquetError.self) { try ParquetFooter.read(path: cut) }
            do {
                _ = try ParquetFooter.read(path: dir.appendingPathComponent("missing.parquet").path)
                Issue.record("read a missing file")
            } catch let error as ParquetError {
                #expect(error.code == .io)
                #expect(error.systemError == ENOENT)
                #expect(error.path?.hasSuffix("missing.parquet") == true)
            }
        }
    }

    /// Wraps a hand-made FileMetaData body in a valid trailer.
    static func tail(_ body: [UInt8]) -> [UInt8] {
        let n = UInt32(body.count)
        return body + [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)] + Array("PAR1".utf8)
    }

    @Test("rejects hostile footers: huge list sizes, huge lengths, deep nesting, missing required fields")
    func hostileFooters() throws {
        // FileMetaData field 1 (version), then field 2 (list, delta 1 → 0x19) claiming 2^31 struct elements.
        let hugeList: [UInt8] = [0x15, 0x02, 0x19, 0xFC, 0xFF, 0xFF, 0xFF, 0xFF, 0x07, 0x00]
        // Field 6 (binary) whose length claims 4 GiB.
        let hugeString: [UInt8] = [0x68, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x41, 0x00]
        // Version, then 10,000 nested structs under an unknown field id 20 (long form: 0x0C, zigzag 20).
        var deep: [UInt8] = [0x15, 0x02, 0x0C, 0x28]
        for _ in 0..<10_000 { deep += [0x1C] }
        // Only version; required schema/num_rows/row_groups missing.
        let missing: [UInt8] = [0x15, 0x02, 0x00]
        // Varint with 11 continuation bytes.
        let longVarint: [UInt8] = [0x16] + Array(repeating: 0xFF, count: 11) + [0x01, 0x00]
        for (name, body, codes) in [
            ("huge list", hugeList, [ParquetError.Code.truncated, .limitExceeded]),
            ("huge string", hugeString, [.truncated]),
            ("deep nesting", deep, [.limitExceeded]),
            ("missing fields", missing, [.corruptFooter]),
            ("long varint", longVarint, [.corruptFooter]),
        ] {
            do {
                _ = try ParquetFooter.decode(tail: Self.tail(body))
                Issue.record("\(name): accepted")
            } catch let error as ParquetError {
                #expect(codes.contains(error.code), "\(name): \(error)")
            }
        }
    }
}
