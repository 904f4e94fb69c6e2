import Foundation
import TestSupport
import Testing

/// `etl-recover` on states made for real: an engine killed mid-upload by a failpoint, plus
/// hand-made damage; then the plan, the result, idempotence, and exactly-once after a restart.
@Suite("etl-recover", .serialized)
struct RecoverTests {
    func recover(_ setup: EngineSetup, _ args: [String] = []) throws -> (status: Int32, doc: [String: Any], out: String) {
        let r = try runProcess(productsDirectory.appendingPathComponent("etl-recover").path,
                               ["--config", setup.configPath, "--json", "--yes"] + args,
                               environment: EngineSetup.awsEnvironment, timeout: 180)
        let doc = ((try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]) ?? [:]
        return (r.status, doc, r.stdout + r.stderr)
    }

    func actions(_ doc: [String: Any]) -> [[String: Any]] { (doc["actions"] as? [[String: Any]]) ?? [] }

    @Test("mid-upload crash plus a corrupted staged file: dry run plans, recover resumes one and abandons the other, a second run changes nothing, restart is exactly once")
    func crashAndDamage() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let setup = try EngineSetup(stack: stack, topic: uniqueName("rec"), group: uniqueName("g"), directory: dir,
                                        maxRecords: 15_000, partSize: "5MiB", compression: "none")
            try setup.produce(count: 40_000, partitions: 1, badFraction: 0.005, pad: 600)
            // Dies after the first part of the second batch: batch 1 is COMMITTED or UPLOADED,
            // batch 2 is UPLOADING with one part; more batches may be STAGED.
            let crashed = try setup.runEngine(failpoints: "after_part_upload@4")
            #expect(crashed.status == 137, "\(crashed.stderr.suffix(1000))")

            // Hand-made damage: corrupt the last STAGED batch's file, if there is one.
            let staged = try runProcess("sqlite3", [dir.appendingPathComponent("state/manifest.sqlite").path,
                                                    "SELECT file_path FROM batches WHERE state = 'STAGED' ORDER BY start_offset DESC LIMIT 1"])
            let corrupt = staged.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            if !corrupt.isEmpty {
                let h = try FileHandle(forUpdating: URL(fileURLWithPath: corrupt))
                try h.seek(toOffset: 100)
                h.write(Data("garbage".utf8))
                try h.close()
            }

            let plan = try recover(setup, ["--dry-run"])
            #expect(plan.status == 0, "\(plan.out)")
            #expect(plan.doc["dryRun"] as? Bool == true)
            let planned = actions(plan.doc).filter { $0["kind"] as? String == "finish_batch" }
            #expect(planned.contains { $0["stateBefore"] as? String == "UPLOADING" }, "\(plan.out)")

            let applied = try recover(setup)
            #expect(applied.status == 0, "\(applied.out)")
            let batches = actions(applied.doc).filter { $0["kind"] as? String == "finish_batch" }
            #expect(batches.contains { $0["stateBefore"] as? String == "UPLOADING" && ($0["stateAfter"] as? String == "UPLOADED" || $0["stateAfter"] as? String == "COMMITTED") }, "\(applied.out)")
            if !corrupt.isEmpty {
                #expect(batches.contains { $0["stateAfter"] as? String == "ABANDONED" }, "\(applied.out)")
                let quarantined = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("staging/quarantine").path)
                #expect(!quarantined.isEmpty, "the corrupt file is moved aside, not deleted")
            }

            let again = try recover(setup)
            #expect(again.status == 0, "\(again.out)")
            #expect(again.doc["consistent"] as? Bool == true, "second run must change nothing: \(again.out)")

            let restarted = try setup.runEngine()
            #expect(restarted.status == 0, "\(restarted.stderr.suffix(1500))")
            let v = try setup.verify(expect: 40_000)
            #expect(v.ok, "not exactly once after recover + restart: \(v.raw)")
            #expect(setup.leftoverStagedFiles().isEmpty)
            let audit = try runProcess(productsDirectory.appendingPathComponent("etl-audit").path, ["--config", setup.configPath],
                                       environment: EngineSetup.awsEnvironment, timeout: 120)
            #expect(audit.status == 0, "audit after recovery: \(audit.stdout)")
        }
    }

    @Test("refuses to run while an engine holds the manifest lock, naming its PID (exit 2)")
    func lockHeld() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let setup = try EngineSetup(stack: stack, topic: uniqueName("rec-l"), group: uniqueName("g"), directory: dir)
            try setup.produce(count: 1000)
            let engine = Process()
            engine.executableURL = productsDirectory.appendingPathComponent("etl-engine")
            engine.arguments = ["--config", setup.configPath]
            engine.standardError = FileHandle.nullDevice
            engine.standardOutput = FileHandle.nullDevice
            try engine.run()
            defer {
                kill(engine.processIdentifier, SIGKILL)
                engine.waitUntilExit()
            }
            let lock = dir.appendingPathComponent("state/manifest.sqlite.lock").path
            let deadline = Date().addingTimeInterval(30)
            while !FileManager.default.fileExists(atPath: lock) && Date() < deadline { usleep(100_000) }
            usleep(500_000)
            let r = try recover(setup)
            #expect(r.status == 2, "\(r.out)")
            #expect(r.out.contains("locked by process \(engine.processIdentifier)"), "\(r.out)")
        }
    }
}

