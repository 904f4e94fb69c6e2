import FileProducer
import Foundation
import TestSupport
import Testing

@Suite("checkpoint store")
struct CheckpointTests {
    @Test("save then load round-trips every field; no temp file is left; a second save replaces the first")
    func roundTrip() throws {
        try withTemporaryDirectory { dir in
            let state = dir.appendingPathComponent("state").path
            let store = try CheckpointStore(directory: state)
            #expect(try store.load() == nil)
            let a = Checkpoint(path: "/var/log/app.log", device: 2049, inode: 1_234_567, fingerprint: String(repeating: "ab", count: 32),
                               fingerprintLength: 1024, offset: 9_876_543_210, line: 77_000)
            try store.save(a)
            #expect(try store.load() == a)
            var b = a
            b.offset += 100
            b.line += 1
            b.fingerprint = nil
            try store.save(b)
            #expect(try store.load() == b)
            let names = try FileManager.default.contentsOfDirectory(atPath: state)
            #expect(!names.contains { $0.hasSuffix(".tmp") }, "\(names)")
            // A fresh store (new process) reads what the old one wrote.
            #expect(try CheckpointStore(directory: state, lock: false).load() == b)
        }
    }

    @Test("a temp file left by a crash in the middle of a save does not affect what is loaded, and the next save replaces it")
    func crashDuringSave() throws {
        try withTemporaryDirectory { dir in
            let store = try CheckpointStore(directory: dir.path)
            let a = Checkpoint(path: "/x/app.log", device: 1, inode: 2, fingerprint: nil, fingerprintLength: 0, offset: 10, line: 1)
            try store.save(a)
            // A crash between writing the temp file and the rename leaves half a checkpoint behind.
            try "{\"version\":1,\"off".write(toFile: store.checkpointPath + ".tmp", atomically: false, encoding: .utf8)
            #expect(try store.load() == a)
            var b = a
            b.offset = 20
            try store.save(b)
            #expect(try store.load() == b)
            #expect(!FileManager.default.fileExists(atPath: store.checkpointPath + ".tmp"))
        }
    }

    @Test("a checkpoint whose lengths cannot be (fingerprint over 1 KiB, tail longer than the offset) is corrupt, not a crash")
    func impossibleLengths() throws {
        try withTemporaryDirectory { dir in
            let store = try CheckpointStore(directory: dir.path)
            let good = Checkpoint(path: "/x/app.log", device: 1, inode: 2, fingerprint: String(repeating: "a", count: 64),
                                  fingerprintLength: 1024, offset: 100, line: 3, fileID: "f", tailLength: 100,
                                  tailHash: String(repeating: "b", count: 64))
            try store.save(good)
            #expect(try store.load() == good)
            var bad = [good, good, good]
            bad[0].fingerprintLength = 2048
            bad[1].tailLength = 101
            bad[2].tailLength = -1
            for cp in bad {
                try store.save(cp)
                #expect {
                    _ = try store.load()
                } throws: { error in
                    guard case .corruptCheckpoint(let path, _) = error as? FileProducerError else { return false }
                    return path == store.checkpointPath
                }
            }
        }
    }

    @Test("a corrupt checkpoint is a typed error naming the file, not a silent restart from zero")
    func corrupt() throws {
        try withTemporaryDirectory { dir in
            let store = try CheckpointStore(directory: dir.path)
            try "{\"version\": 1, \"offset\": ".write(toFile: store.checkpointPath, atomically: true, encoding: .utf8)
            #expect {
                _ = try store.load()
            } throws: { error in
                guard case .corruptCheckpoint(let path, _) = error as? FileProducerError else { return false }
                return path == store.checkpointPath && (error as! FileProducerError).isStartupError
            }
        }
    }

    @Test("the state directory's lock keeps a second producer out")
    func lock() throws {
        try withTemporaryDirectory { dir in
            let first = try CheckpointStore(directory: dir.path)
            #expect(throws: FileProducerError.self) { _ = try CheckpointStore(directory: dir.path) }
            _ = first
        }
    }

    @Test("an unwritable state directory is a permission error naming it",
          .enabled(if: getuid() != 0, "root ignores file modes; ProducerProcessTests checks this as nobody"))
    func permission() throws {
        try withTemporaryDirectory { dir in
            let locked = dir.appendingPathComponent("ro")
            try FileManager.default.createDirectory(at: locked, withIntermediateDirectories: true)
            chmod(locked.path, 0o500)
            defer { chmod(locked.path, 0o700) }
            #expect {
                _ = try CheckpointStore(directory: locked.appendingPathComponent("state").path)
            } throws: { error in
                guard case .permissionDenied(let path, _) = error as? FileProducerError else { return false }
                return path.hasSuffix("/ro/state")
            }
        }
    }
}

@Suite("Kafka partitioner")
struct PartitionerTests {
    @Test("murmur2 matches Kafka's UtilsTest vectors", arguments: [
        ("21", -973_932_308), ("foobar", -790_332_482), ("a-little-bit-long-string", -985_981_536),
        ("a-little-bit-longer-string", -1_486_304_829),
        ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971), ("abc", 479_470_107),
    ])
    func murmur2(input: String, expected: Int) {
        #expect(Int32(bitPattern: KafkaPartitioner.murmur2(Array(input.utf8))) == Int32(expected))
    }

    @Test("the serial key is the first word; partitions are positive and stable")
    func serialKey() {
        #expect(KafkaPartitioner.serialKey(of: Array("123 2026-11-26T00:00:00.000Z INFO x".utf8)) == Array("123".utf8))
        #expect(KafkaPartitioner.serialKey(of: []) == [])
        #expect(KafkaPartitioner.serialKey(of: [0xFF, 0x00]) == [0xFF, 0x00])
        for i in 0..<1000 {
            let p = KafkaPartitioner.partition(forKey: Array("\(i)".utf8), partitionCount: 4)
            #expect((0..<4).contains(p))
        }
        // (murmur2("21") & 0x7fffffff) % 4 == (-973932308 & 0x7fffffff) % 4
        #expect(KafkaPartitioner.partition(forKey: Array("21".utf8), partitionCount: 4) == Int32((-973_932_308 & 0x7FFF_FFFF) % 4))
    }
}
