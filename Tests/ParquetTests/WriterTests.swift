import Foundation
import Parquet
import Testing
import TestSupport

@testable import Parquet

/// An output that records every write, to check the writer only appends.
final class RecordingOutput: ParquetOutput {
    var bytes: [UInt8] = []
    var writes = 0

    func write(_ chunk: UnsafeRawBufferPointer) throws {
        bytes.append(contentsOf: chunk)
        writes += 1
    }
}

@Suite("Writer behaviour")
struct WriterTests {
    static let schema = ParquetSchema(columns: [
        ParquetColumn(name: "id", type: .int64, nullable: false),
        ParquetColumn(name: "s", type: .string, nullable: true),
    ])

    func expectError(_ code: ParquetError.Code, _ body: (ParquetWriter) throws -> Void) throws {
        let writer = try ParquetWriter(output: ParquetMemoryOutput(), schema: Self.schema)
        do {
            try body(writer)
            Issue.record("expected \(code)")
        } catch let error as ParquetError {
            #expect(error.code == code, "\(error)")
        }
        // Any error leaves the writer unusable.
        #expect(throws: ParquetError.self) { _ = try writer.close() }
    }

    @Test("misuse is reported with a typed error at endRow: wrong type, null in required, missing and duplicate values")
    func misuse() throws {
        try expectError(.typeMismatch) { w in
            w.append(Int32(1), column: 0)
            w.appendNull(column: 1)
            try w.endRow()
        }
        try expectError(.typeMismatch) { w in
            w.append(Int64(1), column: 7)
            try w.endRow()
        }
        try expectError(.nullInRequiredColumn) { w in
            w.appendNull(column: 0)
            w.appendNull(column: 1)
            try w.endRow()
        }
        try expectError(.incompleteRow) { w in
            w.append(Int64(1), column: 0)
            try w.endRow()
        }
        try expectError(.incompleteRow) { w in
            w.append(Int64(1), column: 0)
            w.append(Int64(2), column: 0)
            w.append("x", column: 1)
            try w.endRow()
        }
    }

    @Test("schemas must have distinct, non-empty names (compared as bytes)")
    func schemaValidation() throws {
        #expect(throws: ParquetError.self) { try ParquetWriter(output: ParquetMemoryOutput(), schema: ParquetSchema(columns: [])) }
        let duplicate = ParquetSchema(columns: [
            ParquetColumn(name: "a", type: .int64, nullable: false), ParquetColumn(name: "a", type: .string, nullable: true),
        ])
        #expect(throws: ParquetError.self) { try ParquetWriter(output: ParquetMemoryOutput(), schema: duplicate) }
        let distinctBytes = ParquetSchema(columns: [
            ParquetColumn(name: "\u{E9}", type: .int64, nullable: false), ParquetColumn(name: "e\u{301}", type: .int64, nullable: false),
        ])
        _ = try ParquetWriter(output: ParquetMemoryOutput(), schema: distinctBytes)
    }

