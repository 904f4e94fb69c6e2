import Foundation
import TestSupport
import Testing

/// `etl-audit --fleet` on two real engines of one group sharing a file:// sink, with the group's
/// committed offsets and log start offsets read from the broker.
@Suite("etl-audit --fleet", .serialized)
struct FleetAuditIntegrationTests {
    func fleetAudit(_ setup: EngineSetup, _ args: [String] = []) throws -> (status: Int32, doc: [String: Any], found: Set<String>, out: String) {
        let r = try runProcess(productsDirectory.appendingPathComponent("etl-audit").path,
                               ["--config", setup.configPath, "--fleet", "--json"] + args,
                               environment: EngineSetup.awsEnvironment, timeout: 120)
        let doc = ((try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]) ?? [:]
        var found = Set<String>()
        for d in (doc["discrepancies"] as? [[String: Any]]) ?? [] {
            let p = (d["partition"] as? Int).map(String.init) ?? "-"
            let s = (d["startOffset"] as? Int).map(String.init) ?? "-"
            let e = (d["endOffset"] as? Int).map(String.init) ?? "-"
            found.insert("\(d["kind"] as? String ?? "?") \(p) \(s)...\(e)")
        }
        return (r.status, doc, found, r.stdout + r.stderr)
    }

    /// Every object under the lake with its tidemark metadata, read from the FileStore's xattr
    /// with Python (not our code): relative path -> metadata.
    func objects(_ lake: String) throws -> [String: [String: String]] {
        let r = try runProcess("python3", ["-c", """
            import json, os, sys
            root, out = sys.argv[1], {}
            for dp, dn, fn in os.walk(root):
                dn[:] = [d for d in dn if not d.startswith(".tidemark")]
                for f in fn:
                    p = os.path.join(dp, f)
                    try:
                        a = json.loads(os.getxattr(p, "user.tidemark"))
                    except OSError:
                        continue
                    out[os.path.relpath(p, root)] = a.get("metadata", {})
            print(json.dumps(out))
            """, lake])
        #expect(r.status == 0, "\(r.stderr)")
        return ((try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: [String: String]]) ?? [:]
    }

