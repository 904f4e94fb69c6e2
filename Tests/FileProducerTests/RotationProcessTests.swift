import FileProducer
import Foundation
import TestSupport
import Testing

/// Issue #23: every line of app.log in Kafka exactly once across restarts, whatever the rotation
/// style. Each test drives `etl-loggen` / file operations and `etl-produce` (processes) and is
/// judged by reading the topic back with tools/verify_produce.py (confluent-kafka).
@Suite("etl-produce across rotation styles (issue #23)", .serialized)
struct RotationProcessTests {
    /// 11 banner lines of 99 bytes each (1,089 bytes), identical in every file that starts with it.
    static let header: String = (1...11).map { i in
        let text = "=== service banner line \(i < 10 ? "0" : "")\(i): build 2026.11, config /etc/app.conf "
        return text + String(repeating: "=", count: 98 - text.utf8.count) + "\n"
    }.joined()

    /// Appends `count` generated lines (serials from `serial`) to `log`.
    static func writeLines(_ log: String, _ count: Int, serial: Int) throws {
        let r = try runProcess(loggen, ["--out", log, "--lines", "\(count)", "--seed", "23", "--start-serial", "\(serial)"])
        #expect(r.status == 0, "etl-loggen: \(r.stderr)")
    }

    static func args(_ stack: LocalStack, _ log: String, _ state: String, _ topic: String) -> [String] {
        ["--file", log, "--topic", topic, "--brokers", stack.kafkaBootstrap, "--state", state,
         "--poll-interval", "20ms", "--checkpoint-interval", "200ms"]
    }

    /// Starts a producer and waits until it has opened or resumed a file.
    static func startFollowing(_ args: [String], dir: URL, name: String) throws -> Child {
        let child = try Child(produce, args, logDirectory: dir, name: name)
        let up = Date().addingTimeInterval(30)
        while Date() < up && child.process.isRunning
            && !child.stderr.contains("following file") && !child.stderr.contains("resuming") {
            usleep(10_000)
        }
        return child
    }

    /// Waits until the topic holds every line of `files` exactly once (or gives up), then stops
    /// `child` with SIGTERM; returns the checker's verdict.
    static func verifyThenStop(_ child: Child, _ stack: LocalStack, topic: String, expect: Int,
                               files: [String]) throws -> (ok: Bool, raw: String) {
        let v = try verify(stack, topic: topic, expect: expect, files: files, timeout: 25)
        child.stop(SIGTERM)
        #expect(child.process.terminationStatus == 0, "\(child.stderr.suffix(1500))")
        return v
    }

    enum Refill: String, CaseIterable, Sendable, CustomTestStringConvertible {
        /// Rotated by rename while the restarted producer runs.
        case renameLive
        /// Rotated by rename while the producer is down.
        case renameDown
        /// Truncated in place and refilled while the restarted producer runs.
        case truncateLive
        var testDescription: String { rawValue }
    }

    @Test("case 1: a new file with the same 1,089-byte header as the checkpointed one loses no line after a clean restart",
          arguments: Refill.allCases)
    func identicalHeader(refill: Refill) throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let topic = uniqueName("produce-hdr")
            let log = dir.appendingPathComponent("app.log").path
            let state = dir.appendingPathComponent("state").path
            let args = Self.args(stack, log, state, topic)
            try append(log, Self.header)
            try Self.writeLines(log, 50, serial: 0)
            let first = try runProcess(produce, args + ["--exit-at-eof"], timeout: 60)
            #expect(first.status == 0, "\(first.stderr.suffix(1500))")
            #expect(summary(first.stdout)["sent"] as? Int == 61)

            // The old content, kept outside the log directory for the checker.
            let kept = dir.appendingPathComponent("kept")
            try FileManager.default.createDirectory(at: kept, withIntermediateDirectories: true)
            let oldCopy = kept.appendingPathComponent("old.log").path
            try FileManager.default.copyItem(atPath: log, toPath: oldCopy)