    @Test("ParquetFileOutput creates new files only, with mode 0600")
    func fileOutput() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("f.parquet").path
            let output = try ParquetFileOutput(path: path)
            try [UInt8](repeating: 1, count: 10).withUnsafeBytes { try output.write($0) }
            try output.sync()
            try output.close()
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            #expect((attributes[.size] as? NSNumber)?.intValue == 10)
            do {
                _ = try ParquetFileOutput(path: path)
                Issue.record("opened an existing file")
            } catch let error as ParquetError {
                #expect(error.code == .io)
                #expect(error.systemError == EEXIST)
            }
        }
    }

    /// Writes `rows` rows of (id, message) and returns the bytes and the writer's summary.
    func writeRows(_ rows: Int, options: ParquetWriterOptions, output: any ParquetOutput = RecordingOutput(), observe: (ParquetWriter) -> Void = { _ in }) throws -> ParquetWriteSummary {
        let writer = try ParquetWriter(output: output, schema: Self.schema, options: options)
        for i in 0..<rows {
            writer.append(Int64(i), column: 0)
            if i % 11 == 0 {
                writer.appendNull(column: 1)
            } else {
                writer.append("message \(i) \(String(repeating: "x", count: i % 90))", column: 1)
            }
            try writer.endRow()
            observe(writer)
        }
        return try writer.close(keyValueMetadata: [("rows", "\(rows)")])
    }

    @Test("file layout: offsets point at page headers, chunks are contiguous, sizes add up, writes are append-only")
    func layout() throws {
        var options = ParquetWriterOptions()
        options.rowGroupMaxRows = 1_000
        options.dataPageMaxBytes = 8 * 1024
        let output = RecordingOutput()
        let summary = try writeRows(2_500, options: options, output: output)
        let file = output.bytes
        #expect(Int64(file.count) == summary.bytesWritten)
        #expect(Array(file.prefix(4)) == Array("PAR1".utf8))
        let metadata = try ParquetFooter.decode(tail: file)
        #expect(metadata.rowGroups.map(\.numRows) == [1_000, 1_000, 500])
        var expectedStart: Int64 = 4
        for group in metadata.rowGroups {
            #expect(group.fileOffset == expectedStart)
            var total: Int64 = 0
            for chunk in group.columns {
                let start = chunk.dictionaryPageOffset ?? chunk.dataPageOffset
                #expect(start == expectedStart, "chunks are contiguous")
                #expect(chunk.numValues == group.numRows)
                if let dictionary = chunk.dictionaryPageOffset {
                    #expect(dictionary < chunk.dataPageOffset)
                    #expect(try pageType(file, at: dictionary) == 2)
                }
                #expect(try pageType(file, at: chunk.dataPageOffset) == 0)
                expectedStart += chunk.totalCompressedSize
                total += chunk.totalUncompressedSize
            }
            #expect(group.totalByteSize == total)
            #expect(group.totalCompressedSize == expectedStart - group.fileOffset!)
        }
        #expect(Int(expectedStart) + metadata.footerLength + 8 == file.count)
    }

    /// Decodes the PageHeader at `offset` and returns its type (field 1).
    func pageType(_ file: [UInt8], at offset: Int64) throws -> Int32 {
        var r = ThriftCompactReader(bytes: file, start: Int(offset), end: file.count, maxDepth: 8, maxListSize: 100)
        var type: Int32 = -1
        try r.readStruct("PageHeader") { (r: inout ThriftCompactReader, id: Int16, t: UInt8) throws(ParquetError) in
            if id == 1 { type = try r.readI32(t, "type") } else { try r.skip(t) }
        }
        return type
    }

    @Test("row groups are cut by the byte budget, so buffered memory stays near one row group")
    func byteBudget() throws {
        var options = ParquetWriterOptions()
        options.rowGroupMaxBytes = 64 * 1024
        options.dataPageMaxBytes = 16 * 1024
        var peak = 0
        let output = RecordingOutput()
        let summary = try writeRows(20_000, options: options, output: output) { w in
            peak = max(peak, w.estimatedBufferedBytes)
        }
        #expect(summary.rowGroups >= 10)
        #expect(peak <= 64 * 1024 + 32 * 200)  // budget + one check interval of rows
        let metadata = try ParquetFooter.decode(tail: output.bytes)
        #expect(metadata.rowGroups.allSatisfy { $0.totalByteSize <= 96 * 1024 })
        #expect(metadata.numRows == 20_000)
    }

    @Test("background compression with 1, 2 or 3 threads produces the same file as inline compression")
    func backgroundCompressionIsTransparent() throws {
        var options = ParquetWriterOptions()
        options.rowGroupMaxRows = 3_000
        options.dataPageMaxBytes = 2 * 1024
        options.compressionThreads = 0
        let inline = RecordingOutput()
        _ = try writeRows(7_000, options: options, output: inline)
        for threads in 1...3 {
            options.compressionThreads = threads
            let background = RecordingOutput()
            _ = try writeRows(7_000, options: options, output: background)
            #expect(background.bytes == inline.bytes, "\(threads) threads")
        }
    }

    @Test("writers interleaved row by row on one shared scratch (inline or shared threads) write the same bytes as writers alone")
    func sharedScratchIsTransparent() throws {
        var options = ParquetWriterOptions()
        options.rowGroupMaxRows = 1_500
        options.dataPageMaxBytes = 2 * 1024
        options.compressionThreads = 0
        // Different data per writer (offset ids, different string lengths), so a page body or
        // compressed page left in the shared scratch by one writer would show up in another's file.
        func row(_ w: Int, _ i: Int, _ writer: ParquetWriter) throws {
            writer.append(Int64(w * 1_000_000 + i), column: 0)
            if (i + w) % 7 == 0 {
                writer.appendNull(column: 1)
            } else {
                writer.append("w\(w) row \(i) \(String(repeating: "abc", count: (i * (w + 1)) % 40))", column: 1)
            }
            try writer.endRow()
        }
        let rows = [4_000, 2_500, 3_300]
        var alone: [[UInt8]] = []
        for (w, n) in rows.enumerated() {
            let output = RecordingOutput()
            let writer = try ParquetWriter(output: output, schema: Self.schema, options: options)
            for i in 0..<n { try row(w, i, writer) }
            _ = try writer.close()
            alone.append(output.bytes)
        }
        // Inline, and with 1 or 2 compression threads shared by the three writers.
        for threads in 0...2 {
            let shared = ParquetWriterScratch(compressionThreads: threads)
            let outputs = rows.map { _ in RecordingOutput() }
            let writers = try outputs.map { try ParquetWriter(output: $0, schema: Self.schema, options: options, shared: shared) }
            for i in 0..<rows.max()! {
                for (w, n) in rows.enumerated() where i < n { try row(w, i, writers[w]) }
                // Close the shortest writer while the others still have open pages.
                for (w, n) in rows.enumerated() where i == n - 1 { _ = try writers[w].close() }
            }
            for w in rows.indices {
                #expect(outputs[w].bytes == alone[w], "writer \(w), \(threads) shared compression threads")
            }
        }
    }

    /// Writes (id, s) where every value repeats `repeats` times, so a dictionary pays off while it is small.
    func writeRepeating(_ rows: Int, repeats: Int, options: ParquetWriterOptions) throws -> ParquetFileMetadata {
        let output = RecordingOutput()
        let writer = try ParquetWriter(output: output, schema: Self.schema, options: options)
        for i in 0..<rows {
            writer.append(Int64(i / repeats), column: 0)
            writer.append("value-\(i / repeats)", column: 1)
            try writer.endRow()
        }
        _ = try writer.close()
        return try ParquetFooter.decode(tail: output.bytes)
    }

    @Test("the dictionary falls back to PLAIN once it outgrows dictionaryMaxBytes")
    func dictionaryFallback() throws {
        var options = ParquetWriterOptions()
        options.compression = .uncompressed
        options.dictionaryMaxBytes = 2 * 1024
        let metadata = try writeRepeating(20_000, repeats: 8, options: options)
        for chunk in metadata.rowGroups[0].columns {
            let dictionary = try #require(chunk.dictionaryPageOffset, "\(chunk.name)")
            // Uncompressed: the dictionary page is its header plus at most the limit plus one entry.
            #expect(chunk.dataPageOffset - dictionary <= 2 * 1024 + 64)
            #expect(Set(chunk.encodings) == [0, 3, 8])  // PLAIN, RLE, RLE_DICTIONARY
        }
    }

    @Test("a dictionary that does not beat PLAIN on the first page is dropped; one that does is kept")
    func dictionaryJudgedOnFirstPage() throws {
        var options = ParquetWriterOptions()
        options.compression = .uncompressed
        let unique = try writeRepeating(5_000, repeats: 1, options: options)
        for chunk in unique.rowGroups[0].columns {
            #expect(chunk.dictionaryPageOffset == nil, "\(chunk.name)")
            #expect(!chunk.encodings.contains(8))
        }
        let repeated = try writeRepeating(5_000, repeats: 50, options: options)
        for chunk in repeated.rowGroups[0].columns {
            #expect(chunk.dictionaryPageOffset != nil, "\(chunk.name)")
            #expect(Set(chunk.encodings) == [0, 3, 8])
        }
    }

    @Test("the dictionary is judged on the first 64 KiB of values, not on the whole first page")
    func dictionaryJudgedOnSample() throws {
        var options = ParquetWriterOptions()
        options.compression = .uncompressed
        options.compressionThreads = 0
        func write(_ uniqueRows: Int) throws -> ParquetColumnChunkInfo {
            let schema = ParquetSchema(columns: [ParquetColumn(name: "s", type: .string, nullable: false)])
            let output = RecordingOutput()
            let writer = try ParquetWriter(output: output, schema: schema, options: options)
            // `uniqueRows` distinct ~64-byte values, then 12,000 copies of one value: all in the
            // first 1 MiB page. Judged on the whole page the dictionary (the unique values once,
            // 1-2 byte indices) beats PLAIN; judged on a 64 KiB sample of unique values it does not.
            for i in 0..<uniqueRows {
                writer.append("unique value \(i) " + String(repeating: "x", count: 48), column: 0)
                try writer.endRow()
            }
            for _ in 0..<12_000 {
                writer.append("the same value", column: 0)
                try writer.endRow()
            }
            _ = try writer.close()
            return try ParquetFooter.decode(tail: output.bytes).rowGroups[0].columns[0]
        }
        // 2,000 x ~70 bytes: past the sample, so the column is PLAIN.
        let sampled = try write(2_000)
        #expect(sampled.dictionaryPageOffset == nil)
        #expect(!sampled.encodings.contains(8))
        // 600 x ~70 bytes (< 64 KiB): the sample reaches into the repeats and the dictionary stays.
        let kept = try write(600)
        #expect(kept.dictionaryPageOffset != nil)
        #expect(kept.encodings.contains(8))
    }

    @Test("a column declared without dictionary is written PLAIN while its neighbour keeps its dictionary")
    func perColumnDictionarySwitch() throws {
        var options = ParquetWriterOptions()
        options.compression = .uncompressed
        let schema = ParquetSchema(columns: [
            ParquetColumn(name: "id", type: .int64, nullable: false, dictionary: false),
            ParquetColumn(name: "s", type: .string, nullable: false),
        ])
        let output = RecordingOutput()
        let writer = try ParquetWriter(output: output, schema: schema, options: options)
        for i in 0..<5_000 {  // both columns repeat each value 50 times: a dictionary would pay off
            writer.append(Int64(i / 50), column: 0)
            writer.append("value-\(i / 50)", column: 1)
            try writer.endRow()
        }
        _ = try writer.close()
        let columns = try ParquetFooter.decode(tail: output.bytes).rowGroups[0].columns
        #expect(columns[0].dictionaryPageOffset == nil)
        #expect(!columns[0].encodings.contains(8))
        #expect(columns[1].dictionaryPageOffset != nil)
        #expect(columns[1].encodings.contains(8))
    }
}
