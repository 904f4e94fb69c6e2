import FileProducer
import Foundation
import TestSupport
import Testing

@Suite("file tailer")
struct FileTailerTests {
    @Test("a trailing partial line waits for its newline; byte ranges and line numbers are exact")
    func partialLine() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("app.log").path
            try append(path, String(repeating: "x", count: 1100) + "\nsecond li")
            let t = FileTailer(path: path, resume: nil, logger: quietLogger)
            var d = try drain(t)
            #expect(d.changes == [.opened, .fingerprinted])
            #expect(d.lines.count == 1)
            #expect(d.lines[0].start == 0 && d.lines[0].end == 1101 && d.lines[0].number == 1)
            #expect(t.position?.offset == 1101)
            try append(path, "ne")
            #expect(try drain(t).lines.isEmpty, "no newline yet")
            try append(path, "\nthird\n")
            d = try drain(t)
            #expect(d.texts == ["second line", "third"])
            #expect(d.lines.map(\.start) == [1101, 1113])
            #expect(d.lines.map(\.end) == [1113, 1119])
            #expect(d.lines.map(\.number) == [2, 3])
            #expect(t.position?.offset == 1119 && t.position?.line == 3)
        }
    }

    @Test("a file shorter than 1 KiB is fingerprinted over what it holds after the grace period, at once with finalizeShortFiles")
    func shortFileFingerprint() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("app.log").path
            try append(path, "a\nb\n")
            let t = FileTailer(path: path, resume: nil, fingerprintGrace: .milliseconds(200), logger: quietLogger)
            #expect(try drain(t).lines.isEmpty, "waits for 1 KiB or the grace period")
            usleep(250_000)
            let d = try drain(t)
            #expect(d.texts == ["a", "b"])
            #expect(t.position?.fingerprintLength == 4)
            let t2 = FileTailer(path: path, resume: nil, logger: quietLogger)
            t2.finalizeShortFiles = true
            #expect(try drain(t2).texts == ["a", "b"])
            #expect(t2.position?.fingerprint == t.position?.fingerprint)
        }
    }

    @Test("truncation restarts at offset 0 with a new identity")
    func truncation() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("app.log").path
            let long = String(repeating: "a", count: 1500)
            try append(path, "\(long)\nold 2\nold 3\n")
            let t = FileTailer(path: path, resume: nil, logger: quietLogger)
            #expect(try drain(t).lines.count == 3)
            let before = t.position!
            try Data().write(to: URL(fileURLWithPath: path))  // truncate in place (same inode)
            try append(path, String(repeating: "b", count: 1200) + "\nnew 2\n")
            let d = try drain(t)
            #expect(d.changes == [.truncated, .fingerprinted])
            #expect(d.lines.count == 2)
            #expect(d.lines[0].start == 0 && d.lines[0].number == 1)
            #expect(d.texts.last == "new 2")
            let after = t.position!
            #expect(after.inode == before.inode)
            #expect(after.fingerprint != before.fingerprint)
        }
    }

    @Test("rotation by rename: the old file is finished (unterminated last line included), then the new one is read")
    func rotation() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("app.log").path
            let padA = String(repeating: "a", count: 1100)
            let padB = String(repeating: "b", count: 1100)
            try append(path, "\(padA)\nA2\n")
            let t = FileTailer(path: path, resume: nil, logger: quietLogger)
            #expect(try drain(t).texts == [padA, "A2"])
            // Written before the rename but not read yet, with a last line lacking its newline.
            try append(path, "A3\nA4-no-newline")
            try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
            try append(path, "\(padB)\nB2\n")
            let d = try drain(t)
            #expect(d.texts == ["A3", "A4-no-newline", padB, "B2"])
            #expect(d.changes == [.opened, .fingerprinted])
            #expect(d.lines[1].end == UInt64(1101 + 3 + 3 + 13), "the unterminated line ends at the file's end")
            #expect(d.lines[2].start == 0 && d.lines[2].number == 1)
            #expect(d.lines[2].fingerprint != d.lines[0].fingerprint)
        }
    }

    @Test("two rotations between polls: the middle file is not skipped")
    func doubleRotation() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("app.log").path
            func pad(_ c: String) -> String { String(repeating: c, count: 1100) }
            try append(path, "\(pad("a"))\nA\n")
            let t = FileTailer(path: path, resume: nil, logger: quietLogger)
            _ = try drain(t)
            try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
            try append(path, "\(pad("b"))\nB\n")
            try FileManager.default.moveItem(atPath: path + ".1", toPath: path + ".2")
            try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
            try append(path, "\(pad("c"))\nC\n")
            #expect(try drain(t).texts == [pad("b"), "B", pad("c"), "C"])
        }
    }

    @Test("resume from a checkpoint whose file was rotated away: finish it at the checkpoint, then the newer files")
    func resumeRotated() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("app.log").path
            let padA = String(repeating: "a", count: 1100)
            let padB = String(repeating: "b", count: 1100)
            try append(path, "\(padA)\nA2\nA3\n")
            let t = FileTailer(path: path, resume: nil, logger: quietLogger)
            var seen = 0
            while seen < 2 { if case .line = try t.next() { seen += 1 } }  // read padA and A2, not A3
            let checkpoint = t.position!
            #expect(checkpoint.line == 2)
            try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
            try append(path, "\(padB)\nB2\n")
            let again = FileTailer(path: path, resume: checkpoint, logger: quietLogger)
            let d = try drain(again)
            #expect(d.changes == [.resumed, .opened, .fingerprinted])
            #expect(d.texts == ["A3", padB, "B2"])
            #expect(d.lines[0].number == 3 && d.lines[0].path == path + ".1")
        }
    }

    @Test("resume when the checkpointed file is gone or replaced: start at offset 0 of the path")
    func resumeReplaced() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("app.log").path
            let pad = String(repeating: "p", count: 1100)
            try append(path, "\(pad)\nA2\n")
            let t = FileTailer(path: path, resume: nil, logger: quietLogger)
            _ = try drain(t)
            var checkpoint = t.position!
            checkpoint.fingerprint = String(repeating: "0", count: 64)  // same inode, other content
            let again = FileTailer(path: path, resume: checkpoint, logger: quietLogger)
            let d = try drain(again)
            #expect(d.changes.first == .opened)
            #expect(d.texts == [pad, "A2"])
        }
    }

    @Test("lines over maxLineBytes are reported as too long (with their range), and reading continues after them")
    func tooLong() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("app.log").path
            let pad = String(repeating: "p", count: 1100)
            let huge = String(repeating: "h", count: 5000)
            try append(path, "\(pad)\n\(huge)\nok\n")
            let t = FileTailer(path: path, resume: nil, maxLineBytes: 2000, logger: quietLogger)
            let d = try drain(t)
            #expect(d.texts == [pad, "ok"])
            #expect(d.tooLong.count == 1)
            #expect(d.tooLong[0].start == 1101 && d.tooLong[0].end == 6102 && d.tooLong[0].number == 2)
            #expect(d.lines[1].number == 3)
        }
    }

    @Test("a missing file is waited for, then read from the start")
    func missingFile() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("later.log").path
            let t = FileTailer(path: path, resume: nil, logger: quietLogger)
            guard case .idle(let missing) = try t.next() else { Issue.record("expected idle"); return }
            #expect(missing)
            try append(path, String(repeating: "z", count: 1024) + "\n")
            #expect(try drain(t).lines.count == 1)
        }
    }

    @Test("an unreadable file is a permission error naming the path",
          .enabled(if: getuid() != 0, "root ignores file modes; ProducerProcessTests checks this as nobody"))
    func permission() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("secret.log").path
            try append(path, "x\n")
            chmod(path, 0o000)
            let t = FileTailer(path: path, resume: nil, logger: quietLogger)
            #expect {
                _ = try t.next()
            } throws: { error in
                guard case .permissionDenied(let p, _) = error as? FileProducerError else { return false }
                return p == path
            }
        }
    }
}