            func refillNow() throws {
                switch refill {
                case .renameLive, .renameDown:
                    try FileManager.default.moveItem(atPath: log, toPath: log + ".1")
                case .truncateLive:
                    #expect(truncate(log, 0) == 0)
                }
                try append(log, Self.header)
                try Self.writeLines(log, 100, serial: 50)
            }
            let files = refill == .truncateLive ? [oldCopy, log] : [log + ".1", log]
            if refill == .renameDown {
                try refillNow()
                let second = try runProcess(produce, args + ["--exit-at-eof"], timeout: 60)
                #expect(second.status == 0, "\(second.stderr.suffix(1500))")
                let s = summary(second.stdout)
                #expect(s["sent"] as? Int == 111, "\(second.stdout) \(second.stderr.suffix(1500))")
                #expect(s["alreadyInKafka"] as? Int == 0)
                let v = try verify(stack, topic: topic, expect: 172, files: files, timeout: 25)
                #expect(v.ok, "not exactly once: \(v.raw)")
            } else {
                let child = try Self.startFollowing(args, dir: dir, name: "second")
                try refillNow()
                let v = try Self.verifyThenStop(child, stack, topic: topic, expect: 172, files: files)
                #expect(v.ok, "not exactly once: \(v.raw) \(child.stderr.suffix(1500))")
                #expect(summary(child.stdout)["alreadyInKafka"] as? Int == 0, "\(child.stdout)")
            }
        }
    }

    @Test("case 1: a file holding only a constant banner line for over a second, then a clean restart and a rotation to a file with the same banner: no line lost")
    func constantBanner() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let topic = uniqueName("produce-banner")
            let log = dir.appendingPathComponent("app.log").path
            let state = dir.appendingPathComponent("state").path
            let args = Self.args(stack, log, state, topic)
            let banner = "=== log opened ===\n"
            try append(log, banner)
            var child = try Self.startFollowing(args, dir: dir, name: "first")
            usleep(1_600_000)  // past the 1 s fingerprint grace: fingerprinted over the 19 banner bytes
            try Self.writeLines(log, 30, serial: 0)
            var v = try Self.verifyThenStop(child, stack, topic: topic, expect: 31, files: [log])
            #expect(v.ok, "\(v.raw)")

            child = try Self.startFollowing(args, dir: dir, name: "second")
            try FileManager.default.moveItem(atPath: log, toPath: log + ".1")
            try append(log, banner)
            usleep(1_600_000)
            try Self.writeLines(log, 40, serial: 30)
            v = try Self.verifyThenStop(child, stack, topic: topic, expect: 72, files: [log + ".1", log])
            #expect(v.ok, "not exactly once: \(v.raw) \(child.stderr.suffix(1500))")
        }
    }

    @Test("case 3: kill -9 before the first checkpoint, then a rotation: the rotated file is read on the next start")
    func killBeforeFirstCheckpoint() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let topic = uniqueName("produce-first")
            let log = dir.appendingPathComponent("app.log").path
            let state = dir.appendingPathComponent("state").path
            let args = Self.args(stack, log, state, topic)
            // The producer starts before the file exists (it waits for it) and is killed then.
            let child = try Child(produce, args, logDirectory: dir, name: "first")
            let up = Date().addingTimeInterval(30)
            while Date() < up && child.process.isRunning && !child.stderr.contains("to appear") { usleep(10_000) }
            child.stop(SIGKILL)
            #expect(try CheckpointStore(directory: state, lock: false).load() == nil, "no checkpoint before the kill")
            try Self.writeLines(log, 1000, serial: 0)
            try FileManager.default.moveItem(atPath: log, toPath: log + ".1")
            try Self.writeLines(log, 500, serial: 1000)
            let again = try runProcess(produce, args + ["--exit-at-eof"], timeout: 60)
            #expect(again.status == 0, "\(again.stderr.suffix(1500))")
            #expect(summary(again.stdout)["sent"] as? Int == 1500, "\(again.stdout)")
            let v = try verify(stack, topic: topic, expect: 1500, files: [log + ".1", log], timeout: 25)
            #expect(v.ok, "not exactly once: \(v.raw)")
        }
    }

    @Test("--start-from current: a first start reads only app.log, from offset 0 (the rotated file is left alone)")
    func startFromCurrent() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let topic = uniqueName("produce-current")
            let log = dir.appendingPathComponent("app.log").path
            let state = dir.appendingPathComponent("state").path
            try Self.writeLines(log, 200, serial: 0)
            try FileManager.default.moveItem(atPath: log, toPath: log + ".1")
            try Self.writeLines(log, 300, serial: 200)
            let r = try runProcess(produce, Self.args(stack, log, state, topic) + ["--exit-at-eof", "--start-from", "current"],
                                   timeout: 60)
            #expect(r.status == 0, "\(r.stderr.suffix(1500))")
            #expect(summary(r.stdout)["sent"] as? Int == 300, "\(r.stdout)")
            let v = try verify(stack, topic: topic, expect: 300, files: [log], timeout: 20)
            #expect(v.ok, "\(v.raw)")
        }
    }

    @Test("case 2: logrotate dateext (app.log-YYYYMMDD), twice while the producer is down: every line once")
    func dateextWhileDown() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let topic = uniqueName("produce-dateext")
            let log = dir.appendingPathComponent("app.log").path
            let state = dir.appendingPathComponent("state").path
            let args = Self.args(stack, log, state, topic)
            try Self.writeLines(log, 1500, serial: 0)
            let first = try runProcess(produce, args + ["--exit-at-eof"], timeout: 60)
            #expect(first.status == 0, "\(first.stderr.suffix(1500))")
            #expect(summary(first.stdout)["sent"] as? Int == 1500)
            try Self.writeLines(log, 500, serial: 1500)
            try FileManager.default.moveItem(atPath: log, toPath: log + "-20261125")
            try Self.writeLines(log, 400, serial: 2000)
            try FileManager.default.moveItem(atPath: log, toPath: log + "-20261126")
            try Self.writeLines(log, 300, serial: 2400)
            let second = try runProcess(produce, args + ["--exit-at-eof"], timeout: 60)
            #expect(second.status == 0, "\(second.stderr.suffix(1500))")
            #expect(summary(second.stdout)["sent"] as? Int == 1200, "\(second.stdout)")
            let v = try verify(stack, topic: topic, expect: 2700, files: [log + "-20261125", log + "-20261126", log],
                               timeout: 25)
            #expect(v.ok, "not exactly once: \(v.raw)")
        }
    }

    @Test("case 2: --rotated-glob names siblings of any other form; they are read oldest (byte order) first")
    func rotatedGlob() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let topic = uniqueName("produce-glob")
            let log = dir.appendingPathComponent("app.log").path
            let state = dir.appendingPathComponent("state").path
            let args = Self.args(stack, log, state, topic) + ["--rotated-glob", "app.log_*"]
            try Self.writeLines(log, 100, serial: 0)
            try FileManager.default.moveItem(atPath: log, toPath: log + "_a")
            try Self.writeLines(log, 100, serial: 100)
            try FileManager.default.moveItem(atPath: log, toPath: log + "_b")
            try Self.writeLines(log, 100, serial: 200)
            let r = try runProcess(produce, args + ["--exit-at-eof"], timeout: 60)
            #expect(r.status == 0, "\(r.stderr.suffix(1500))")
            #expect(summary(r.stdout)["sent"] as? Int == 300, "\(r.stdout)")
            let v = try verify(stack, topic: topic, expect: 300, files: [log + "_a", log + "_b", log], timeout: 20)
            #expect(v.ok, "\(v.raw)")
        }
    }

    @Test("case 4: copytruncate while lines are unread (producer stopped) and the file is refilled past the old position: every line once, no fragment")
    func copyTruncateLive() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let topic = uniqueName("produce-copytrunc")
            let log = dir.appendingPathComponent("app.log").path
            let state = dir.appendingPathComponent("state").path
            try Self.writeLines(log, 1000, serial: 0)
            let child = try Self.startFollowing(Self.args(stack, log, state, topic), dir: dir, name: "live")
            let size = UInt64(try FileManager.default.attributesOfItem(atPath: log)[.size] as! Int)
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if let cp = try? CheckpointStore(directory: state, lock: false).load(), cp.offset == size { break }
                usleep(20_000)
            }
            // Frozen (as if blocked on a down broker) while lines are written, copied, truncated
            // and the file refilled past the old read position.
            kill(child.pid, SIGSTOP)
            try Self.writeLines(log, 300, serial: 1000)
            try FileManager.default.copyItem(atPath: log, toPath: log + ".1")
            #expect(truncate(log, 0) == 0)
            try Self.writeLines(log, 1500, serial: 1300)
            kill(child.pid, SIGCONT)
            let v = try Self.verifyThenStop(child, stack, topic: topic, expect: 2800, files: [log + ".1", log])
            #expect(v.ok, "not exactly once: \(v.raw) \(child.stderr.suffix(1500))")
        }
    }

    @Test("case 4: copytruncate while the producer is down: the copy's unread lines are read on restart")
    func copyTruncateWhileDown() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let topic = uniqueName("produce-copydown")
            let log = dir.appendingPathComponent("app.log").path
            let state = dir.appendingPathComponent("state").path
            let args = Self.args(stack, log, state, topic)
            try Self.writeLines(log, 1000, serial: 0)
            let first = try runProcess(produce, args + ["--exit-at-eof"], timeout: 60)
            #expect(first.status == 0, "\(first.stderr.suffix(1500))")
            try Self.writeLines(log, 300, serial: 1000)
            try FileManager.default.copyItem(atPath: log, toPath: log + ".1")
            #expect(truncate(log, 0) == 0)
            try Self.writeLines(log, 200, serial: 1300)
            let second = try runProcess(produce, args + ["--exit-at-eof"], timeout: 60)
            #expect(second.status == 0, "\(second.stderr.suffix(1500))")
            #expect(summary(second.stdout)["sent"] as? Int == 500, "\(second.stdout)")
            let v = try verify(stack, topic: topic, expect: 1500, files: [log + ".1", log], timeout: 25)
            #expect(v.ok, "not exactly once: \(v.raw)")
        }
    }

    @Test("case 5: a file switch every ~40 ms while following (etl-loggen rotating, nothing deleted): every line once")
    func rotationStress() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let topic = uniqueName("produce-stress")
            let log = dir.appendingPathComponent("app.log").path
            let state = dir.appendingPathComponent("state").path
            let args = Self.args(stack, log, state, topic) + ["--key", "serial"]
            // ~180 lines per file at 4,500 lines/s: a rotation every ~40 ms for 6 s.
            let writer = try Child(loggen, ["--out", log, "--lines", "27000", "--rate", "4500", "--seed", "5",
                                            "--rotate-bytes", "20000", "--keep", "1000"], logDirectory: dir, name: "loggen")
            let child = try Child(produce, args, logDirectory: dir, name: "stress")
            #expect(writer.wait(seconds: 60) == 0, "etl-loggen failed: \(writer.stderr)")
            let files = logFiles(log)
            #expect(files.count > 100, "expected > 100 rotations: \(files.count)")
            let v = try Self.verifyThenStop(child, stack, topic: topic, expect: 27000, files: files)
            #expect(v.ok, "not exactly once: \(v.raw.prefix(2000)) \(child.stderr.suffix(1500))")
        }
    }

    @Test("upgrade: a version-1 checkpoint (no file identity) resumes exactly; records without tidemark.fileid count for that file")
    func upgradeFromVersion1() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let topic = uniqueName("produce-upgrade")
            let log = dir.appendingPathComponent("app.log").path
            let state = dir.appendingPathComponent("state").path
            try Self.writeLines(log, 100, serial: 0)
            // An older etl-produce sent the first 60 lines (no tidemark.fileid header) and had
            // checkpointed after 40 when it was killed.
            let script = """
                import hashlib, sys
                from confluent_kafka import Producer
                path, bootstrap, topic = sys.argv[1:4]
                data = open(path, "rb").read()
                fp = hashlib.sha256(data[:1024]).hexdigest()
                p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
                start, ends = 0, []
                for number in range(1, 61):
                    nl = data.index(b"\\n", start)
                    p.produce(topic, value=data[start:nl], partition=0, headers=[
                        ("tidemark.file", fp.encode()), ("tidemark.offset", str(start).encode()),
                        ("tidemark.end", str(nl + 1).encode()), ("tidemark.line", str(number).encode())])
                    ends.append(nl + 1)
                    start = nl + 1
                assert p.flush(30) == 0
                print(ends[39], fp)
                """
            let r = try runProcess("/usr/bin/env", ["python3", "-c", script, log, stack.kafkaBootstrap, topic], timeout: 60)
            #expect(r.status == 0, "\(r.stderr)")
            let parts = r.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            let offset40 = try #require(parts.first.flatMap { UInt64($0) })
            var st = stat()
            #expect(stat(log, &st) == 0)
            var cp = Checkpoint(path: log, device: UInt64(st.st_dev), inode: UInt64(st.st_ino), fingerprint: parts.last,
                                fingerprintLength: 1024, offset: offset40, line: 40)
            cp.version = 1
            cp.tailLength = nil
            do {
                let store = try CheckpointStore(directory: state)
                try store.save(cp)
            }
            let again = try runProcess(produce, Self.args(stack, log, state, topic) + ["--exit-at-eof"], timeout: 60)
            #expect(again.status == 0, "\(again.stderr.suffix(1500))")
            let s = summary(again.stdout)
            #expect(s["sent"] as? Int == 40, "\(again.stdout)")
            #expect(s["alreadyInKafka"] as? Int == 20, "\(again.stdout)")
            let stored = try CheckpointStore(directory: state, lock: false).load()
            #expect(stored?.version == 2 && stored?.fileID != nil)
            let v = try verify(stack, topic: topic, expect: 100, files: [log], timeout: 20)
            #expect(v.ok, "\(v.raw)")
        }
    }
}
