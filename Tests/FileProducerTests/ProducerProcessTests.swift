import FileProducer
import Foundation
import TestSupport
import Testing

/// A child process started in the background, stopped only by its PID.
final class Child {
    let process = Process()
    let stderrPath: String
    let stdoutPath: String

    init(_ executable: String, _ arguments: [String], logDirectory: URL, name: String) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        stderrPath = logDirectory.appendingPathComponent("\(name).err").path
        stdoutPath = logDirectory.appendingPathComponent("\(name).out").path
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }

    /// Sends `signal` to this child's PID and waits for it to exit.
    func stop(_ signal: Int32) {
        if process.isRunning { kill(pid, signal) }
        process.waitUntilExit()
    }

    /// Waits up to `seconds` for the child to exit by itself; kills it (by PID) after that.
    func wait(seconds: Double) -> Int32 {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { stop(SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit { if process.isRunning { stop(SIGKILL) } }
}

let loggen = productsDirectory.appendingPathComponent("etl-loggen").path
let produce = productsDirectory.appendingPathComponent("etl-produce").path

/// The rotated files and the current one, oldest first.
func logFiles(_ path: String) -> [String] {
    var out: [String] = []
    var k = 1
    while FileManager.default.fileExists(atPath: "\(path).\(k)") { out.insert("\(path).\(k)", at: 0); k += 1 }
    if FileManager.default.fileExists(atPath: path) { out.append(path) }
    return out
}

/// Runs tools/verify_produce.py (confluent-kafka) over the topic and the files.
func verify(_ stack: LocalStack, topic: String, expect: Int, files: [String], timeout: Int = 60) throws -> (ok: Bool, raw: String) {
    let r = try runPythonTool("verify_produce.py", ["--bootstrap", stack.kafkaBootstrap, "--topic", topic,
                                                    "--expect", "\(expect)", "--timeout", "\(timeout)"] + files, timeout: 120)
    return (r.status == 0, r.stdout + r.stderr)
}

func summary(_ stdout: String) -> [String: Any] {
    let last = stdout.split(separator: "\n").last.map(String.init) ?? ""
    return ((try? JSONSerialization.jsonObject(with: Data(last.utf8))) as? [String: Any]) ?? [:]
}

@Suite("etl-produce against the dev broker", .serialized)
struct ProducerProcessTests {
    @Test("kill -9 at 12 seeded random moments (after start-up) while 100,000 lines are written with 3 rotations: every line in Kafka exactly once, in order per file")
    func killNine() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let topic = uniqueName("produce-kill")
            let log = dir.appendingPathComponent("app.log").path
            let state = dir.appendingPathComponent("state").path
            let args = ["--file", log, "--topic", topic, "--brokers", stack.kafkaBootstrap, "--key", "serial",
                        "--state", state, "--checkpoint-interval", "700ms", "--poll-interval", "20ms"]
            // ~13 MB of lines at 9,000 lines/s: 11 s of writing, rotated at 3.5 MB (3 rotations).
            let writer = try Child(loggen, ["--out", log, "--lines", "100000", "--rate", "9000", "--seed", "99",
                                            "--bad-fraction", "0.01", "--rotate-bytes", "3500000", "--keep", "10"],
                                   logDirectory: dir, name: "loggen")
            var rng = SplitMix64(seed: 20_261_126)
            var kills = 0
            var runs = 0
            while kills < 12 {
                let child = try Child(produce, args, logDirectory: dir, name: "produce-\(runs)")
                runs += 1
                // Kill at a random moment after start-up (Kafka connected, partition tails read,
                // file opened), so that on a loaded machine the kills still land while sending.
                let up = Date().addingTimeInterval(15)
                while Date() < up && child.process.isRunning
                    && !child.stderr.contains("following file") && !child.stderr.contains("resuming") {
                    usleep(10_000)
                }
                usleep(UInt32(rng.int(in: 50...1_000)) * 1000)
                #expect(child.process.isRunning, "etl-produce exited by itself: \(child.stderr.suffix(1500))")
                child.stop(SIGKILL)
                kills += 1
            }
            #expect(writer.wait(seconds: 60) == 0, "etl-loggen failed: \(writer.stderr)")
            let final = try runProcess(produce, args + ["--until-idle", "2s"], timeout: 120)
            #expect(final.status == 0, "final run failed: \(final.stderr.suffix(2000))")
            let files = logFiles(log)
            #expect(files.count == 4, "expected 3 rotations: \(files)")
            let v = try verify(stack, topic: topic, expect: 100_000, files: files)
            #expect(v.ok, "not exactly once: \(v.raw)")
            // The resume rule must have been needed at least once: a restart found lines beyond its
            // checkpoint already in Kafka and did not send them again.
            var resumed = 0
            for r in 0..<runs {
                let text = (try? String(contentsOfFile: dir.appendingPathComponent("produce-\(r).err").path, encoding: .utf8)) ?? ""
                resumed += text.components(separatedBy: "were already in Kafka").count - 1
            }
            resumed += final.stderr.components(separatedBy: "were already in Kafka").count - 1
            #expect(resumed > 0, "no restart exercised the Kafka side of the resume rule (kills: \(kills))")
        }
    }

    @Test("lines sent but never checkpointed are not sent again after kill -9 (the resume rule reads them from Kafka)")
    func resumeFromKafka() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let topic = uniqueName("produce-resume")
            let log = dir.appendingPathComponent("app.log").path
            let state = dir.appendingPathComponent("state").path
            #expect(try runProcess(loggen, ["--out", log, "--lines", "3000", "--seed", "4"]).status == 0)
            let args = ["--file", log, "--topic", topic, "--brokers", stack.kafkaBootstrap, "--partition", "2",
                        "--state", state, "--checkpoint-lines", "1000000", "--checkpoint-interval", "1h"]
            let child = try Child(produce, args, logDirectory: dir, name: "first")
            // Wait until the Python client sees all 3,000 records, then kill without a checkpoint.
            let seen = try verify(stack, topic: topic, expect: 3000, files: [log])
            #expect(seen.ok, "\(seen.raw)")
            child.stop(SIGKILL)
            let stored = try CheckpointStore(directory: state, lock: false).load()
            #expect(stored?.offset == 0, "only the start-of-file checkpoint was written")
            let again = try runProcess(produce, args + ["--exit-at-eof"], timeout: 60)
            #expect(again.status == 0, "\(again.stderr.suffix(1500))")
            let s = summary(again.stdout)
            #expect(s["sent"] as? Int == 0)
            #expect(s["alreadyInKafka"] as? Int == 3000)
            let v = try verify(stack, topic: topic, expect: 3000, files: [log])
            #expect(v.ok, "\(v.raw)")
            #expect(v.raw.contains("\"partitions\": [2]"))
        }
    }

    @Test("SIGTERM flushes, checkpoints and exits 0; a restart sends only new lines; too-long lines are skipped and listed")
    func sigtermAndRestart() throws {
        let stack = try LocalStack.current()
        try withTemporaryDirectory { dir in
            let topic = uniqueName("produce-term")
            let log = dir.appendingPathComponent("app.log").path
            let state = dir.appendingPathComponent("state").path
            #expect(try runProcess(loggen, ["--out", log, "--lines", "5000", "--seed", "8"]).status == 0)
            try append(log, String(repeating: "L", count: 3000) + "\n")
            let args = ["--file", log, "--topic", topic, "--brokers", stack.kafkaBootstrap, "--state", state,
                        "--max-line-bytes", "2000"]
            let child = try Child(produce, args, logDirectory: dir, name: "term")
            let size = UInt64(try FileManager.default.attributesOfItem(atPath: log)[.size] as! Int)
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                if let cp = try? CheckpointStore(directory: state, lock: false).load(), cp.offset == size { break }
                usleep(50_000)
            }
            child.stop(SIGTERM)
            #expect(child.process.terminationStatus == 0, "\(child.stderr.suffix(1500))")
            let first = summary(child.stdout)
            #expect(first["sent"] as? Int == 5000)
            #expect(first["tooLong"] as? Int == 1)
            let skipped = try String(contentsOfFile: state + "/skipped.jsonl", encoding: .utf8)
            #expect(skipped.contains("\"offset\":\"\(size - 3001)\""), "\(skipped)")
            #expect(child.stderr.contains("line longer than --max-line-bytes"))

            #expect(try runProcess(loggen, ["--out", log, "--lines", "100", "--seed", "8", "--start-serial", "5000"]).status == 0)
            let second = try runProcess(produce, args + ["--exit-at-eof"], timeout: 60)
            #expect(second.status == 0, "\(second.stderr.suffix(1500))")
            let s = summary(second.stdout)
            #expect(s["sent"] as? Int == 100)
            #expect(s["alreadyInKafka"] as? Int == 0)
            // The checker expects every line, so hand it the file without the skipped one.
            let trimmed = dir.appendingPathComponent("expected.log").path
            var bytes = try Data(contentsOf: URL(fileURLWithPath: log))
            bytes.removeSubrange(Int(size - 3001)..<Int(size))
            try bytes.write(to: URL(fileURLWithPath: trimmed))
            let r = try runPythonTool("kafka_tool.py", ["consume", "--bootstrap", stack.kafkaBootstrap, "--topic", topic,
                                                       "--group", uniqueName("g"), "--expect", "5100", "--timeout", "30"])
            let values = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [[Any]] ?? []
            #expect(values.count == 5100)
            #expect(Set(values.compactMap { $0.first as? Int }) == [0], "default partition 0")
            let expectedLines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            #expect(values.compactMap { $0.last as? String } == expectedLines.map(String.init))
        }
    }

    @Test("an unreadable file or state directory: exit 2 naming the path (run as nobody; root ignores modes); --help teaches")
    func permissionAndHelp() throws {
        try withTemporaryDirectory { dir in
            chmod(dir.path, 0o777)
            let log = dir.appendingPathComponent("secret.log").path
            try append(log, "1 2026-11-26T00:00:00.000Z INFO x\n")
            chmod(log, 0o600)
            let state = dir.appendingPathComponent("state").path
            let args = ["--file", log, "--topic", "t", "--brokers", "127.0.0.1:1", "--state", state]
            if getuid() != 0 { chmod(log, 0o000) }
            let r = getuid() == 0
                ? try runProcess("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", produce] + args)
                : try runProcess(produce, args)
            #expect(r.status == 2, "\(r.stderr)")
            #expect(r.stderr.contains(log) && r.stderr.contains("permission denied"), "\(r.stderr)")

            // A state directory that may not be created: exit 2 naming it.
            if getuid() == 0 {
                let readable = dir.appendingPathComponent("open.log").path
                try append(readable, "1 2026-11-26T00:00:00.000Z INFO x\n")
                let closed = dir.appendingPathComponent("closed")
                try FileManager.default.createDirectory(at: closed, withIntermediateDirectories: true)
                chmod(closed.path, 0o755)  // owned by root: nobody may not create inside
                let stateArgs = ["--file", readable, "--topic", "t", "--brokers", "127.0.0.1:1",
                                 "--state", closed.appendingPathComponent("state").path]
                let s = try runProcess("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", produce] + stateArgs)
                #expect(s.status == 2, "\(s.stderr)")
                #expect(s.stderr.contains(closed.appendingPathComponent("state").path) && s.stderr.contains("permission denied"),
                        "\(s.stderr)")
            }

            let help = try runProcess(produce, ["--help"])
            for word in ["--file", "--topic", "--brokers", "--partition", "--key", "--state", "--max-line-bytes",
                         "--exit-at-eof", "--until-idle", "--start-from", "--rotated-glob", "tidemark.file",
                         "tidemark.fileid", "copytruncate", "Exit codes", "Examples"] {
                #expect(help.stdout.contains(word), "--help lacks \(word)")
            }
            #expect(try runProcess(produce, ["--file", log]).status == 64)
            for bad in [["--start-from", "newest"], ["--rotated-glob", "logs/app.log.*"], ["--rotated-glob", ""]] {
                let r = try runProcess(produce, args + bad)
                #expect(r.status == 64 && r.stderr.contains(bad[0]), "\(bad): \(r.status) \(r.stderr)")
            }
        }
    }
}
