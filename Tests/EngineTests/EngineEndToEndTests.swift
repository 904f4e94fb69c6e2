import Foundation
import TestSupport
import Testing

/// The engine as a subprocess against the local stack; data produced by the Python client and
/// checked only by reading the sink back with pyarrow/DuckDB (tools/verify_sink.py).
@Suite("etl-engine end to end", .serialized)
struct EngineEndToEndTests {
    @Test("200,000 records (1% malformed) over 4 partitions land exactly once in a file:// sink; staging ends empty")
    func fileSink() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let setup = try EngineSetup(stack: stack, topic: uniqueName("e2e"), group: uniqueName("g"), directory: dir,
                                        maxRecords: 40_000)
            try setup.produce(count: 200_000, badFraction: 0.01)
            let run = try setup.runEngine(idle: "4s")
            #expect(run.status == 0, "engine failed: \(run.stderr.suffix(2000))")
            let v = try setup.verify(expect: 200_000)
            #expect(v.ok, "not exactly once: \(v.raw)")
            #expect((v.summary["rejected"] as? Int ?? 0) > 1000, "the malformed 1% must be in dead-letter objects")
            #expect(setup.leftoverStagedFiles().isEmpty, "staging not empty: \(setup.leftoverStagedFiles())")
        }
    }

    @Test("encoder shards: 1, 3 and 5 encoder threads over 4 partitions each land every record exactly once", arguments: [1, 3, 5])
    func encoderThreads(threads: Int) throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let setup = try EngineSetup(stack: stack, topic: uniqueName("e2e-enc"), group: uniqueName("g"), directory: dir,
                                        maxRecords: 15_000, encoderThreads: threads)
            try setup.produce(count: 100_000, badFraction: 0.01)
            let run = try setup.runEngine(idle: "4s")
            #expect(run.status == 0, "engine failed: \(run.stderr.suffix(2000))")
            let summary = try #require(run.stderr.split(separator: "\n").first { $0.contains("run summary") })
            #expect(summary.contains("encoder_threads=\(threads)"), "\(summary)")
            #expect(summary.contains("records=100000"), "\(summary)")
            let v = try setup.verify(expect: 100_000)
            #expect(v.ok, "not exactly once: \(v.raw)")
            #expect((v.summary["rejected"] as? Int ?? 0) > 500, "the malformed 1% must be in dead-letter objects")
            #expect(setup.leftoverStagedFiles().isEmpty, "staging not empty: \(setup.leftoverStagedFiles())")
        }
    }

    @Test("records land exactly once in an S3 sink (moto_server), uploaded with conditional multipart or put")
    func s3Sink() throws {
        let stack = try LocalStack.current()
        let bucket = uniqueName("lake")
        try createBucket(bucket, stack: stack)
        try withTemporaryDirectory { dir in
            let setup = try EngineSetup(stack: stack, topic: uniqueName("e2e-s3"), group: uniqueName("g"), directory: dir,
                                        sink: "s3://\(bucket)/logs", maxRecords: 20_000,
                                        extra: "")
            try setup.produce(count: 60_000, badFraction: 0.01)
            let run = try setup.runEngine(idle: "4s")
            #expect(run.status == 0, "engine failed: \(run.stderr.suffix(2000))")
            let v = try setup.verify(expect: 60_000)
            #expect(v.ok, "not exactly once: \(v.raw)")
            #expect(setup.leftoverStagedFiles().isEmpty)
        }
    }

    @Test("a second run on the same group reads nothing again: no new objects, still exactly once")
    func restartIsIdempotent() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let setup = try EngineSetup(stack: stack, topic: uniqueName("e2e-re"), group: uniqueName("g"), directory: dir)
            try setup.produce(count: 10_000)
            #expect(try setup.runEngine().status == 0)
            let before = try setup.verify(expect: 10_000)
            #expect(before.ok, "\(before.raw)")
            #expect(try setup.runEngine().status == 0)
            let after = try setup.verify(expect: 10_000)
            #expect(after.ok, "\(after.raw)")
            #expect(after.summary["parquet_objects"] as? Int == before.summary["parquet_objects"] as? Int)
        }
    }

    @Test("two engines in one group split the partitions and together deliver every record exactly once")
    func twoEnginesOneGroup() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let topic = uniqueName("e2e-2")
            let group = uniqueName("g")
            let lake = "file://\(dir.appendingPathComponent("lake").path)"
            let a = try EngineSetup(stack: stack, topic: topic, group: group, directory: dir.appendingPathComponent("a"),
                                    sink: lake, maxRecords: 5000)
            let b = try EngineSetup(stack: stack, topic: topic, group: group, directory: dir.appendingPathComponent("b"),
                                    sink: lake, maxRecords: 5000)
            try a.produce(count: 80_000)
            let results = Mutex2<[ProcessResult]>([])
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                if let r = try? (i == 0 ? a : b).runEngine(idle: "6s") { results.append(r) }
            }
            #expect(results.value.count == 2)
            for r in results.value { #expect(r.status == 0, "\(r.stderr.suffix(1500))") }
            let v = try a.verify(expect: 80_000)
            #expect(v.ok, "not exactly once: \(v.raw)")
        }
    }

    @Test("zombie twins: two engines in different groups race for the same start offsets; conditional create lets one win each, the loser re-seeks")
    func zombieTwins() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let topic = uniqueName("e2e-z")
            let lake = "file://\(dir.appendingPathComponent("lake").path)"
            // Different groups: each twin believes it owns every partition, as a zombie does.
            let a = try EngineSetup(stack: stack, topic: topic, group: uniqueName("ga"), directory: dir.appendingPathComponent("a"),
                                    sink: lake, maxRecords: 3000)
            let b = try EngineSetup(stack: stack, topic: topic, group: uniqueName("gb"), directory: dir.appendingPathComponent("b"),
                                    sink: lake, maxRecords: 2000)
            try a.produce(count: 40_000)
            let results = Mutex2<[ProcessResult]>([])
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                if let r = try? (i == 0 ? a : b).runEngine(idle: "5s") { results.append(r) }
            }
            for r in results.value { #expect(r.status == 0, "\(r.stderr.suffix(1500))") }
            let v = try a.verify(expect: 40_000)
            #expect(v.ok, "not exactly once: \(v.raw)")
            let log = results.value.map(\.stderr).joined()
            #expect(log.contains("object already holds this start offset") || log.contains("superseded"),
                    "the twins never collided; the test did not exercise the race")
        }
    }
}

