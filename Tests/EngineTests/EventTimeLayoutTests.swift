import Foundation
import TestSupport
import Testing

/// `[sink] path` with event time, end to end: out-of-order event times cut batches where the
/// path changes, DuckDB (hive_partitioning) finds every row inside its own `dt=`/`hour=`, and a
/// second instance that knows nothing (new group, new manifest) probes the event-time keys and
/// writes nothing twice.
@Suite("event-time layout end to end", .serialized)
struct EventTimeLayoutTests {
    static let template = #"path = "topic={topic}/dt={event_date}/hour={event_hour}""#

    @Test("late records: every row lies in its path's hour, exactly once, and a fresh instance's probe finds every object")
    func eventTimeLayout() throws {
        let stack = try LocalStack.current()
        let topic = uniqueName("evt")
        try withTemporaryDirectory { dir in
            let setup = try EngineSetup(stack: stack, topic: topic, group: uniqueName("g"), directory: dir.appendingPathComponent("a"),
                                        maxRecords: 4000, sinkExtra: Self.template)
            // 24,000 records 250 ms of event time apart span 100 minutes (two hour boundaries);
            // 2% arrive up to 15 minutes late, 1% are malformed (no event time: they never cut).
            try setup.produce(count: 24_000, partitions: 2, badFraction: 0.01,
                              extraArguments: ["--event-step-ms", "250", "--late-fraction", "0.02", "--late-max-s", "900"])
            let run = try setup.runEngine(idle: "4s")
            #expect(run.status == 0, "engine failed: \(run.stderr.suffix(2000))")
            let v = try setup.verify(expect: 24_000)
            #expect(v.ok, "not exactly once: \(v.raw)")
            let layout = try runPythonTool("check_layout.py", ["--sink", setup.sinkURL])
            #expect(layout.status == 0, "rows outside their path: \(layout.stdout) \(layout.stderr.suffix(1500))")
            let summary = (try? JSONSerialization.jsonObject(with: Data(layout.stdout.utf8))) as? [String: Any] ?? [:]
            // Size cuts alone give 12,000 / 4,000 = 3 objects per partition (6 in all); every hour
            // boundary and every late record that crosses one cuts again.
            #expect((summary["paths"] as? Int ?? 0) >= 3, "expected three hour paths: \(layout.stdout)")
            #expect((summary["objects"] as? Int ?? 0) > 8, "late records must cut batches: \(layout.stdout)")
            let objects = v.summary["parquet_objects"] as? Int
            // Both audits find the objects under the template's paths and call the lake clean.
            for args in [["--deep"], ["--fleet"]] {
                let audit = try runProcess(productsDirectory.appendingPathComponent("etl-audit").path,
                                           ["--config", setup.configPath, "--json"] + args, environment: EngineSetup.awsEnvironment,
                                           timeout: 120)
                #expect(audit.status == 0, "etl-audit \(args) on the event-time layout: \(audit.stdout.suffix(1500)) \(audit.stderr.suffix(800))")
            }

            // A second instance: new group (starts at offset 0), new manifest and staging. Its
            // probe must compute each batch's event-time key from the record at the batch start
            // and find the object there, so nothing is written again.
            let second = try EngineSetup(stack: stack, topic: topic, group: uniqueName("g2"), directory: dir.appendingPathComponent("b"),
                                         sink: setup.sinkURL, maxRecords: 3000, sinkExtra: Self.template)
            let again = try second.runEngine(idle: "4s")
            #expect(again.status == 0, "second instance failed: \(again.stderr.suffix(2000))")
            #expect(again.stderr.contains("object already holds this start offset"), "the probe never found an object")
            let after = try second.verify(expect: 24_000)
            #expect(after.ok, "not exactly once after the second instance: \(after.raw)")
            #expect(after.summary["parquet_objects"] as? Int == objects, "the second instance wrote objects again")
        }
    }

    @Test("the engine refuses a template with ingest time or a reserved partition name at start, naming sink.path")
    func refusedTemplates() throws {
        let stack = try LocalStack.current()
        for (path, words) in [("{topic}/dt={ingest_date}", "ingest time"), ("partition={partition}", "reserved word")] {
            try withTemporaryDirectory { dir in
                let setup = try EngineSetup(stack: stack, topic: uniqueName("evt-bad"), group: uniqueName("g"), directory: dir,
                                            sinkExtra: "path = \"\(path)\"")
                let run = try setup.runEngine(idle: "1s", timeout: 60)
                #expect(run.status != 0, "started with \(path)")
                #expect(run.stderr.contains("sink.path") && run.stderr.contains(words), "\(run.stderr.suffix(800))")
            }
        }
    }
}
