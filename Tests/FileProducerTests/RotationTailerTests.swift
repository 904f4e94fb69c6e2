@testable import FileProducer
import Foundation
import Logging
import TestSupport
import Testing

/// Issue #23 at the tailer level: deterministic file operations between `next()` calls.
@Suite("file tailer across rotation styles (issue #23)")
struct RotationTailerTests {
    static func pad(_ c: String) -> String { String(repeating: c, count: 1100) }

    /// Copies `path` to `copy` (new inode, same bytes), then truncates `path` in place: logrotate's copytruncate.
    static func copyTruncate(_ path: String, to copy: String) throws {
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        #expect(truncate(path, 0) == 0)
    }

    @Test("case 5: the finished file vanished (deleted or compressed) before its successor was chosen: the middle file is read, not skipped")
    func finishedFileVanished() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("app.log").path
            try append(path, "\(Self.pad("f"))\nF2\n")
            let log = CapturingLogHandler()
            let t = FileTailer(path: path, resume: nil, logger: log.logger)
            #expect(try drain(t).texts == [Self.pad("f"), "F2"])
            // Two rotations while the tailer sleeps; then the oldest (the tailer's file) is deleted.
            try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
            try append(path, "\(Self.pad("g"))\nG2\n")
            try FileManager.default.moveItem(atPath: path + ".1", toPath: path + ".2")
            try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
            try append(path, "\(Self.pad("h"))\nH2\n")
            try FileManager.default.removeItem(atPath: path + ".2")
            #expect(try drain(t).texts == [Self.pad("g"), "G2", Self.pad("h"), "H2"])
            let errors = log.messages(at: .error)
            #expect(errors.count == 1 && errors[0].contains("no longer") && errors[0].contains(path + ".1"),
                    "a vanished file is an error naming what is read next: \(errors)")
        }
    }

    @Test("case 5: a rotation between choosing the next file and opening it: the file chosen is the one opened")
    func rotationWhileOpening() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("app.log").path
            try append(path, "\(Self.pad("f"))\nF2\n")
            let t = FileTailer(path: path, resume: nil, logger: quietLogger)
            #expect(try drain(t).texts == [Self.pad("f"), "F2"])
            try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
            try append(path, "\(Self.pad("g"))\nG2\n")
            var rotated = false
            t.beforeOpen = { _ in
                // The worst moment: the tailer has chosen app.log (G) and is about to open it.
                guard !rotated else { return }
                rotated = true
                try? FileManager.default.moveItem(atPath: path + ".1", toPath: path + ".2")
                try? FileManager.default.moveItem(atPath: path, toPath: path + ".1")
                try? append(path, "\(Self.pad("h"))\nH2\n")
            }
            #expect(try drain(t).texts == [Self.pad("g"), "G2", Self.pad("h"), "H2"])
            #expect(rotated)
        }
    }

    @Test("case 2: dateext siblings are found and read oldest first after a resume")
    func dateext() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("app.log").path
            try append(path, "\(Self.pad("a"))\nA2\n")
            let t = FileTailer(path: path, resume: nil, logger: quietLogger)
            _ = try drain(t)
            let checkpoint = t.position!
            try append(path, "A3\n")
            try FileManager.default.moveItem(atPath: path, toPath: path + "-20261125")
            try append(path, "\(Self.pad("b"))\nB2\n")
            try FileManager.default.moveItem(atPath: path, toPath: path + "-20261126")
            try append(path, "\(Self.pad("c"))\nC2\n")
            try append(path + "-20261124.gz", "not text\n")  // compressed: never read
            let again = FileTailer(path: path, resume: checkpoint, logger: quietLogger)
            let d = try drain(again)
            #expect(d.texts == ["A3", Self.pad("b"), "B2", Self.pad("c"), "C2"])
            #expect(d.changes.first == .resumed)
        }
    }

    @Test("case 4: copytruncate while following: the copy's unread lines first, then the truncated file from offset 0; no fragment")
    func copyTruncateLive() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("app.log").path
            try append(path, "\(Self.pad("a"))\nA2\n")
            let t = FileTailer(path: path, resume: nil, logger: quietLogger)
            #expect(try drain(t).texts == [Self.pad("a"), "A2"])
            // Written but not read yet, then copied and truncated, then the file is refilled past
            // the old read position (what a producer blocked on a down broker sees).
            try append(path, "A3 unread\nA4 unread\n")
            try Self.copyTruncate(path, to: path + ".1")
            let refill = (1...40).map { "new line \($0) " + String(repeating: "n", count: 60) }
            try append(path, refill.joined(separator: "\n") + "\n")
            let d = try drain(t)
            #expect(d.texts == ["A3 unread", "A4 unread"] + refill)
            #expect(d.changes == [.copied, .opened, .fingerprinted])
            #expect(d.lines[0].path == path + ".1" && d.lines[0].number == 3)
            #expect(d.lines[2].start == 0 && d.lines[2].number == 1)
            #expect(d.lines[2].fileID != d.lines[0].fileID)
        }
    }

    @Test("case 4: copytruncate while the producer was down: resume in the copy at the checkpoint, then the truncated file")
    func copyTruncateWhileDown() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("app.log").path
            try append(path, "\(Self.pad("a"))\nA2\n")
            let t = FileTailer(path: path, resume: nil, logger: quietLogger)
            _ = try drain(t)
            let checkpoint = t.position!
            try append(path, "A3 unread\n")
            try Self.copyTruncate(path, to: path + ".1")
            try append(path, "\(Self.pad("b"))\nB2\n")
            let again = FileTailer(path: path, resume: checkpoint, logger: quietLogger)
            let d = try drain(again)
            #expect(d.texts == ["A3 unread", Self.pad("b"), "B2"])
            #expect(d.changes.first == .resumed)
            #expect(d.lines[0].fileID == checkpoint.fileID, "the copy continues the checkpointed file's identity")
        }
    }

    @Test("case 1: truncated in place and refilled with the same header past the old position, between two polls: read again from offset 0")
    func truncateRefillSameHeader() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("app.log").path
            let header = Self.pad("h") + "\n"
            try append(path, header + "old 1\nold 2\n")
            let t = FileTailer(path: path, resume: nil, logger: quietLogger)
            #expect(try drain(t).texts == [Self.pad("h"), "old 1", "old 2"])
            #expect(truncate(path, 0) == 0)
            try append(path, header + "new 1 is longer\nnew 2\nnew 3\n")
            let d = try drain(t)
            #expect(d.texts == [Self.pad("h"), "new 1 is longer", "new 2", "new 3"])
            #expect(d.changes.first == .truncated)
        }
    }

    @Test("case 1: resume refuses a file with the checkpointed inode and header but other bytes before the offset")
    func resumeChecksBytesBeforeOffset() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("app.log").path
            let header = Self.pad("h") + "\n"
            try append(path, header + "old 1\nold 2\n")
            let t = FileTailer(path: path, resume: nil, logger: quietLogger)
            _ = try drain(t)
            let checkpoint = t.position!
            #expect(truncate(path, 0) == 0)
            try append(path, header + "NEW 1\nNEW 2\nnew 3\n")
            let again = FileTailer(path: path, resume: checkpoint, logger: quietLogger)
            let d = try drain(again)
            #expect(d.changes.first == .opened)
            #expect(d.texts == [Self.pad("h"), "NEW 1", "NEW 2", "new 3"])
            #expect(d.lines[0].fileID != checkpoint.fileID)
        }
    }

    @Test("the default sibling rule and --rotated-glob; age order: dated by name, then numbered by N descending")
    func siblingRule() {
        let rule = SiblingRule()
        for name in ["app.log.1", "app.log.12", "app.log-20261126", "app.log.2026-11-26"] {
            #expect(rule.matches(name, base: "app.log"), "\(name)")
        }
        for name in ["app.log", "app.log.1.gz", "app.log-20261126.zst", "app.log.swp", "app.log.lock", "other.log.1", "app.logx"] {
            #expect(!rule.matches(name, base: "app.log"), "\(name)")
        }
        let glob = SiblingRule(globs: ["app-*.log"])
        #expect(glob.matches("app-2026-11-26.log", base: "app.log"))
        #expect(!glob.matches("app.log.1", base: "app.log"))
        let names = ["app.log.1", "app.log-20261126", "app.log.10", "app.log-20261125", "app.log.2"]
        let sorted = names.sorted { SiblingRule.ageKey($0, base: "app.log") < SiblingRule.ageKey($1, base: "app.log") }
        #expect(sorted == ["app.log-20261125", "app.log-20261126", "app.log.10", "app.log.2", "app.log.1"])
    }
}
