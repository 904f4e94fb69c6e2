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
