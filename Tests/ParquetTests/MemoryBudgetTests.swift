import Foundation
import Testing
import TestSupport

@testable import Parquet

/// A memory budget shared by many open writers (one per Kafka partition in the engine): the
/// total they buffer stays within it, and every file still holds exactly the rows written to it.
@Suite("Shared memory budget")
struct MemoryBudgetTests {
    static let schema = ParquetSchema(columns: [
        ParquetColumn(name: "id", type: .int64, nullable: false),
        ParquetColumn(name: "level", type: .string, nullable: false),
        ParquetColumn(name: "message", type: .string, nullable: true),
    ])
    static let writers = 64
    static let rowsPerWriter = 400
    static let limit = 1 << 20

    struct Run {
        var paths: [String]
        /// The highest sum of the writers' `estimatedBufferedBytes` seen after a row.
        var peakSum = 0
        var maxRowBytes = 0
        var budget: ParquetMemoryBudget?
    }

    /// 64 writers sharing one scratch, each with a row-group limit (4 MiB) far above its share of
    /// the budget, fed round-robin (as a consumer reading many partitions), then closed.
    func write(into directory: URL, budget: Int?) throws -> Run {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let scratch = ParquetWriterScratch(compressionThreads: 1, memoryBudget: budget)
        var options = ParquetWriterOptions()
        options.rowGroupMaxBytes = 4 << 20
        options.dataPageMaxBytes = 64 << 10
        var outputs: [ParquetFileOutput] = []
        var writers: [ParquetWriter] = []
        var run = Run(paths: [], budget: scratch.memoryBudget)
        for w in 0..<Self.writers {
            let path = directory.appendingPathComponent("w\(w).parquet").path
            let output = try ParquetFileOutput(path: path, bufferSize: 64 << 10)
            outputs.append(output)
            writers.append(try ParquetWriter(output: output, schema: Self.schema, options: options, shared: scratch))
            run.paths.append(path)
        }
        for row in 0..<Self.rowsPerWriter {
            for (w, writer) in writers.enumerated() {
                let id = Int64(w * Self.rowsPerWriter + row)
                let message = Self.message(id)
                writer.append(id, column: 0)
                writer.append(["INFO", "WARN", "ERROR"][row % 3], column: 1)
                if row % 17 == 0 { writer.appendNull(column: 2) } else { writer.append(message, column: 2) }
                try writer.endRow()
                run.maxRowBytes = max(run.maxRowBytes, 8 + 5 + message.utf8.count + 8)
                if let b = scratch.memoryBudget {
                    #expect(b.bufferedBytes <= b.limit, "budget total after row \(id)")
                }
            }
            if row % 10 == 9 {
                run.peakSum = max(run.peakSum, writers.reduce(0) { $0 + $1.estimatedBufferedBytes })
            }
        }
        for (writer, output) in zip(writers, outputs) {
            _ = try writer.close()
            try output.close()
        }
        return run
    }

    /// ~100 characters that differ per row (no dictionary: the column stays PLAIN, as log messages do).
    static func message(_ id: Int64) -> String {
        var x = UInt64(bitPattern: id) &* 0x9E37_79B9_7F4A_7C15
        var s = "message \(id) "
        while s.utf8.count < 100 {
            x ^= x >> 29
            x &*= 0xBF58_476D_1CE4_E5B9
            s.append(Character(Unicode.Scalar(UInt8(97 + x % 26))))
        }
        return s
    }

    @Test("64 open writers stay within a 1 MiB budget together; every file has exactly its rows, in several row groups")
    func budgetHoldsAcrossWriters() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tidemark-budget-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        // Without a budget each writer keeps its whole row group: the writers together hold far
        // more than the limit (this is what the budget is for).
        let unbounded = try write(into: dir.appendingPathComponent("unbounded"), budget: nil)
        #expect(unbounded.peakSum > 2 * Self.limit, "control: \(unbounded.peakSum) bytes buffered without a budget")

        let run = try write(into: dir, budget: Self.limit)
        let budget = try #require(run.budget)
        // A writer reports every 32 rows: between reports each may hold up to 32 rows more.
        let slack = Self.writers * 32 * run.maxRowBytes
        #expect(run.peakSum <= Self.limit + slack, "peak \(run.peakSum) bytes buffered, budget \(Self.limit) + \(slack)")
        #expect(budget.peakBufferedBytes <= Self.limit)
        #expect(budget.earlyRowGroups > 0)
        #expect(budget.bufferedBytes == 0, "closed writers report nothing buffered")

        // Read back with pyarrow (not our code): ids and messages exactly as written, once each.
        let script = """
            import json, sys, pyarrow.parquet as pq
            out = {}
            for p in sys.argv[1:]:
                f = pq.ParquetFile(p)
                t = f.read()
                out[p] = {"row_groups": f.metadata.num_row_groups, "ids": t.column("id").to_pylist(),
                          "messages": t.column("message").to_pylist()}
            print(json.dumps(out))
            """
        let r = try runProcess("python3", ["-c", script] + run.paths, timeout: 120)
        try #require(r.status == 0, "pyarrow: \(r.stderr)")
        let files = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: [String: Any]])
        var multiGroup = 0
        for (w, path) in run.paths.enumerated() {
            let f = try #require(files[path])
            let ids = try #require(f["ids"] as? [Int])
            let want = Array((w * Self.rowsPerWriter)..<((w + 1) * Self.rowsPerWriter))
            #expect(ids == want, "\(path): ids")
            let messages = try #require(f["messages"] as? [Any])
            let bad = zip(want, messages).first { id, m in
                id % Self.rowsPerWriter % 17 == 0 ? !(m is NSNull) : (m as? String) != Self.message(Int64(id))
            }
            #expect(bad == nil, "\(path): message of id \(bad?.0 ?? -1)")
            if (f["row_groups"] as? Int ?? 0) > 1 { multiGroup += 1 }
        }
        // Row groups were written early across the writers (not one big group per file).
        #expect(multiGroup > Self.writers / 2, "\(multiGroup) of \(Self.writers) files have more than one row group")
    }
}
