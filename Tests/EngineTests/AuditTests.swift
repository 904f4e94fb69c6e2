import Foundation
import TestSupport
import Testing

/// `etl-audit` on a real engine run: clean, then each kind of damage detected and named.
@Suite("etl-audit", .serialized)
struct AuditTests {
    func audit(_ setup: EngineSetup, _ args: [String] = []) throws -> (status: Int32, kinds: [String: Int], out: String) {
        let r = try runProcess(productsDirectory.appendingPathComponent("etl-audit").path,
                               ["--config", setup.configPath, "--json"] + args,
                               environment: EngineSetup.awsEnvironment, timeout: 120)
        let doc = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]
        return (r.status, (doc?["counts"] as? [String: Int]) ?? [:], r.stdout + r.stderr)
    }

    func parquetFiles(_ setup: EngineSetup) -> [String] {
        let root = setup.directory.appendingPathComponent("lake").path
        let e = FileManager.default.enumerator(atPath: root)!
        var out: [String] = []
        while let rel = e.nextObject() as? String {
            if rel.hasSuffix(".parquet") && !rel.contains("/.") && !rel.hasPrefix(".") { out.append(root + "/" + rel) }
        }
        return out.sorted()
    }

    @Test("a clean run is consistent (exit 0), shallow and deep; every kind of damage is named with exit 1")
    func cleanThenDamage() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let group = uniqueName("g")
            let setup = try EngineSetup(stack: stack, topic: uniqueName("audit"), group: group, directory: dir, maxRecords: 2500)
            try setup.produce(count: 20_000, badFraction: 0.01)
            #expect(try setup.runEngine().status == 0)

            let clean = try audit(setup)
            #expect(clean.status == 0, "clean audit: \(clean.out)")
            #expect(clean.kinds.isEmpty)
            let deep = try audit(setup, ["--deep"])
            #expect(deep.status == 0, "clean deep audit: \(deep.out)")

            let files = parquetFiles(setup)
            #expect(files.count >= 8)

            // Kafka offset moved back on partition 0: offset_behind.
            let rewind = try runPythonTool("kafka_tool.py", ["commit", "--bootstrap", stack.kafkaBootstrap, "--topic", setup.topic,
                                                             "--group", group, "--partition", "0", "--offset", "3"])
            #expect(rewind.status == 0, "\(rewind.stderr)")
            var r = try audit(setup)
            #expect(r.status == 1)
            #expect(r.kinds["offset_behind"] == 1, "\(r.out)")
            // ... and forward past the chain: offset_ahead.
            _ = try runPythonTool("kafka_tool.py", ["commit", "--bootstrap", stack.kafkaBootstrap, "--topic", setup.topic,
                                                    "--group", group, "--partition", "0", "--offset", "999999"])
            r = try audit(setup)
            #expect(r.kinds["offset_ahead"] == 1, "\(r.out)")

            // An extra object the manifest does not know.
            let extra = (files[0] as NSString).deletingLastPathComponent + "/stray.parquet"
            try Data("not ours".utf8).write(to: URL(fileURLWithPath: extra))
            r = try audit(setup)
            #expect(r.kinds["unknown_object"] == 1, "\(r.out)")
            try FileManager.default.removeItem(atPath: extra)

            // A deleted object.
            try FileManager.default.removeItem(atPath: files[1])
            r = try audit(setup)
            #expect(r.kinds["missing_object"] == 1, "\(r.out)")

            // An object replaced by different bytes of the same size: only --deep can see it.
            let victim = files[2]
            var bytes = try Data(contentsOf: URL(fileURLWithPath: victim))
            bytes[bytes.count / 2] ^= 0xFF
            try bytes.write(to: URL(fileURLWithPath: victim + ".new"))
            #expect(rename(victim + ".new", victim) == 0)
            r = try audit(setup, ["--deep"])
            #expect(r.kinds["content_sha256_mismatch"] == 1, "\(r.out)")

            // A truncated object: size mismatch, and an unreadable footer in deep mode.
            let short = files[3]
            let full = try Data(contentsOf: URL(fileURLWithPath: short))
            try full.prefix(full.count / 2).write(to: URL(fileURLWithPath: short + ".new"))
            #expect(rename(short + ".new", short) == 0)
            r = try audit(setup, ["--deep"])
            #expect(r.kinds["size_mismatch"] == 1, "\(r.out)")
            #expect(r.kinds["unreadable_parquet"] == 1, "\(r.out)")

            // Manifest rows edited: a recorded ETag, a recorded hash, a range. The ETag and the
            // gap are visible from the listing alone; the hash needs --deep.
            let db = dir.appendingPathComponent("state/manifest.sqlite").path
            let lakeRoot = dir.appendingPathComponent("lake").path
            let untouched = String(files[5].dropFirst(lakeRoot.count + 1))   // objects 1-3 were damaged above
            let edit = try runProcess("sqlite3", [db, """
                UPDATE batches SET etag = 'ffff', file_sha256 = 'ffff' WHERE object_key = '\(untouched)';
                UPDATE batches SET start_offset = start_offset + 7, good_count = good_count - 7
                  WHERE id = (SELECT max(id) FROM batches WHERE state = 'COMMITTED' AND good_count > 100);
                """])
            #expect(edit.status == 0, "\(edit.stderr)")
            r = try audit(setup)
            #expect((r.kinds["etag_mismatch"] ?? 0) >= 1, "\(r.out)")
            #expect((r.kinds["gap"] ?? 0) >= 1, "\(r.out)")
            r = try audit(setup, ["--deep"])
            #expect((r.kinds["sha256_mismatch"] ?? 0) >= 1, "\(r.out)")
            #expect((r.kinds["content_sha256_mismatch"] ?? 0) >= 1, "\(r.out)")
        }
    }

    @Test("an overlapping object from another writer is reported as an overlap")
    func overlapFromSecondWriter() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let topic = uniqueName("audit-o")
            let lake = "file://\(dir.appendingPathComponent("lake").path)"
            let a = try EngineSetup(stack: stack, topic: topic, group: uniqueName("ga"), directory: dir.appendingPathComponent("a"),
                                    sink: lake, maxRecords: 3000)
            try a.produce(count: 6000, partitions: 1)
            #expect(try a.runEngine().status == 0)
            // A second writer with different batch boundaries and its own prefix-less view: it
            // probes, finds A's objects at its start offsets and skips them, so no overlap...
            // ...unless it writes where no object starts. Simulate that with an object copied
            // under a start offset inside A's first batch.
            let files = try FileManager.default.subpathsOfDirectory(atPath: dir.appendingPathComponent("lake").path)
                .filter { $0.hasSuffix("+00000000000000000000.parquet") }
            #expect(files.count == 1)
            let src = dir.appendingPathComponent("lake").appendingPathComponent(files[0]).path
            let dst = src.replacingOccurrences(of: "+00000000000000000000.parquet", with: "+00000000000000000100.parquet")
            let cp = try runProcess("cp", ["-p", "--preserve=xattr", src, dst])
            #expect(cp.status == 0, "\(cp.stderr)")
            let r = try audit(a)
            #expect(r.status == 1)
            #expect(r.kinds["unknown_object"] == 1, "\(r.out)")
            #expect((r.kinds["overlap"] ?? 0) >= 1, "\(r.out)")
        }
    }

    @Test("exit 2 when the audit cannot run: missing config, missing manifest, bad option, unreachable store")
    func couldNotRun() throws {
        try withTemporaryDirectory { dir in
            let bin = productsDirectory.appendingPathComponent("etl-audit").path
            let state = dir.appendingPathComponent("state").path
            func config(_ name: String, sink: String, manifest: String) throws -> String {
                let path = dir.appendingPathComponent(name).path
                try """
                    [kafka]
                    brokers = "127.0.0.1:9"
                    topics = ["t"]
                    [sink]
                    url = "\(sink)"
                    endpoint = "http://127.0.0.1:9"
                    [staging]
                    dir = "\(dir.appendingPathComponent("staging").path)"
                    manifest = "\(manifest)"
                    """.write(toFile: path, atomically: true, encoding: .utf8)
                return path
            }
            let fileSink = "file://\(dir.appendingPathComponent("lake").path)"

            let noConfig = try runProcess(bin, ["--config", dir.appendingPathComponent("absent.toml").path])
            #expect(noConfig.status == 2)
            #expect(noConfig.stderr.contains("absent.toml"), "\(noConfig.stderr)")

            let missing = state + "/nothing-here.sqlite"
            let noManifest = try runProcess(bin, ["--config", try config("m.toml", sink: fileSink, manifest: missing)])
            #expect(noManifest.status == 2)
            #expect(noManifest.stderr.contains(missing), "\(noManifest.stderr)")

            // A real (empty) manifest, created by etl-recover on a file:// sink: audits clean...
            let good = try config("good.toml", sink: fileSink, manifest: state + "/manifest.sqlite")
            #expect(try runProcess(productsDirectory.appendingPathComponent("etl-recover").path,
                                   ["--config", good, "--no-upload"], timeout: 60).status == 0)
            #expect(try runProcess(bin, ["--config", good]).status == 0)
            let badValue = try runProcess(bin, ["--config", good, "--since", "yesterday"])
            #expect(badValue.status == 2)
            #expect(badValue.stderr.contains("yesterday"), "\(badValue.stderr)")
            let both = try runProcess(bin, ["--config", good, "--since", "1h", "--partition", "t:0"])
            #expect(both.status == 2, "\(both.stderr)")

            // ...but the same manifest against an S3 endpoint where nothing listens cannot be audited.
            let s3 = try config("s3.toml", sink: "s3://tidemark-nowhere/p", manifest: state + "/manifest.sqlite")
            let down = try runProcess(bin, ["--config", s3], environment: EngineSetup.awsEnvironment, timeout: 120)
            #expect(down.status == 2)
            #expect(down.stderr.contains("cannot run") && down.stderr.contains("tidemark-nowhere"), "\(down.stderr)")
        }
    }
}
