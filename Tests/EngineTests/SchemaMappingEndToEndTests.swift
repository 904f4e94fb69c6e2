import Foundation
import TestSupport
import Testing

/// Configured schemas through the engine (issue 20): records produced by the Python client with
/// keys and headers, the engine run as a subprocess with a mapping config, the Parquet read back
/// with pyarrow (not our reader) and the dead-letter files read as JSON lines.
@Suite("etl-engine end to end: configured schema", .serialized)
struct SchemaMappingEndToEndTests {
    struct Record {
        var value: [UInt8]
        var key: [UInt8]?
        var headers: [(String, [UInt8]?)]
        var partition: Int
    }

    /// Produces `records` with confluent-kafka (keys, headers and partitions as given; the dev
    /// broker creates the topic with its default partition count, 4, on first use).
    static func produce(_ records: [Record], topic: String, stack: LocalStack, dir: URL) throws {
        let spec: [[String: Any]] = records.map { r in
            var d: [String: Any] = ["value": Data(r.value).base64EncodedString(), "partition": r.partition,
                                    "headers": r.headers.map { [$0.0, $0.1.map { Data($0).base64EncodedString() } as Any] }]
            if let k = r.key { d["key"] = Data(k).base64EncodedString() }
            return d
        }
        let path = dir.appendingPathComponent("records.json").path
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: path))
        let r = try runProcess("python3", ["-c", """
            import base64, json, sys
            from confluent_kafka import Producer
            p = Producer({"bootstrap.servers": sys.argv[1], "enable.idempotence": True, "acks": "all"})
            for r in json.load(open(sys.argv[3])):
                hs = [(h[0], None if h[1] is None else base64.b64decode(h[1])) for h in r["headers"]]
                key = base64.b64decode(r["key"]) if "key" in r else None
                p.produce(sys.argv[2], value=base64.b64decode(r["value"]), key=key, headers=hs or None, partition=r["partition"])
            assert p.flush(30) == 0
            """, stack.kafkaBootstrap, topic, path], timeout: 120)
        guard r.status == 0 else { throw LocalStack.NotRunning(description: "producing failed: \(r.stderr)") }
    }

    /// The sink's rows (pyarrow; timestamps as integer microseconds), columns with their Arrow
    /// types, the footers' tidemark-schema entries, and the dead-letter lines.
    static func readSink(_ setup: EngineSetup) throws -> (columns: [[String]], rows: [[String: Any]], schemas: Set<String>, rejected: [[String: Any]]) {
        let lake = setup.directory.appendingPathComponent("lake").path
        let r = try runProcess("python3", ["-c", """
            import glob, json, os, sys
            import pyarrow as pa, pyarrow.parquet as pq
            root = sys.argv[1]
            files = sorted(f for f in glob.glob(root + "/**/*.parquet", recursive=True) if "/_rejected/" not in f)
            columns, rows, schemas = None, [], set()
            for f in files:
                t = pq.read_table(f)
                meta = pq.read_metadata(f).metadata
                schemas.add(meta[b"tidemark-schema-fingerprint"].decode() + " " + meta[b"tidemark-schema"].decode())
                cols = [[fld.name, str(fld.type), str(fld.nullable)] for fld in t.schema]
                assert columns in (None, cols), (columns, cols)
                columns = cols
                for i, fld in enumerate(t.schema):
                    if pa.types.is_timestamp(fld.type):
                        t = t.set_column(i, fld.name, t.column(i).cast(pa.int64()))
                rows += t.to_pylist()
            rejected = []
            for f in glob.glob(root + "/_rejected/**/*.jsonl", recursive=True):
                rejected += [json.loads(l) for l in open(f)]
            print(json.dumps({"columns": columns, "rows": rows, "schemas": sorted(schemas), "rejected": rejected}))
            """, lake], timeout: 120)
        guard r.status == 0, let doc = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] else {
            throw LocalStack.NotRunning(description: "reading the sink failed: \(r.stderr)")
        }
        return (doc["columns"] as? [[String]] ?? [], doc["rows"] as? [[String: Any]] ?? [],
                Set(doc["schemas"] as? [String] ?? []), doc["rejected"] as? [[String: Any]] ?? [])
    }

    static func micros(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1_000_000).rounded()) }

    @Test("JSON application logs with a mapping: typed columns, attributes, kafka_key and kafka_headers, rejects naming the field")
    func jsonAppLogs() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let topic = uniqueName("schema-json")
            let config = """
                [input]
                format = "json"
                [schema]
                include_key = true
                include_headers = true
                event_time_field = "time"
                [[schema.fields]]
                name = "time"
                source = "@timestamp"
                type = "timestamp"
                required = true
                [[schema.fields]]
                name = "level"
                default = "info"
                [[schema.fields]]
                name = "message"
                source = "msg"
                required = true
                [[schema.fields]]
                name = "status"
                source = "http.status"
                type = "int64"
                [[schema.fields]]
                name = "latency_ms"
                source = "$.http.latency_ms"
                type = "double"
                [[schema.fields]]
                name = "sampled"
                type = "bool"
                [[schema.fields]]
                name = "sent_at"
                type = "timestamp"
                timestamp_format = "epoch_ms"
                """
            let setup = try EngineSetup(stack: stack, topic: topic, group: uniqueName("g"), directory: dir, maxRecords: 120, extra: config)
            // 400 records over 2 partitions; every 50th lacks msg, every 70th has a non-integer status.
            let start = Date(timeIntervalSince1970: 1_796_000_000.25)
            let iso = ISO8601DateFormatter()
            iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            var records: [Record] = []
            var expected: [String: (time: Int64, level: String, status: Int64, latency: Double, sampled: Bool, sentAt: Int64, i: Int)] = [:]
            var bad: [Int: String] = [:]
            for i in 0..<400 {
                let t = start.addingTimeInterval(Double(i) * 1.5)
                let level = ["info", "warn", "error"][i % 3]
                let msg = "request \(i) \"quoted\" é"
                var obj: [String: Any] = ["@timestamp": iso.string(from: t), "level": level, "msg": msg, "service": "api",
                                          "http": ["method": "GET", "status": 200 + i % 5, "latency_ms": Double(i) / 4],
                                          "sampled": i % 2 == 0, "sent_at": Self.micros(t) / 1000 + 7, "trace": ["id": "t\(i)"]]
                if i % 50 == 49 { obj.removeValue(forKey: "msg"); bad[i] = "message" } else if i % 70 == 69 {
                    obj["http"] = ["status": "teapot"]; bad[i] = "status"
                }
                if bad[i] == nil {
                    expected[msg] = (Self.micros(t), level, Int64(200 + i % 5), Double(i) / 4, i % 2 == 0, (Self.micros(t) / 1000 + 7) * 1000, i)
                }
                let key: [UInt8]? = i % 4 == 0 ? nil : (i % 4 == 1 ? [0xFF, 0xFE, UInt8(i % 256)] : Array("user-\(i)".utf8))
                let headers: [(String, [UInt8]?)] = i % 3 == 0 ? [] : [("source", Array("svc-\(i % 3)".utf8)), ("empty", nil)]
                records.append(Record(value: Array(try JSONSerialization.data(withJSONObject: obj)), key: key, headers: headers, partition: i % 2))
            }
            try Self.produce(records, topic: topic, stack: stack, dir: dir)
            let run = try setup.runEngine(idle: "3s")
            #expect(run.status == 0, "engine failed: \(run.stderr.suffix(2000))")
            let sink = try Self.readSink(setup)
            #expect(sink.columns.map { $0[0] } == ["time", "level", "message", "status", "latency_ms", "sampled", "sent_at", "attributes",
                                                   "ingest_time", "kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp",
                                                   "kafka_key", "kafka_headers"])
            let types = Dictionary(uniqueKeysWithValues: sink.columns.map { ($0[0], $0[1]) })
            #expect(types["time"] == "timestamp[us, tz=UTC]")
            #expect(types["sent_at"] == "timestamp[us, tz=UTC]")
            #expect(types["status"] == "int64")
            #expect(types["latency_ms"] == "double")
            #expect(types["sampled"] == "bool")
            #expect(types["message"] == "string")
            #expect(types["kafka_partition"] == "int32")
            #expect(sink.columns.first { $0[0] == "time" }?[2] == "False", "a required field is a REQUIRED column")
            #expect(sink.columns.first { $0[0] == "status" }?[2] == "True")
            #expect(sink.schemas.count == 1, "one schema for the run: \(sink.schemas)")
            #expect(sink.rows.count == expected.count)
            var seen = Set<String>()
            for row in sink.rows {
                guard let msg = row["message"] as? String, let e = expected[msg] else { Issue.record("unexpected row \(row)"); continue }
                seen.insert(msg)
                #expect((row["time"] as? NSNumber)?.int64Value == e.time, "\(msg)")
                #expect(row["level"] as? String == e.level)
                #expect((row["status"] as? NSNumber)?.int64Value == e.status)
                #expect((row["latency_ms"] as? NSNumber)?.doubleValue == e.latency)
                #expect((row["sampled"] as? NSNumber)?.boolValue == e.sampled)
                #expect((row["sent_at"] as? NSNumber)?.int64Value == e.sentAt)
                #expect((row["kafka_partition"] as? NSNumber)?.intValue == e.i % 2)
                let attrs = (row["attributes"] as? String).flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                #expect(attrs?["service"] as? String == "api")
                #expect((attrs?["http"] as? [String: Any])?.keys.sorted() == ["method"], "only the unmapped part of http")
                #expect((attrs?["trace"] as? [String: Any])?["id"] as? String == "t\(e.i)")
                switch e.i % 4 {
                case 0: #expect(row["kafka_key"] is NSNull)
                case 1: #expect(row["kafka_key"] as? String == "base64:" + Data([0xFF, 0xFE, UInt8(e.i % 256)]).base64EncodedString())
                default: #expect(row["kafka_key"] as? String == "user-\(e.i)")
                }
                if e.i % 3 == 0 {
                    #expect(row["kafka_headers"] is NSNull)
                } else {
                    let h = (row["kafka_headers"] as? String).flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                    #expect(h?["source"] as? String == "svc-\(e.i % 3)")
                    #expect(h?["empty"] is NSNull)
                }
            }
            #expect(seen.count == expected.count, "every good record exactly once")
            #expect(sink.rejected.count == bad.count)
            for r in sink.rejected {
                let reason = r["reason"] as? String ?? ""
                #expect(reason.contains("'message'") || reason.contains("'status'"), "\(reason)")
            }
            // The deep audit accepts objects with the configured schema.
            let audit = try runProcess(productsDirectory.appendingPathComponent("etl-audit").path, ["--config", setup.configPath, "--deep"],
                                       environment: EngineSetup.awsEnvironment, timeout: 120)
            #expect(audit.status == 0, "etl-audit --deep: \(audit.stdout) \(audit.stderr.suffix(1500))")

            // The schema change rule at start: a retyped field is refused (exit 2, naming it)...
            let retyped = config.replacingOccurrences(of: "type = \"int64\"", with: "type = \"string\"")
            try (try String(contentsOfFile: setup.configPath, encoding: .utf8)).replacingOccurrences(of: config, with: retyped)
                .write(toFile: setup.configPath, atomically: true, encoding: .utf8)
            let refused = try setup.runEngine(idle: "2s")
            #expect(refused.status == 2)
            #expect(refused.stderr.contains("'status' changed type from int64 to string"), "\(refused.stderr.suffix(1500))")
            // ... an appended optional field is accepted.
            try (try String(contentsOfFile: setup.configPath, encoding: .utf8)).replacingOccurrences(of: retyped, with: config + "\n[[schema.fields]]\nname = \"service\"\n")
                .write(toFile: setup.configPath, atomically: true, encoding: .utf8)
            let extended = try setup.runEngine(idle: "2s")
            #expect(extended.status == 0, "\(extended.stderr.suffix(1500))")
        }
    }

    @Test("nginx access logs via regex: typed columns, time_local with %z as UTC microseconds, unmatched lines rejected")
    func nginxAccessLogs() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let topic = uniqueName("schema-nginx")
            // The example users are pointed to, as written (also what `make bench-parse` measures).
            let config = try String(contentsOf: LocalStack.packageRoot.appendingPathComponent("examples/nginx-access.toml"),
                                    encoding: .utf8)
            let setup = try EngineSetup(stack: stack, topic: topic, group: uniqueName("g"), directory: dir, extra: config)
            let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            var records: [Record] = []
            var expected: [String: (time: Int64, status: Int64, bytes: Int64, addr: String)] = [:]
            var calendar = Calendar(identifier: .gregorian)
            for i in 0..<300 {
                let offsetMinutes = [-420, 0, 330, 60][i % 4]
                let zone = TimeZone(secondsFromGMT: offsetMinutes * 60)!
                calendar.timeZone = zone
                let c = DateComponents(year: 2026, month: 1 + i % 12, day: 1 + i % 28, hour: i % 24, minute: i % 60, second: (i * 7) % 60)
                let date = calendar.date(from: c)!
                let sign = offsetMinutes < 0 ? "-" : "+"
                let tz = String(format: "%@%02d%02d", sign, abs(offsetMinutes) / 60, abs(offsetMinutes) % 60)
                let local = String(format: "%02d/%@/%04d:%02d:%02d:%02d %@", c.day!, months[c.month! - 1], c.year!, c.hour!, c.minute!, c.second!, tz)
                let path = "/item/\(i)?q=\"x\""
                let addr = "10.0.\(i / 256).\(i % 256)"
                let line = i % 40 == 39 ? "garbage line \(i)"
                    : "\(addr) - - [\(local)] \"GET \(path) HTTP/1.1\" \(200 + i % 3) \(i * 10) \"-\" \"curl/8.\(i)\""
                if i % 40 != 39 { expected["/item/\(i)?q=\"x\""] = (Self.micros(date), Int64(200 + i % 3), Int64(i * 10), addr) }
                records.append(Record(value: Array(line.utf8), key: nil, headers: [], partition: i % 2))
            }
            try Self.produce(records, topic: topic, stack: stack, dir: dir)
            let run = try setup.runEngine(idle: "3s")
            #expect(run.status == 0, "engine failed: \(run.stderr.suffix(2000))")
            let sink = try Self.readSink(setup)
            #expect(sink.columns.map { $0[0] } == ["time", "remote_addr", "method", "path", "status", "bytes", "user_agent",
                                                   "ingest_time", "kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp"])
            #expect(sink.columns.first { $0[0] == "time" }?[1] == "timestamp[us, tz=UTC]")
            #expect(sink.columns.first { $0[0] == "bytes" }?[1] == "int64")
            #expect(sink.rows.count == expected.count)
            for row in sink.rows {
                guard let path = row["path"] as? String, let e = expected[path] else { Issue.record("unexpected row \(row)"); continue }
                #expect((row["time"] as? NSNumber)?.int64Value == e.time, "\(path)")
                #expect((row["status"] as? NSNumber)?.int64Value == e.status)
                #expect((row["bytes"] as? NSNumber)?.int64Value == e.bytes)
                #expect(row["remote_addr"] as? String == e.addr)
                #expect(row["method"] as? String == "GET")
            }
            #expect(sink.rejected.count == 300 - expected.count)
            #expect(sink.rejected.allSatisfy { ($0["reason"] as? String)?.contains("input.pattern") == true })
        }
    }
}
