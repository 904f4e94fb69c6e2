import Foundation
import Logging
import Testing
import TidemarkLogging

/// The `log_format = "json"` handler (issue 21).
@Suite("JSON log lines")
struct JSONLogHandlerTests {
    /// Collects the lines a handler writes.
    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func append(_ line: String) { lock.withLock { lines.append(line) } }
        var all: [String] { lock.withLock { lines } }
    }

    /// Parses one line with Foundation's JSONSerialization; records an issue unless it is a
    /// single JSON object followed by exactly one newline.
    func parse(_ line: String) -> [String: Any] {
        #expect(line.hasSuffix("\n") && line.dropLast().firstIndex(of: "\n") == nil, "one line: \(line.debugDescription)")
        let object = try? JSONSerialization.jsonObject(with: Data(line.utf8))
        guard let doc = object as? [String: Any] else {
            Issue.record("not a JSON object: \(line.debugDescription)")
            return [:]
        }
        return doc
    }

    @Test("a logged event is one JSON object with ts, level, logger, msg, source and every metadata key as a string")
    func fields() throws {
        let lines = Lines()
        var logger = Logger(label: "tidemark.test") { label in
            var h = JSONLogHandler(label: label, metadataProvider: .init { ["request": "r-9"] }, output: { lines.append($0) })
            h.logLevel = .info
            return h
        }
        logger[metadataKey: "group"] = "etl"
        let before = Date()
        logger.debug("not written: below info")
        logger.warning("upload retried", metadata: ["attempt": "\(3)", "partition": .stringConvertible(7),
                                                    "tags": ["a", "b"], "group": "override"])
        #expect(lines.all.count == 1)
        let doc = parse(lines.all.first ?? "")
        #expect(doc["level"] as? String == "warning")
        #expect(doc["logger"] as? String == "tidemark.test")
        #expect(doc["msg"] as? String == "upload retried")
        #expect(doc["source"] as? String == "PipelineTests")
        #expect(doc["attempt"] as? String == "3")
        #expect(doc["partition"] as? String == "7")
        #expect(doc["tags"] as? String == Logger.MetadataValue.array(["a", "b"]).description)
        #expect(doc["group"] as? String == "override", "the call's metadata wins over the handler's")
        #expect(doc["request"] as? String == "r-9", "the metadata provider's keys are written")
        #expect(doc.count == 10)
        // ts: RFC 3339, UTC, milliseconds, and now.
        let ts = doc["ts"] as? String ?? ""
        #expect(ts.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(ts)")
        let parser = ISO8601DateFormatter()
        parser.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let when = try #require(parser.date(from: ts))
        #expect(when.timeIntervalSince(before) > -1 && when.timeIntervalSince(before) < 30)
        // The fixed fields come first, in order.
        #expect(lines.all[0].hasPrefix("{\"ts\":\"\(ts)\",\"level\":\"warning\",\"logger\":\"tidemark.test\",\"msg\":"))
    }

    @Test("RFC 3339 timestamps in UTC with zero-padded milliseconds")
    func timestamps() {
        #expect(JSONLogHandler.timestamp(seconds: 0, milliseconds: 5) == "1970-01-01T00:00:00.005Z")
        #expect(JSONLogHandler.timestamp(seconds: 1_796_409_205, milliseconds: 123) == "2026-12-04T18:33:25.123Z")
        #expect(JSONLogHandler.timestamp(seconds: 951_782_400, milliseconds: 999) == "2000-02-29T00:00:00.999Z")
    }

    @Test("metadata never overwrites a fixed field: a colliding key is written as meta.<key>")
    func collisions() {
        let line = JSONLogHandler.line(timestamp: "T", level: .error, label: "L", message: "real message", source: "S",
                                       metadata: ["msg": "m2", "ts": "t2", "meta.ts": "x", "level": "debug",
                                                  "logger": "l2", "source": "s2"])
        let doc = parse(line)
        #expect(doc["ts"] as? String == "T")
        #expect(doc["level"] as? String == "error")
        #expect(doc["logger"] as? String == "L")
        #expect(doc["msg"] as? String == "real message")
        #expect(doc["source"] as? String == "S")
        #expect(doc["meta.msg"] as? String == "m2")
        #expect(doc["meta.level"] as? String == "debug")
        #expect(doc["meta.logger"] as? String == "l2")
        #expect(doc["meta.source"] as? String == "s2")
        #expect(doc["meta.ts"] as? String == "x", "a metadata key named meta.ts keeps its name")
        #expect(doc["meta.meta.ts"] as? String == "t2", "and ts moves on to the next free name")
        #expect(doc.count == 11)
        // No key appears twice in the text (JSONSerialization would keep only one).
        #expect(line.components(separatedBy: "\"meta.ts\":").count == 2)
    }

    @Test("quotes, backslashes, control characters, line separators and invalid UTF-8 are escaped or replaced")
    func escaping() {
        let hostile = "quote \" backslash \\ newline \n cr \r tab \t nul \u{0} esc \u{1B} del \u{7F} ls \u{2028} ps \u{2029} "
            + "bell \u{07} snow ☃ emoji 🦀 slash / end"
        let invalid = String(decoding: [0x61, 0xFF, 0xC3, 0x28, 0x62] as [UInt8], as: UTF8.self)
        let lines = Lines()
        let logger = Logger(label: "label \"with\" quotes\n") { JSONLogHandler(label: $0, output: { lines.append($0) }) }
        logger.error("\(hostile)", metadata: ["key \"q\"\n": "\(hostile)", "bytes": "\(invalid)"])
        logger.error("\(invalid)")
        #expect(lines.all.count == 2)
        for line in lines.all {
            // Only printable text on the line: every control character is escaped.
            #expect(line.unicodeScalars.dropLast().allSatisfy { $0.value >= 0x20 && $0.value != 0x7F && $0.value != 0x2028 && $0.value != 0x2029 },
                    "\(line.debugDescription)")
        }
        let doc = parse(lines.all[0])
        #expect(doc["msg"] as? String == hostile)
        #expect(doc["logger"] as? String == "label \"with\" quotes\n")
        #expect(doc["key \"q\"\n"] as? String == hostile)
        #expect(doc["bytes"] as? String == "a\u{FFFD}\u{FFFD}(b")
        #expect(parse(lines.all[1])["msg"] as? String == "a\u{FFFD}\u{FFFD}(b")
        #expect(lines.all[0].contains(#"\u0000"#) && lines.all[0].contains(#"\u001b"#) && lines.all[0].contains(#"\u2028"#))
        #expect(lines.all[0].contains(#"\"with\""#) && lines.all[0].contains(#"backslash \\ newline \n"#))
    }

    @Test("LogFormat: text is swift-log's StreamLogHandler at the level given, json the JSON handler")
    func formats() {
        #expect(LogFormat(rawValue: "text") == .text && LogFormat(rawValue: "json") == .json && LogFormat(rawValue: "xml") == nil)
        let text = LogFormat.text.makeHandler(label: "a", level: .warning)
        #expect(text is StreamLogHandler && text.logLevel == .warning)
        let json = LogFormat.json.makeHandler(label: "a", level: .debug)
        #expect(json is JSONLogHandler && json.logLevel == .debug)
    }
}
