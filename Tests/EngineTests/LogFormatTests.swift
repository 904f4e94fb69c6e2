import Foundation
import TestSupport
import Testing

/// `[engine] log_format = "json"` and `etl-produce --log-format json` as a log shipper sees them:
/// every line on stderr is a JSON object (issue 21). Needs no stack: both runs stop at start-up.
@Suite("log format, process level")
struct LogFormatTests {
    /// The JSON objects on `stderr`, recording an issue for any line that is not one.
    func jsonLines(_ stderr: String) -> [[String: Any]] {
        stderr.split(separator: "\n").compactMap { line in
            guard let doc = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                Issue.record("not a JSON line: \(line)")
                return nil
            }
            for field in ["ts", "level", "logger", "msg", "source"] where !(doc[field] is String) {
                Issue.record("no string \(field): \(line)")
            }
            return doc
        }
    }

    @Test("etl-engine: json gives one JSON object per stderr line (config warning, start-up failure), text keeps the plain lines")
    func engine() throws {
        try withTemporaryDirectory { dir in
            // A regular file where the staging directory's parent should be: the engine stops at
            // start-up (exit 2) after logging the config warning, without waiting for Kafka.
            let blocker = dir.appendingPathComponent("blocker")
            try Data("x".utf8).write(to: blocker)
            let secret = "Planted-\(UUID().uuidString)"
            func run(_ format: String?) throws -> ProcessResult {
                let text = """
                    [kafka]
                    brokers = "127.0.0.1:1"
                    topics = ["t"]
                    [sink]
                    url = "file://\(dir.path)/lake"
                    access_key_id = "AKIA"
                    secret_access_key = "\(secret)"
                    [staging]
                    dir = "\(blocker.path)/staging"
                    manifest = "\(blocker.path)/manifest.sqlite"
                    \(format.map { "[engine]\nlog_format = \"\($0)\"" } ?? "")
                    """
                let path = dir.appendingPathComponent("tm-\(format ?? "default").toml").path
                try text.write(toFile: path, atomically: true, encoding: .utf8)
                return try runProcess(productsDirectory.appendingPathComponent("etl-engine").path,
                                      ["--config", path, "--check"], timeout: 60)
            }
            let json = try run("json")
            #expect(json.status == 2, "\(json.stderr)")
            let docs = jsonLines(json.stderr)
            #expect(docs.contains { $0["level"] as? String == "warning" && ($0["msg"] as? String)?.contains("secret_access_key") == true },
                    "\(json.stderr)")
            #expect(docs.contains { $0["level"] as? String == "critical" && ($0["msg"] as? String)?.hasPrefix("cannot start:") == true },
                    "\(json.stderr)")
            #expect(docs.allSatisfy { $0["logger"] as? String == "tidemark.engine" })
            #expect(!json.stderr.contains(secret))

            let text = try run(nil)
            #expect(text.status == 2)
            #expect(text.stderr.contains("warning"), "\(text.stderr)")
            #expect(text.stderr.contains("\netl-engine: cannot start: ") || text.stderr.hasPrefix("etl-engine: cannot start: "),
                    "\(text.stderr)")
            #expect(!text.stderr.contains("{\"ts\""))
            #expect(!text.stderr.contains(secret))
        }
    }

    @Test("etl-produce --log-format json: its failure is a JSON line; an unknown format is a usage error")
    func produce() throws {
        try withTemporaryDirectory { dir in
            let blocker = dir.appendingPathComponent("blocker")
            try Data("x".utf8).write(to: blocker)
            let exe = productsDirectory.appendingPathComponent("etl-produce").path
            let args = ["--file", dir.appendingPathComponent("app.log").path, "--topic", "t", "--brokers", "127.0.0.1:1",
                        "--state", blocker.appendingPathComponent("state").path, "--exit-at-eof"]
            let json = try runProcess(exe, args + ["--log-format", "json"], timeout: 60)
            #expect(json.status != 0, "\(json.stderr)")
            #expect(json.stderr.contains("Not a directory"), "\(json.stderr)")
            let docs = jsonLines(json.stderr)
            #expect(docs.contains { $0["level"] as? String == "critical" && $0["logger"] as? String == "tidemark.produce" },
                    "\(json.stderr)")
            let bad = try runProcess(exe, args + ["--log-format", "xml"], timeout: 60)
            #expect(bad.status == 64)
            #expect(bad.stderr.contains("--log-format"), "\(bad.stderr)")
        }
    }
}
