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

    @Test("JSON logs with epoch-ms times: paths follow the configured event_time_field, and a fresh instance writes nothing again")
    func jsonEventTime() throws {
        let stack = try LocalStack.current()
        let topic = uniqueName("evt-json")
        let mapping = """
            [input]
            format = "json"
            [schema]
            event_time_field = "ts"
            [[schema.fields]]
            name = "ts"
            source = "t"
            type = "timestamp"
            timestamp_format = "epoch_ms"
            required = true
            [[schema.fields]]
            name = "message"
            source = "msg"
            """
        try withTemporaryDirectory { dir in
            // 6,000 records, 1.5 s of event time apart over 2 partitions (2.5 hours), 3% late by
            // up to 30 minutes; every 100th has no "t" (rejected: it never cuts).
            let gen = try runProcess("python3", ["-c", """
                import json, random, sys
                from confluent_kafka import Producer
                rng = random.Random(7)
                p = Producer({"bootstrap.servers": sys.argv[1], "enable.idempotence": True, "acks": "all", "linger.ms": 20})
                base = 1796083200000  # 2026-12-01T00:00:00Z
                for i in range(6000):
                    t = base + i * 1500 - (rng.randint(0, 1800000) if rng.random() < 0.03 else 0)
                    doc = {"msg": f"record {i}", "n": i}
                    if i % 100 != 99:
                        doc["t"] = t
                    p.produce(sys.argv[2], json.dumps(doc).encode(), partition=i % 2)
                assert p.flush(30) == 0
                """, stack.kafkaBootstrap, topic], timeout: 120)
            #expect(gen.status == 0, "\(gen.stderr)")
            let setup = try EngineSetup(stack: stack, topic: topic, group: uniqueName("g"), directory: dir.appendingPathComponent("a"),
                                        maxRecords: 1000, sinkExtra: Self.template, extra: mapping)
            let run = try setup.runEngine(idle: "4s")
            #expect(run.status == 0, "engine failed: \(run.stderr.suffix(2000))")
            let layout = try runPythonTool("check_layout.py", ["--sink", setup.sinkURL, "--column", "ts"])
            #expect(layout.status == 0, "rows outside their path: \(layout.stdout) \(layout.stderr.suffix(1500))")
            let summary = (try? JSONSerialization.jsonObject(with: Data(layout.stdout.utf8))) as? [String: Any] ?? [:]
            #expect(summary["rows"] as? Int == 5940, "every record with a time lands once: \(layout.stdout)")
            #expect((summary["paths"] as? Int ?? 0) >= 3, "\(layout.stdout)")
            let second = try EngineSetup(stack: stack, topic: topic, group: uniqueName("g2"), directory: dir.appendingPathComponent("b"),
                                         sink: setup.sinkURL, maxRecords: 700, sinkExtra: Self.template, extra: mapping)
            let again = try second.runEngine(idle: "4s")
            #expect(again.status == 0, "second instance failed: \(again.stderr.suffix(2000))")
            let after = try runPythonTool("check_layout.py", ["--sink", setup.sinkURL, "--column", "ts"])
            let afterSummary = (try? JSONSerialization.jsonObject(with: Data(after.stdout.utf8))) as? [String: Any] ?? [:]
            #expect(afterSummary["objects"] as? Int == summary["objects"] as? Int && afterSummary["rows"] as? Int == 5940,
                    "the second instance wrote again: \(summary) -> \(after.stdout)")
        }
    }

    @Test("the engine refuses at start, naming sink.path: ingest time, a reserved partition name, event time without an event-time field")
    func refusedTemplates() throws {
        let stack = try LocalStack.current()
        for (path, words, extra) in [("{topic}/dt={ingest_date}", "ingest time", ""), ("partition={partition}", "reserved word", ""),
                                     ("dt={event_date}", "have no event time", "[input]\nformat = \"raw\"")] {
            try withTemporaryDirectory { dir in
                let setup = try EngineSetup(stack: stack, topic: uniqueName("evt-bad"), group: uniqueName("g"), directory: dir,
                                            sinkExtra: "path = \"\(path)\"", extra: extra)
                let run = try setup.runEngine(idle: "1s", timeout: 60)
                #expect(run.status != 0, "started with \(path)")
                #expect(run.stderr.contains("sink.path") && run.stderr.contains(words), "\(run.stderr.suffix(800))")
            }
        }
    }
}
