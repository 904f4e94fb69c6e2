import Foundation
import TestSupport
import Testing

/// `[manifest] retention` on real runs (docs/protocol.md, "Manifest retention"): the engine prunes
/// final rows, the manifest stays bounded, and restart, `etl-recover` and `etl-audit` still hold
/// every offset exactly once across the pruned horizon.
@Suite("manifest retention", .serialized)
struct ManifestRetentionTests {
    func tool(_ name: String, _ setup: EngineSetup, _ args: [String]) throws -> (status: Int32, doc: [String: Any], out: String) {
        let r = try runProcess(productsDirectory.appendingPathComponent(name).path, ["--config", setup.configPath, "--json"] + args,
                               environment: EngineSetup.awsEnvironment, timeout: 180)
        let doc = ((try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]) ?? [:]
        return (r.status, doc, r.stdout + r.stderr)
    }

    /// One column of one query against the manifest (the sqlite3 CLI: not our code).
    func sql(_ dir: URL, _ query: String) throws -> [String] {
        let r = try runProcess("sqlite3", [dir.appendingPathComponent("state/manifest.sqlite").path, query])
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.split(separator: "\n").map(String.init)
    }

    @Test("retention 1s: the engine prunes to one row per partition (fails without pruning); audit, etl-recover, a crash and a restart stay exactly once across the horizon")
    func pruneThenRestart() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let setup = try EngineSetup(stack: stack, topic: uniqueName("retain"), group: uniqueName("g"), directory: dir,
                                        maxRecords: 500, extra: "[manifest]\nretention = \"1s\"")
            try setup.produce(count: 20_000, partitions: 4, badFraction: 0.01)
            let first = try setup.runEngine(idle: "5s")
            #expect(first.status == 0, "\(first.stderr.suffix(1500))")
            #expect(first.stderr.contains("manifest pruned"), "\(first.stderr.suffix(1500))")

            // 40+ batches went through; what stays is each partition's newest committed row.
            let states = try sql(dir, "SELECT state FROM batches")
            #expect(states == ["COMMITTED", "COMMITTED", "COMMITTED", "COMMITTED"], "\(states)")
            let horizons = try sql(dir, "SELECT partition || ':' || pruned_through || ':' || delivered_through || ':' || pruned_batches FROM horizons ORDER BY partition")
            #expect(horizons.count == 4, "\(horizons)")
            let kept = try sql(dir, "SELECT partition || ':' || (start_offset - 1) FROM batches ORDER BY partition")
            // The kept row of each partition starts right after the pruned chain.
            #expect(horizons.map { $0.split(separator: ":").prefix(3).dropLast().joined(separator: ":") } == kept, "\(horizons) \(kept)")
            let pruned = horizons.compactMap { Int($0.split(separator: ":")[3]) }.reduce(0, +)
            #expect(pruned >= 36, "\(horizons)")
            // Events of pruned batches are gone too.
            let orphanEvents = try sql(dir, "SELECT count(*) FROM events WHERE batch_id IS NOT NULL AND batch_id NOT IN (SELECT id FROM batches)")
            #expect(orphanEvents == ["0"])

            // The audit sees objects before the horizon, not unknown ones; deep judges them by
            // their own metadata; etl-recover has nothing to do.
            let shallow = try tool("etl-audit", setup, [])
            #expect(shallow.status == 0, "\(shallow.out)")
            #expect((shallow.doc["beforeHorizon"] as? Int ?? 0) >= pruned, "\(shallow.out)")
            let deep = try tool("etl-audit", setup, ["--deep"])
            #expect(deep.status == 0, "\(deep.out)")
            let recovered = try tool("etl-recover", setup, ["--yes"])
            #expect(recovered.status == 0, "\(recovered.out)")
            #expect(recovered.doc["consistent"] as? Bool == true, "\(recovered.out)")
            #expect(try setup.verify(expect: 20_000).ok)

            // More records; the engine dies after an upload completes (the manifest still says
            // UPLOADING); etl-recover finishes it; the restart delivers the rest exactly once.
            try setup.produce(count: 20_000, partitions: 4, badFraction: 0.01, seed: 2, startSerial: 20_000)
            let crashed = try setup.runEngine(idle: "5s", failpoints: "after_upload_complete@6")
            #expect(crashed.status == 137, "\(crashed.stderr.suffix(1500))")
            let afterCrash = try tool("etl-recover", setup, ["--yes"])
            #expect(afterCrash.status == 0, "\(afterCrash.out)")
            let second = try setup.runEngine(idle: "5s")
            #expect(second.status == 0, "\(second.stderr.suffix(1500))")
            let v = try setup.verify(expect: 40_000)
            #expect(v.ok, "\(v.raw.suffix(2000))")
            #expect(setup.leftoverStagedFiles().isEmpty)
            #expect(try sql(dir, "SELECT count(*) FROM batches") == ["4"])
            let again = try tool("etl-audit", setup, ["--deep"])
            #expect(again.status == 0, "\(again.out)")

            // Damage before the horizon is still found by --deep, from the object's own metadata.
            let old = try #require(try sql(dir, "SELECT partition FROM horizons ORDER BY partition LIMIT 1").first)
            let lake = dir.appendingPathComponent("lake").path
            let victim = try #require(FileManager.default.enumerator(atPath: lake)?.allObjects.compactMap { $0 as? String }
                .filter { $0.hasSuffix("+\(old)+00000000000000000000.parquet") }.first)
            // In place (the file store keeps the object's metadata in extended attributes).
            let path = lake + "/" + victim
            let size = try #require((try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value)
            let h = try FileHandle(forUpdating: URL(fileURLWithPath: path))
            try h.seek(toOffset: size / 2)
            let byte = try #require(try h.read(upToCount: 1)?.first)
            try h.seek(toOffset: size / 2)
            try h.write(contentsOf: Data([byte ^ 0xFF]))
            try h.close()
            let damaged = try tool("etl-audit", setup, ["--deep"])
            #expect(damaged.status == 1, "\(damaged.out)")
            #expect((damaged.doc["counts"] as? [String: Int])?["content_sha256_mismatch"] == 1, "\(damaged.out)")
        }
    }
}
