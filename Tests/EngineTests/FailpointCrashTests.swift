import Foundation
import Pipeline
import TestSupport
import Testing

/// docs/protocol.md's failure matrix, executed: the engine dies (`_exit`, like kill -9) at each
/// failpoint, is restarted, runs to idle, and the sink is checked for exactly-once delivery.
@Suite("failpoint crash matrix", .serialized)
struct FailpointCrashTests {
    /// Every failpoint of the engine, in protocol order (the names TIDEMARK_FAILPOINTS accepts).
    static let points = Failpoint.allCases.map(\.rawValue)

    @Test("die at the failpoint, restart, exactly once", arguments: points)
    func crashAndRestart(_ point: String) throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            // One partition, ~700-byte records (a 600-character pad that Kafka's zstd compresses
            // away, so the dev broker's ~5 MiB-per-partition log holds them), uncompressed
            // Parquet, batches of 15,000 records (~10 MiB) and 5 MiB parts: every full batch is a
            // 3-part multipart upload, so the part-level failpoints are reached; the last batch
            // (the idle flush) is smaller.
            let setup = try EngineSetup(stack: stack, topic: uniqueName("fp"), group: uniqueName("g"), directory: dir,
                                        maxRecords: 15_000, partSize: "5MiB", compression: "none")
            try setup.produce(count: 40_000, partitions: 1, badFraction: 0.005, pad: 600)
            let crashed = try setup.runEngine(idle: "4s", failpoints: "\(point)@2")
            #expect(crashed.status == 137, "expected the failpoint to kill the engine (137), got \(crashed.status): \(crashed.stderr.suffix(1500))")
            #expect(crashed.stderr.contains("failpoint \(point) fired"))
            let recovered = try setup.runEngine(idle: "4s")
            #expect(recovered.status == 0, "restart failed: \(recovered.stderr.suffix(2000))")
            let v = try setup.verify(expect: 40_000)
            #expect(v.ok, "not exactly once after \(point): \(v.raw)")
            #expect(setup.leftoverStagedFiles().isEmpty, "staging not empty after \(point): \(setup.leftoverStagedFiles())")
        }
    }
}
