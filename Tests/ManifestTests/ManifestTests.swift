import Foundation
import Manifest
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

private func sampleBatch(start: Int64, end: Int64, partition: Int32 = 0, rejected: Int64 = 0) -> NewBatch {
    NewBatch(topic: "logs", partition: partition, startOffset: start, endOffset: end,
             goodCount: end - start + 1 - rejected, rejectedCount: rejected,
             objectKey: "p/topic=logs/dt=2026-11-26/partition=\(partition)/logs+\(partition)+\(start).parquet",
             rejectedKey: rejected > 0 ? "p/_rejected/x+\(start)+\(end).jsonl" : nil,
             filePath: "/staging/\(partition)-\(start).parquet", fileSHA256: String(repeating: "a", count: 64), fileSize: 1234)
}

@Suite("Manifest")
struct ManifestTests {
    @Test("a staged batch walks STAGED -> UPLOADING -> UPLOADED -> COMMITTED with its upload id, parts, etag and events")
    func happyPath() throws {
        try withTemporaryDirectory { dir in
            let m = try Manifest.open(path: dir.appendingPathComponent("m/manifest.sqlite").path)
            defer { m.close() }
            let id = try m.insertStaged(sampleBatch(start: 0, end: 99, rejected: 3))
            try m.transition(batchID: id, from: .staged, to: .uploading, changes: BatchChanges(uploadID: "u1"))
            try m.recordPart(batchID: id, uploadID: "u1", PartRecord(partNumber: 1, size: 10, checksum: "c1", etag: "e1"))
            try m.recordPart(batchID: id, uploadID: "u1", PartRecord(partNumber: 2, size: 5, checksum: "c2", etag: "e2"))
            try m.transition(batchID: id, from: .uploading, to: .uploaded, changes: BatchChanges(etag: "etag-x"))
            #expect(try m.lastDeliveredEnd(topic: "logs", partition: 0) == 99)
            #expect(try m.unfinishedBatches().map(\.id) == [id])
            try m.transition(batchID: id, from: .uploaded, to: .committed)
            let b = try #require(try m.batch(id: id))
            #expect(b.state == .committed)
            #expect(b.uploadID == "u1")
            #expect(b.etag == "etag-x")
            #expect(b.rejectedCount == 3)
            #expect(b.goodCount == 97)
            #expect(b.recordCount == 100)
            #expect(try m.parts(batchID: id, uploadID: "u1").map(\.partNumber) == [1, 2])
            #expect(try m.unfinishedBatches().isEmpty)
            #expect(try m.events(batchID: id).map(\.kind) == ["STAGED", "STAGED->UPLOADING", "UPLOADING->UPLOADED", "UPLOADED->COMMITTED"])
        }
    }

    @Test("every transition outside docs/protocol.md's list is refused, and a stale 'from' state is refused")
    func illegalTransitions() throws {
        let legal: Set<String> = ["STAGED->UPLOADING", "STAGED->UPLOADED", "STAGED->ABANDONED", "STAGED->SUPERSEDED",
                                  "UPLOADING->UPLOADING", "UPLOADING->UPLOADED", "UPLOADING->SUPERSEDED",
                                  "UPLOADING->ABANDONED", "UPLOADED->COMMITTED", "UPLOADED->ABANDONED"]
        for from in BatchState.allCases {
            for to in BatchState.allCases {
                #expect(from.canTransition(to: to) == legal.contains("\(from)->\(to)"), "\(from)->\(to)")
            }
        }
        try withTemporaryDirectory { dir in
            let m = try Manifest.open(path: dir.appendingPathComponent("manifest.sqlite").path)
            defer { m.close() }
            let id = try m.insertStaged(sampleBatch(start: 0, end: 9))
            #expect(throws: ManifestError.self) { try m.transition(batchID: id, from: .staged, to: .committed) }
            try m.transition(batchID: id, from: .staged, to: .uploaded)
            // The caller believes the batch is still STAGED: refused, state unchanged.
            #expect(throws: ManifestError.self) { try m.transition(batchID: id, from: .staged, to: .abandoned) }
            #expect(try m.batch(id: id)?.state == .uploaded)
        }
    }

    @Test("a batch overlapping a live batch of the same partition is refused; abandoned ranges can be redone")
    func overlapRefused() throws {
        try withTemporaryDirectory { dir in
            let m = try Manifest.open(path: dir.appendingPathComponent("manifest.sqlite").path)
            defer { m.close() }
            let a = try m.insertStaged(sampleBatch(start: 100, end: 199))
            #expect(throws: ManifestError.self) { try m.insertStaged(sampleBatch(start: 150, end: 250)) }
            #expect(throws: ManifestError.self) { try m.insertStaged(sampleBatch(start: 0, end: 100)) }
            try m.insertStaged(sampleBatch(start: 200, end: 299))
            try m.insertStaged(sampleBatch(start: 150, end: 160, partition: 1))
            try m.transition(batchID: a, from: .staged, to: .abandoned, changes: BatchChanges(note: "file missing"))
            try m.insertStaged(sampleBatch(start: 100, end: 180))
            #expect(try m.batches(topic: "logs", partition: 0).map(\.startOffset) == [100, 100, 200])
        }
    }