extension EngineEndToEndTests {
    @Test("SIGTERM seals the open batches, commits and exits 0; /metrics on 127.0.0.1 reports what was read")
    func sigtermAndMetrics() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            // Batches never fill (max_records, max_age large): only the SIGTERM path can commit them.
            let setup = try EngineSetup(stack: stack, topic: uniqueName("e2e-sig"), group: uniqueName("g"), directory: dir,
                                        maxRecords: 1_000_000, maxAge: "10m")
            try setup.produce(count: 12_000, badFraction: 0.01)
            let port = 20_000 + Int.random(in: 0..<20_000)
            let engine = Process()
            engine.executableURL = productsDirectory.appendingPathComponent("etl-engine")
            engine.arguments = ["--config", setup.configPath, "--metrics-port", "\(port)"]
            engine.standardOutput = FileHandle.nullDevice
            engine.standardError = FileHandle.nullDevice
            try engine.run()
            defer { if engine.isRunning { kill(engine.processIdentifier, SIGKILL); engine.waitUntilExit() } }
            var page = ""
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                let r = try runProcess("curl", ["-s", "http://127.0.0.1:\(port)/metrics"], timeout: 10)
                page = r.stdout
                if page.contains("tidemark_records_in_total 12000") { break }
                usleep(300_000)
            }
            #expect(page.contains("tidemark_records_in_total 12000"), "metrics page: \(page)")
            #expect(page.contains("# TYPE tidemark_records_rejected_total counter"))
            kill(engine.processIdentifier, SIGTERM)
            engine.waitUntilExit()
            #expect(engine.terminationStatus == 0)
            let v = try setup.verify(expect: 12_000)
            #expect(v.ok, "SIGTERM must deliver the open batches exactly once: \(v.raw)")
            #expect(setup.leftoverStagedFiles().isEmpty)
        }
    }
}

/// A tiny lock-protected box for collecting results from concurrent threads.
final class Mutex2<T>: @unchecked Sendable {
    private var v: T
    private let lock = NSLock()
    init(_ v: T) { self.v = v }
    var value: T { lock.lock(); defer { lock.unlock() }; return v }
    func append<E>(_ e: E) where T == [E] { lock.lock(); v.append(e); lock.unlock() }
}