    @Test("two engines, one group: --fleet is consistent (exit 0); gap, hole before the first object, overlap, orphan dead letter, old upload and a commit past the chain are named (exit 1)")
    func twoEngines() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let topic = uniqueName("fleet")
            let group = uniqueName("g")
            let lakePath = dir.appendingPathComponent("lake").path
            let lake = "file://\(lakePath)"
            let a = try EngineSetup(stack: stack, topic: topic, group: group, directory: dir.appendingPathComponent("a"),
                                    sink: lake, maxRecords: 1000)
            let b = try EngineSetup(stack: stack, topic: topic, group: group, directory: dir.appendingPathComponent("b"),
                                    sink: lake, maxRecords: 1000)
            try a.produce(count: 20_000, badFraction: 0.01)
            let results = Mutex2<[ProcessResult]>([])
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                if let r = try? (i == 0 ? a : b).runEngine(idle: "6s") { results.append(r) }
            }
            #expect(results.value.count == 2)
            for r in results.value { #expect(r.status == 0, "\(r.stderr.suffix(1500))") }

            let all = try objects(lakePath)
            let parquet = all.filter { $0.key.hasSuffix(".parquet") }
            let clean = try fleetAudit(a)
            #expect(clean.status == 0, "\(clean.out)")
            #expect(clean.doc["consistent"] as? Bool == true)
            #expect(clean.doc["mode"] as? String == "fleet")
            #expect(clean.doc["objects"] as? Int == all.count)
            #expect(clean.doc["batches"] as? Int == parquet.count)
            #expect(clean.doc["partitions"] as? Int == 4)
            #expect(((clean.doc["records"] as? Int) ?? 0) + ((clean.doc["rejectedRecords"] as? Int) ?? 0) == 20_000)
            // Either engine's config gives the same answer.
            #expect(try fleetAudit(b).status == 0)

            // Each partition's chain, from the metadata (read by Python).
            var chains: [Int: [(start: Int, end: Int, path: String)]] = [:]
            for (path, m) in parquet {
                chains[Int(m["tidemark-partition"]!)!, default: []].append((Int(m["tidemark-start"]!)!, Int(m["tidemark-end"]!)!, path))
            }
            for p in 0..<4 { chains[p]?.sort { $0.start < $1.start } }
            guard let c0 = chains[0], let c1 = chains[1], let c2 = chains[2], let c3 = chains[3],
                  c0.count >= 3, c1.count >= 2, c2.count >= 2, !c3.isEmpty, c2[0].end - c2[0].start >= 10 else {
                Issue.record("each partition should have several objects: \(chains.mapValues(\.count))")
                return
            }
            var expected = Set<String>()
            // Partition 0: the middle object deleted -> a gap in the middle.
            try FileManager.default.removeItem(atPath: lakePath + "/" + c0[1].path)
            expected.insert("gap 0 \(c0[1].start)...\(c0[2].start - 1)")
            // Partition 1: the first object deleted -> a hole before the first object, below the
            // committed offset (the log start is 0).
            try FileManager.default.removeItem(atPath: lakePath + "/" + c1[0].path)
            expected.insert("gap 1 0...\(c1[1].start - 1)")
            // Partition 2: a copy of its first object relabelled to start 5 offsets later -> overlap.
            let src = lakePath + "/" + c2[0].path
            let newStart = c2[0].start + 5
            let dst = (src as NSString).deletingLastPathComponent + "/\(topic)+2+\(String(format: "%020d", newStart)).parquet"
            let cp = try runProcess("python3", ["-c", """
                import json, os, shutil, sys
                src, dst, start = sys.argv[1], sys.argv[2], sys.argv[3]
                shutil.copyfile(src, dst)
                a = json.loads(os.getxattr(src, "user.tidemark"))
                a["metadata"]["tidemark-start"] = start
                a["metadata"]["tidemark-rejected"] = "0"
                os.setxattr(dst, "user.tidemark", json.dumps(a).encode())
                """, src, dst, String(newStart)])
            #expect(cp.status == 0, "\(cp.stderr)")
            expected.insert("overlap 2 \(newStart)...\(c2[0].end)")
            // Partition 3: a dead-letter object for a range its first object's start does not end at -> orphan.
            let dt = c3[0].path.split(separator: "/").first { $0.hasPrefix("dt=") }!
            let dlDir = "\(lakePath)/_rejected/topic=\(topic)/\(dt)/partition=3"
            try FileManager.default.createDirectory(atPath: dlDir, withIntermediateDirectories: true)
            let orphanEnd = c3[0].end + 1
            try Data("{}\n".utf8).write(to: URL(fileURLWithPath: dlDir + "/\(topic)+3+\(String(format: "%020d", c3[0].start))+\(String(format: "%020d", orphanEnd)).jsonl"))
            expected.insert("orphan_rejected 3 \(c3[0].start)...\(orphanEnd)")
            // A multipart upload started in 2001 (the FileStore's upload record, written by hand).
            let uploadID = UUID().uuidString.lowercased()
            let uploadDir = "\(lakePath)/.tidemark-uploads/\(uploadID)"
            try FileManager.default.createDirectory(atPath: uploadDir, withIntermediateDirectories: true)
            let uploadKey = "topic=\(topic)/\(dt)/partition=3/\(topic)+3+\(String(format: "%020d", 99_999_999)).parquet"
            try Data(#"{"key": "\#(uploadKey)", "metadata": {}, "initiated": 0}"#.utf8).write(to: URL(fileURLWithPath: uploadDir + "/upload.json"))
            expected.insert("stale_upload 3 99999999...-")
            // Partition 3: Kafka's committed offset moved 50 past the chain's end.
            let end3 = c3.last!.end
            let commit = try runPythonTool("kafka_tool.py", ["commit", "--bootstrap", stack.kafkaBootstrap, "--topic", topic,
                                                             "--group", group, "--partition", "3", "--offset", "\(end3 + 51)"])
            #expect(commit.status == 0, "\(commit.stderr)")
            expected.insert("gap 3 \(end3 + 1)...\(end3 + 50)")

            let r = try fleetAudit(a)
            #expect(r.status == 1, "\(r.out)")
            #expect(r.doc["consistent"] as? Bool == false)
            #expect(r.found == expected, "\(r.out)")

            // Human-readable form, and the partition filter.
            let text = try runProcess(productsDirectory.appendingPathComponent("etl-audit").path,
                                      ["--config", a.configPath, "--fleet", "--partition", "\(topic):0"],
                                      environment: EngineSetup.awsEnvironment, timeout: 120)
            #expect(text.status == 1)
            #expect(text.stdout.contains("etl-audit (fleet)") && !text.stdout.contains("orphan_rejected")
                    && text.stdout.contains("gap \(topic)[0] \(c0[1].start)...\(c0[2].start - 1)"), "\(text.stdout)")
        }
    }

    @Test("--fleet with --deep or --since, or a bad --concurrency, cannot run (exit 2)")
    func badCombinations() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("t.toml").path
            try """
                [kafka]
                brokers = "127.0.0.1:9"
                topics = ["t"]
                [sink]
                url = "file://\(dir.appendingPathComponent("lake").path)"
                [staging]
                dir = "\(dir.appendingPathComponent("staging").path)"
                manifest = "\(dir.appendingPathComponent("m.sqlite").path)"
                """.write(toFile: path, atomically: true, encoding: .utf8)
            let bin = productsDirectory.appendingPathComponent("etl-audit").path
            for extra in [["--deep"], ["--since", "1h"], ["--concurrency", "0"]] {
                let r = try runProcess(bin, ["--config", path, "--fleet"] + extra)
                #expect(r.status == 2, "\(extra): \(r.stderr)")
            }
        }
    }
}