extension RecoverTests {
    func sqlite(_ dir: URL, _ sql: String) throws -> String {
        let r = try runProcess("sqlite3", [dir.appendingPathComponent("state/manifest.sqlite").path, sql])
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("a STAGED batch whose file was deleted is ABANDONED (offsets not committed); the restart re-reads it exactly once")
    func deletedStagedFile() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let setup = try EngineSetup(stack: stack, topic: uniqueName("rec-d"), group: uniqueName("g"), directory: dir, maxRecords: 3000)
            try setup.produce(count: 12_000, partitions: 1)
            #expect(try setup.runEngine(failpoints: "after_manifest_staged@1").status == 137)
            let path = try sqlite(dir, "SELECT file_path FROM batches WHERE state = 'STAGED' LIMIT 1")
            #expect(!path.isEmpty)
            try FileManager.default.removeItem(atPath: path)
            let r = try recover(setup)
            #expect(r.status == 0, "\(r.out)")
            #expect(actions(r.doc).contains { $0["stateAfter"] as? String == "ABANDONED" && ($0["detail"] as? String ?? "").contains("missing") }, "\(r.out)")
            #expect(try sqlite(dir, "SELECT count(*) FROM batches WHERE state = 'ABANDONED'") == "1")
            #expect(try setup.runEngine().status == 0)
            let v = try setup.verify(expect: 12_000)
            #expect(v.ok, "\(v.raw)")
        }
    }

    @Test("an UPLOADED batch whose object was deleted before the commit is ABANDONED and re-read; the restart lands it once")
    func deletedObject() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let setup = try EngineSetup(stack: stack, topic: uniqueName("rec-del"), group: uniqueName("g"), directory: dir, maxRecords: 3000)
            try setup.produce(count: 12_000, partitions: 1)
            #expect(try setup.runEngine(failpoints: "after_manifest_uploaded@1").status == 137)
            let key = try sqlite(dir, "SELECT object_key FROM batches WHERE state = 'UPLOADED' LIMIT 1")
            #expect(!key.isEmpty)
            try FileManager.default.removeItem(atPath: dir.appendingPathComponent("lake").appendingPathComponent(key).path)
            let r = try recover(setup)
            #expect(r.status == 0, "\(r.out)")
            #expect(actions(r.doc).contains { $0["stateBefore"] as? String == "UPLOADED" && $0["stateAfter"] as? String == "ABANDONED" }, "\(r.out)")
            #expect(try setup.runEngine().status == 0)
            let v = try setup.verify(expect: 12_000)
            #expect(v.ok, "\(v.raw)")
        }
    }

    @Test("an UPLOADING batch whose upload was aborted behind our back gets a new upload and lands once")
    func abortedUpload() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let setup = try EngineSetup(stack: stack, topic: uniqueName("rec-a"), group: uniqueName("g"), directory: dir,
                                        maxRecords: 15_000, partSize: "5MiB", compression: "none")
            try setup.produce(count: 20_000, partitions: 1, pad: 600)
            #expect(try setup.runEngine(failpoints: "after_part_upload@1").status == 137)
            let row = try sqlite(dir, "SELECT object_key || '|' || upload_id FROM batches WHERE state = 'UPLOADING' LIMIT 1")
            let parts = row.split(separator: "|").map(String.init)
            #expect(parts.count == 2, "no UPLOADING batch: \(row)")
            guard parts.count == 2 else { return }
            // Abort it through the store's own layout: FileStore keeps pending uploads under .uploads/.
            let lake = dir.appendingPathComponent("lake").path
            let uploads = try FileManager.default.subpathsOfDirectory(atPath: lake).filter { $0.contains(parts[1]) }
            #expect(!uploads.isEmpty, "pending upload \(parts[1]) not found under \(lake)")
            for u in uploads.sorted(by: { $0.count > $1.count }) { try? FileManager.default.removeItem(atPath: lake + "/" + u) }
            let r = try recover(setup)
            #expect(r.status == 0, "\(r.out)")
            #expect(actions(r.doc).contains { $0["stateBefore"] as? String == "UPLOADING" && $0["stateAfter"] as? String == "UPLOADED" }, "\(r.out)")
            #expect(try setup.runEngine().status == 0)
            let v = try setup.verify(expect: 20_000)
            #expect(v.ok, "\(v.raw)")
        }
    }

    @Test("a rewound Kafka offset is planned to advance to the chain's end + 1; refused commits are reported as needing attention")
    func rewoundOffset() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let group = uniqueName("g")
            let setup = try EngineSetup(stack: stack, topic: uniqueName("rec-k"), group: group, directory: dir, maxRecords: 2000)
            try setup.produce(count: 6000, partitions: 1)
            #expect(try setup.runEngine().status == 0)
            let rewind = try runPythonTool("kafka_tool.py", ["commit", "--bootstrap", stack.kafkaBootstrap, "--topic", setup.topic,
                                                             "--group", group, "--partition", "0", "--offset", "10"])
            #expect(rewind.status == 0, "\(rewind.stderr)")
            let plan = try recover(setup, ["--dry-run"])
            let advance = actions(plan.doc).first { $0["kind"] as? String == "advance_offset" }
            #expect(advance?["startOffset"] as? Int == 10, "\(plan.out)")
            #expect(advance?["endOffset"] as? Int == 5999, "\(plan.out)")
            // Applying it: Kafka accepts a non-member commit only while the group is empty; the
            // dev broker refuses it once the group has had members. Either way the outcome is explicit.
            let applied = try recover(setup)
            let kinds = actions(applied.doc).compactMap { $0["kind"] as? String }
            #expect(kinds.contains("advance_offset") || kinds.contains("attention"), "\(applied.out)")
            #expect(applied.status == (kinds.contains("attention") ? 1 : 0), "\(applied.out)")
        }
    }

    @Test("a multipart upload no batch owns, older than the grace period, is aborted; a second run has nothing to do")
    func orphanUpload() throws {
        let stack = try LocalStack.current()
        let bucket = uniqueName("rec-o")
        try createBucket(bucket, stack: stack)
        try withTemporaryDirectory { dir in
            let setup = try EngineSetup(stack: stack, topic: uniqueName("rec-o"), group: uniqueName("g"), directory: dir,
                                        sink: "s3://\(bucket)/lake", extra: "orphan_upload_grace = \"0s\"")
            try setup.produce(count: 2000)
            #expect(try setup.runEngine().status == 0)
            let create = try runProcess("python3", ["-c", """
                import boto3, sys
                s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
                print(s3.create_multipart_upload(Bucket=sys.argv[2], Key="lake/topic=x/orphan.parquet")["UploadId"])
                """, stack.s3Endpoint, bucket], environment: EngineSetup.awsEnvironment)
            #expect(create.status == 0, "\(create.stderr)")
            sleep(1)
            let r = try recover(setup)
            #expect(r.status == 0, "\(r.out)")
            #expect(actions(r.doc).contains { $0["kind"] as? String == "abort_orphan_upload" }, "\(r.out)")
            let left = try runProcess("python3", ["-c", """
                import boto3, sys
                s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
                print(len(s3.list_multipart_uploads(Bucket=sys.argv[2]).get("Uploads", [])))
                """, stack.s3Endpoint, bucket], environment: EngineSetup.awsEnvironment)
            #expect(left.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
            let again = try recover(setup)
            #expect(again.doc["consistent"] as? Bool == true, "\(again.out)")
        }
    }
}