    @Test("a second open of the same manifest fails fast naming the holder's PID; it opens again after close")
    func exclusiveLock() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("manifest.sqlite").path
            let m = try Manifest.open(path: path)
            #expect(Manifest.lockHolder(path: path) == getpid())
            do {
                _ = try Manifest.open(path: path)
                Issue.record("second open succeeded")
            } catch let ManifestError.locked(p, pid) {
                #expect(p == path)
                #expect(pid == getpid())
            }
            m.close()
            #expect(Manifest.lockHolder(path: path) == nil)
            let again = try Manifest.open(path: path)
            again.close()
        }
    }

    @Test("data survives close and reopen; files are private (dir 0700, database 0600); journal is WAL")
    func durabilityAndPermissions() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("state/manifest.sqlite").path
            do {
                let m = try Manifest.open(path: path)
                try m.insertStaged(sampleBatch(start: 0, end: 9))
                m.close()
            }
            let m = try Manifest.open(path: path)
            defer { m.close() }
            #expect(try m.batches().count == 1)
            var st = stat()
            #expect(stat(path, &st) == 0)
            #expect(st.st_mode & 0o777 == 0o600)
            #expect(stat(dir.appendingPathComponent("state").path, &st) == 0)
            #expect(st.st_mode & 0o777 == 0o700)
            #expect(FileManager.default.fileExists(atPath: path + "-wal"))
        }
    }

    @Test("a corrupt database file is reported as corrupt or unreadable, naming the path")
    func corruptFile() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("manifest.sqlite").path
            try Data(repeating: 0x42, count: 8192).write(to: URL(fileURLWithPath: path))
            do {
                _ = try Manifest.open(path: path)
                Issue.record("opened a garbage file")
            } catch let error as ManifestError {
                #expect(error.description.contains(path))
            }
        }
    }

    @Test("a manifest under a read-only directory fails at open with a clear error")
    func readOnlyDirectory() throws {
        guard getuid() != 0 else {
            // root ignores directory permissions; use a path under a regular file instead.
            try withTemporaryDirectory { dir in
                let file = dir.appendingPathComponent("file")
                try Data("x".utf8).write(to: file)
                let path = file.appendingPathComponent("manifest.sqlite").path
                #expect(throws: ManifestError.self) { _ = try Manifest.open(path: path) }
            }
            return
        }
        try withTemporaryDirectory { dir in
            chmod(dir.path, 0o500)
            defer { chmod(dir.path, 0o700) }
            #expect(throws: ManifestError.self) { _ = try Manifest.open(path: dir.appendingPathComponent("manifest.sqlite").path) }
        }
    }

    /// Stages and commits `start...end` of partition `p`.
    private func commit(_ m: Manifest, _ start: Int64, _ end: Int64, partition p: Int32 = 0) throws -> Int64 {
        let id = try m.insertStaged(sampleBatch(start: start, end: end, partition: p))
        try m.transition(batchID: id, from: .staged, to: .uploading, changes: BatchChanges(uploadID: "u\(id)"))
        try m.recordPart(batchID: id, uploadID: "u\(id)", PartRecord(partNumber: 1, size: 10, checksum: "c", etag: "e"))
        try m.transition(batchID: id, from: .uploading, to: .uploaded, changes: BatchChanges(etag: "etag"))
        try m.transition(batchID: id, from: .uploaded, to: .committed)
        return id
    }

    @Test("prune removes old final rows below the floor, with parts and events; keeps unfinished rows, the newest committed row, recent rows and what lies above them")
    func prune() throws {
        try withTemporaryDirectory { dir in
            let m = try Manifest.open(path: dir.appendingPathComponent("manifest.sqlite").path)
            defer { m.close() }
            // Partition 0: committed 0-9, 10-19, abandoned 20-29, committed 20-29, staged 30-39.
            let c0 = try commit(m, 0, 9)
            let c1 = try commit(m, 10, 19)
            let ab = try m.insertStaged(sampleBatch(start: 20, end: 29))
            try m.transition(batchID: ab, from: .staged, to: .abandoned, changes: BatchChanges(note: "lost"))
            let c2 = try commit(m, 20, 29)
            let st = try m.insertStaged(sampleBatch(start: 30, end: 39))
            // Partition 1: committed 0-9 and 10-19: only the newest stays.
            let p1a = try commit(m, 0, 9, partition: 1)
            let p1b = try commit(m, 10, 19, partition: 1)
            // Partition 2: one committed row: it is the newest, never pruned.
            let p2 = try commit(m, 0, 99, partition: 2)
            try m.logEvent(batchID: nil, kind: "NOTE", detail: "old note")

            // A cutoff before everything: nothing is old enough.
            #expect(try m.prune(finalBefore: Date().addingTimeInterval(-3600)).batches == 0)
            #expect(try m.horizons().isEmpty)

            let later = Date().addingTimeInterval(60)
            let r = try m.prune(finalBefore: later)
            // Partition 0's floor is 20 (the newest committed row; the staged row starts at 30):
            // 0-9 and 10-19 go, the abandoned 20-29 ends above the floor and stays.
            #expect(Set(try m.batches().map(\.id)) == [ab, c2, st, p1b, p2])
            #expect(r.batches == 3)
            #expect(r.more == false)
            #expect(try m.events(batchID: c0).isEmpty)
            #expect(try m.events(batchID: c1).isEmpty)
            #expect(try m.parts(batchID: c0, uploadID: "u\(c0)").isEmpty)
            #expect(try m.events(batchID: c2).count == 4)
            #expect(!(try m.events().contains { $0.kind == "NOTE" }))
            #expect(try m.events().last?.kind == "PRUNE")
            #expect(try m.lastDeliveredEnd(topic: "logs", partition: 0) == 29)
            #expect(try m.lastDeliveredEnd(topic: "logs", partition: 1) == 19)
            #expect(try m.lastDeliveredEnd(topic: "logs", partition: 2) == 99)
            #expect(try m.unfinishedBatches().map(\.id) == [st])
            let h = try m.horizons()
            #expect(h.map(\.partition) == [0, 1])
            #expect(h[0].prunedThrough == 19 && h[0].deliveredThrough == 19 && h[0].prunedBatches == 2)
            #expect(h[1].prunedThrough == 9 && h[1].deliveredThrough == 9 && h[1].prunedBatches == 1)
            _ = p1a

            // Once the staged row commits, the next pass prunes up to the new newest row; the
            // horizon only rises and counts every pruned row.
            try m.transition(batchID: st, from: .staged, to: .uploaded)
            try m.transition(batchID: st, from: .uploaded, to: .committed)
            #expect(try m.prune(finalBefore: Date().addingTimeInterval(60)).batches == 2)
            #expect(try m.batches(partition: 0).map(\.id) == [st])
            let h0 = try #require(try m.horizons().first)
            #expect(h0.prunedThrough == 29 && h0.deliveredThrough == 29 && h0.prunedBatches == 4)
        }
    }

    @Test("a partition whose rows are all old ABANDONED/SUPERSEDED is pruned whole: its horizon has no delivered chain")
    func pruneUndelivered() throws {
        try withTemporaryDirectory { dir in
            let m = try Manifest.open(path: dir.appendingPathComponent("manifest.sqlite").path)
            defer { m.close() }
            let a = try m.insertStaged(sampleBatch(start: 0, end: 9, partition: 3))
            try m.transition(batchID: a, from: .staged, to: .superseded)
            #expect(try m.prune(finalBefore: Date().addingTimeInterval(60)).batches == 1)
            #expect(try m.batches().isEmpty)
            let h = try #require(try m.horizons().first)
            #expect(h.partition == 3 && h.prunedThrough == 9 && h.deliveredThrough == nil)
        }
    }

    @Test("prune works in bounded passes: at most `limit` rows each, `more` until done")
    func pruneBounded() throws {
        try withTemporaryDirectory { dir in
            let m = try Manifest.open(path: dir.appendingPathComponent("manifest.sqlite").path)
            defer { m.close() }
            for i in Int64(0)..<25 { _ = try commit(m, i * 10, i * 10 + 9) }
            let later = Date().addingTimeInterval(60)
            var passes: [PruneResult] = []
            repeat { passes.append(try m.prune(finalBefore: later, limit: 10)) } while passes.last!.more
            #expect(passes.map(\.batches) == [10, 10, 4])
            #expect(try m.batches().map(\.startOffset) == [240])
            #expect(try m.horizons().first?.prunedThrough == 239)
        }
    }

    @Test("with pruning, the database file stops growing: freed pages are reused (fails when rows are never deleted)")
    func pruneBoundsFileSize() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("manifest.sqlite").path
            let m = try Manifest.open(path: path)
            defer { m.close() }
            func size() throws -> Int64 {
                try m.checkpoint()
                return (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
            }
            // 8 partitions, rounds of 250 batches; everything final before the last round is
            // older than the cutoff, as a retention window would have it.
            var next = [Int64](repeating: 0, count: 8)
            func round() throws {
                for i in 0..<250 {
                    let p = Int32(i % 8)
                    _ = try commit(m, next[Int(p)], next[Int(p)] + 999, partition: p)
                    next[Int(p)] += 1000
                }
                _ = try m.prune(finalBefore: Date().addingTimeInterval(1))
            }
            // Measured: 200,704 B after the first round, 221,184 after the second, 229,376 from
            // round 17 of 40 on (B-tree pages settling), where it stays. Without pruning each
            // round adds ~160 KB (250 × ~640 B).
            var sizes: [Int64] = []
            for _ in 0..<24 { try round(); sizes.append(try size()) }
            let warm = sizes[3]
            let after = sizes.last!
            let rows = try m.rowCounts()
            // 6,000 batches went through; what stays is the newest row per partition and the
            // PRUNE notes of the passes.
            #expect(rows.batches == 8)
            #expect(rows.events <= 8 * 4 + 2)
            #expect(after - warm <= 4 * 4096, "manifest grew from \(warm) to \(after) bytes over 5,000 batches after the 4th round: \(sizes)")
        }
    }

    @Test("a batch may cover offsets without records (transaction markers), never more records than offsets")
    func sparseOffsets() throws {
        try withTemporaryDirectory { dir in
            let m = try Manifest.open(path: dir.appendingPathComponent("manifest.sqlite").path)
            defer { m.close() }
            var b = sampleBatch(start: 0, end: 500)
            b.goodCount = 498
            b.rejectedCount = 2
            let id = try m.insertStaged(b)
            let row = try #require(try m.batch(id: id))
            #expect(row.recordCount == 500)
            #expect(row.offsetSpan == 501)
            var tooMany = sampleBatch(start: 501, end: 600)
            tooMany.goodCount = 101
            #expect(throws: ManifestError.self) { try m.insertStaged(tooMany) }
        }
    }

    @Test("a manifest written by the v1 schema (dense offsets) migrates with its batches and parts")
    func migratesV1() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("manifest.sqlite").path
            // The v1 schema as the first release created it, with one batch and one part.
            let v1 = """
                CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                INSERT INTO grdb_migrations VALUES ('v1: batches, parts, events');
                CREATE TABLE batches (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,
                  partition INTEGER NOT NULL, start_offset INTEGER NOT NULL,
                  end_offset INTEGER NOT NULL CHECK (end_offset >= start_offset), good_count INTEGER NOT NULL,
                  rejected_count INTEGER NOT NULL, object_key TEXT NOT NULL, rejected_key TEXT, file_path TEXT NOT NULL,
                  file_sha256 TEXT NOT NULL, file_size INTEGER NOT NULL, rejected_path TEXT, rejected_sha256 TEXT,
                  rejected_size INTEGER,
                  state TEXT NOT NULL CHECK (state IN ('STAGED','UPLOADING','UPLOADED','COMMITTED','ABANDONED','SUPERSEDED')),
                  upload_id TEXT, etag TEXT, note TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL,
                  CHECK (good_count + rejected_count = end_offset - start_offset + 1));
                CREATE INDEX batches_by_partition ON batches (topic, partition, start_offset);
                CREATE INDEX batches_by_state ON batches (state);
                CREATE TABLE parts (batch_id INTEGER NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
                  upload_id TEXT NOT NULL, part_number INTEGER NOT NULL, size INTEGER NOT NULL, checksum TEXT,
                  etag TEXT NOT NULL, PRIMARY KEY (batch_id, upload_id, part_number));
                CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, batch_id INTEGER,
                  kind TEXT NOT NULL, detail TEXT NOT NULL);
                INSERT INTO batches VALUES (7, 'logs', 0, 0, 99, 97, 3, 'k', 'rk', '/s/f', '\(String(repeating: "a", count: 64))',
                  10, NULL, NULL, NULL, 'UPLOADING', 'u1', NULL, NULL, 1.0, 1.0);
                INSERT INTO parts VALUES (7, 'u1', 1, 10, 'c1', 'e1');
                """
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
            p.arguments = [path, v1]
            try p.run()
            p.waitUntilExit()
            try #require(p.terminationStatus == 0)
            let m = try Manifest.open(path: path)
            defer { m.close() }
            let old = try #require(try m.batch(id: 7))
            #expect(old.state == .uploading)
            #expect(old.recordCount == 100)
            #expect(try m.parts(batchID: 7, uploadID: "u1").map(\.partNumber) == [1])
            var sparse = sampleBatch(start: 100, end: 199)
            sparse.goodCount = 90
            let id = try m.insertStaged(sparse)
            #expect(id > 7)
        }
    }
}
