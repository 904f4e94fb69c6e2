import Foundation
import Parquet
@testable import Pipeline
import Testing
import TidemarkConfig

/// The configured mappings (issue 20): JSON paths, regex groups, raw, and their conversions.
@Suite("record parser: configured schema")
struct RecordParserTests {
    static func parser(_ format: InputFormat, _ fields: [SchemaField], pattern: String? = nil, unmapped: String = "attributes",
                       eventTime: String? = nil) throws -> RecordParser {
        var input = EngineConfig.Input()
        input.format = format
        input.pattern = pattern
        var schema = SchemaOptions()
        schema.fields = fields
        schema.unmapped = unmapped
        schema.eventTimeField = eventTime
        return try RecordParser(input: input, schema: schema)
    }

    /// The parsed fields resolved to comparable values: strings as String, others as they are.
    enum V: Equatable { case null, s(String), i(Int64), d(Double), b(Bool), t(Int64) }

    static func values(_ p: RecordParser, _ line: String) -> Result<(values: [String: V], attributes: String?, eventTime: Int64?), RejectReason> {
        let bytes = Array(line.utf8)
        return bytes.withUnsafeBytes { raw in
            p.parse(raw).map { r in
                var out: [String: V] = [:]
                for (k, v) in r.fieldValues.enumerated() {
                    let name = p.fields[k].name
                    switch v {
                    case .null: out[name] = .null
                    case .int64(let x): out[name] = .i(x)
                    case .double(let x): out[name] = .d(x)
                    case .bool(let x): out[name] = .b(x)
                    case .timestamp(let x): out[name] = .t(x)
                    case .slice, .text: out[name] = .s(v.string(in: raw)!)
                    }
                }
                return (out, r.attributesJSON, r.eventTimeMicros)
            }
        }
    }

    static func micros(_ iso: String) -> Int64 {
        Array(iso.utf8).withUnsafeBytes { LogRecordParser.parseISO8601($0)! }
    }

    static let appFields = [
        SchemaField(name: "time", source: "@timestamp", type: .timestamp, required: true),
        SchemaField(name: "level", defaultText: "info"),
        SchemaField(name: "message", source: "msg", required: true),
        SchemaField(name: "service"),
        SchemaField(name: "status", source: "http.status", type: .int64),
        SchemaField(name: "latency_ms", source: "$.http.latency_ms", type: .double),
        SchemaField(name: "trace_id"),
    ]

    @Test("JSON app logs: @timestamp, msg, nested paths; unmapped members (nested ones too) land in attributes as JSON")
    func jsonAppLog() throws {
        let p = try Self.parser(.json, Self.appFields, eventTime: "time")
        let line = #"{"@timestamp":"2026-12-01T10:00:00.123Z","level":"warn","msg":"GET /users \"done\"","service":"api","#
            + #""http":{"method":"GET","status":200,"latency_ms":12.5},"trace_id":"4bf9","user":{"id":7,"tags":["a","b"]}}"#
        let r = try Self.values(p, line).get()
        #expect(r.values["time"] == .t(Self.micros("2026-12-01T10:00:00.123Z")))
        #expect(r.values["level"] == .s("warn"))
        #expect(r.values["message"] == .s("GET /users \"done\""), "escapes are decoded")
        #expect(r.values["service"] == .s("api"))
        #expect(r.values["status"] == .i(200))
        #expect(r.values["latency_ms"] == .d(12.5))
        #expect(r.values["trace_id"] == .s("4bf9"))
        #expect(r.eventTime == Self.micros("2026-12-01T10:00:00.123Z"))
        // attributes is valid JSON holding exactly the unmapped members.
        let attrs = try #require(r.attributes)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(attrs.utf8)) as? [String: Any])
        #expect(Set(obj.keys) == ["http", "user"])
        #expect((obj["http"] as? [String: Any])?.keys.sorted() == ["method"])
        #expect((obj["user"] as? [String: Any])?["id"] as? Int == 7)
        // drop: no attributes column, nothing collected.
        let dropping = try Self.parser(.json, Self.appFields, unmapped: "drop")
        #expect(try Self.values(dropping, line).get().attributes == nil)
        #expect(dropping.layout.attributesColumn == nil)
        #expect(p.layout.schema.columns.map(\.name) == ["time", "level", "message", "service", "status", "latency_ms", "trace_id",
                                                        "attributes", "ingest_time", "kafka_topic", "kafka_partition",
                                                        "kafka_offset", "kafka_timestamp"])
        // No unmapped member: attributes is null, not "{}".
        let mappedOnly = #"{"@timestamp":"2026-12-01T10:00:00Z","msg":"m"}"#
        #expect(try Self.values(p, mappedOnly).get().attributes == nil)
    }

    @Test("optional fields missing are null or their default; a missing required field is rejected naming it")
    func requiredOptionalDefault() throws {
        let p = try Self.parser(.json, Self.appFields)
        let r = try Self.values(p, #"{"@timestamp":"2026-12-01T10:00:00Z","msg":"m","http":{"status":null}}"#).get()
        #expect(r.values["level"] == .s("info"), "default")
        #expect(r.values["service"] == .null)
        #expect(r.values["status"] == .null, "JSON null is missing")
        for (line, field) in [(#"{"msg":"m"}"#, "time"), (#"{"@timestamp":"2026-12-01T10:00:00Z"}"#, "message"),
                              (#"{"@timestamp":"2026-12-01T10:00:00Z","msg":null}"#, "message")] {
            guard case .failure(let reason) = Self.values(p, line) else { Issue.record("accepted \(line)"); continue }
            #expect(reason.description.contains("'\(field)'"), "\(reason)")
            #expect(reason.description.contains("missing required"), "\(reason)")
        }
    }

    @Test("a value that does not convert is rejected with the field's name and the value's type", arguments: [
        (#"{"@timestamp":"2026-12-01T10:00:00Z","msg":"m","http":{"status":"abc"}}"#, "status", "string"),
        (#"{"@timestamp":"2026-12-01T10:00:00Z","msg":"m","http":{"status":{"code":1}}}"#, "status", "object"),
        (#"{"@timestamp":"2026-12-01T10:00:00Z","msg":"m","http":{"status":1.5}}"#, "status", "number"),
        (#"{"@timestamp":"2026-12-01T10:00:00Z","msg":"m","http":{"latency_ms":true}}"#, "latency_ms", "boolean"),
        (#"{"@timestamp":"2026-12-01T10:00:00Z","msg":"m","http":{"latency_ms":[1]}}"#, "latency_ms", "array"),
        (#"{"@timestamp":"yesterday","msg":"m"}"#, "time", "string"),
        (#"{"@timestamp":1764583200,"msg":"m"}"#, "time", "number"),
    ])
    func typeErrors(line: String, field: String, type: String) throws {
        let p = try Self.parser(.json, Self.appFields)
        guard case .failure(let reason) = Self.values(p, line) else { Issue.record("accepted \(line)"); return }
        #expect(reason.description.contains("'\(field)'"), "\(reason)")
        #expect(reason.description.contains(type), "\(reason)")
    }

    @Test("numbers, booleans, objects and arrays into string fields become their JSON text; numeric strings convert")
    func stringConversions() throws {
        let p = try Self.parser(.json, [SchemaField(name: "a"), SchemaField(name: "b"), SchemaField(name: "c"), SchemaField(name: "d"),
                                        SchemaField(name: "e", type: .int64), SchemaField(name: "f", type: .double),
                                        SchemaField(name: "g", type: .bool), SchemaField(name: "h", source: "k\\.dotted")])
        let r = try Self.values(p, #"{"a": 200, "b": true, "c": {"x": [1, 2]}, "d": [null], "e": "-42", "f": "1e3", "g": "false", "k.dotted": "yes"}"#).get()
        #expect(r.values["a"] == .s("200"))
        #expect(r.values["b"] == .s("true"))
        #expect(r.values["c"] == .s(#"{"x": [1, 2]}"#))
        #expect(r.values["d"] == .s("[null]"))
        #expect(r.values["e"] == .i(-42))
        #expect(r.values["f"] == .d(1000))
        #expect(r.values["g"] == .b(false))
        #expect(r.values["h"] == .s("yes"), "\\. is a literal dot in a key")
    }

    @Test("keys and values with escapes match and decode; duplicate keys keep the first value")
    func escapes() throws {
        let p = try Self.parser(.json, [SchemaField(name: "ts", source: "@timestamp", type: .timestamp), SchemaField(name: "msg")])
        let r = try Self.values(p, #"{"\u0040timestamp":"2026-12-01T10:00:00Z","msg":"caf\u00e9 \ud83d\ude00 \n","msg":"second"}"#).get()
        #expect(r.values["ts"] == .t(Self.micros("2026-12-01T10:00:00Z")))
        #expect(r.values["msg"] == .s("café 😀 \n"))
        guard case .failure(let e) = Self.values(p, #"{"msg":"\ud83d"}"#) else { Issue.record("lone surrogate accepted"); return }
        #expect(e.description.contains("surrogate"))
    }

    @Test("epoch timestamps: ms and us as numbers or strings, seconds with fractions")
    func epochTimestamps() throws {
        let ms = try Self.parser(.json, [SchemaField(name: "ts", type: .timestamp, timestampFormat: .epochMillis)])
        let expected = Self.micros("2025-12-01T10:00:00.123Z")
        let millis = expected / 1000
        #expect(try Self.values(ms, #"{"ts": \#(millis)}"#).get().values["ts"] == .t(expected))
        #expect(try Self.values(ms, #"{"ts": "\#(millis)"}"#).get().values["ts"] == .t(expected))
        let s = try Self.parser(.json, [SchemaField(name: "ts", type: .timestamp, timestampFormat: .epochSeconds)])
        #expect(try Self.values(s, #"{"ts": \#(Double(expected) / 1e6)}"#).get().values["ts"] == .t(expected))
        let us = try Self.parser(.json, [SchemaField(name: "ts", type: .timestamp, timestampFormat: .epochMicros)])
        #expect(try Self.values(us, #"{"ts": \#(expected)}"#).get().values["ts"] == .t(expected))
        guard case .failure(let e) = Self.values(ms, #"{"ts": 1e300}"#) else { Issue.record("out of range accepted"); return }
        #expect(e.description.contains("'ts'"))
    }

    static let nginxPattern = #"^(?<remote_addr>\S+) - (?<remote_user>\S+) \[(?<time_local>[^\]]+)\] "(?<method>\S+) (?<path>\S+) (?<protocol>[^"]+)" (?<status>\d{3}) (?<body_bytes_sent>\d+) "(?<referer>[^"]*)" "(?<user_agent>[^"]*)"$"#

    @Test("nginx combined access logs via regex: time with %z, typed status and bytes, '-' as missing for typed fields")
    func nginx() throws {
        let fields = [
            SchemaField(name: "time", source: "time_local", type: .timestamp,
                        timestampFormat: TimestampFormat(config: "%d/%b/%Y:%H:%M:%S %z")!, required: true),
            SchemaField(name: "remote_addr"), SchemaField(name: "method"), SchemaField(name: "path"),
            SchemaField(name: "status", type: .int64, required: true), SchemaField(name: "bytes", source: "body_bytes_sent", type: .int64),
            SchemaField(name: "referer"), SchemaField(name: "user", source: "remote_user"),
        ]
        let p = try Self.parser(.regex, fields, pattern: Self.nginxPattern, eventTime: "time")
        let line = #"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "-" "Mozilla/4.08 [en] (Win98; I ;Nav)""#
        let r = try Self.values(p, line).get()
        #expect(r.values["time"] == .t(Self.micros("2000-10-10T13:55:36-07:00")))
        #expect(r.eventTime == Self.micros("2000-10-10T13:55:36-07:00"))
        #expect(r.values["remote_addr"] == .s("127.0.0.1"))
        #expect(r.values["method"] == .s("GET"))
        #expect(r.values["path"] == .s("/apache_pb.gif"))
        #expect(r.values["status"] == .i(200))
        #expect(r.values["bytes"] == .i(2326))
        #expect(r.values["referer"] == .s("-"), "a string field keeps '-'")
        #expect(r.values["user"] == .s("frank"))
        guard case .failure(let e) = Self.values(p, "not an access log line") else { Issue.record("accepted"); return }
        #expect(e.description.contains("input.pattern"))
        // Without fields every named group is an optional string column, in pattern order.
        let all = try Self.parser(.regex, [], pattern: Self.nginxPattern)
        #expect(all.layout.schema.columns.prefix(3).map(\.name) == ["remote_addr", "remote_user", "time_local"])
        #expect(try Self.values(all, line).get().values["user_agent"] == .s("Mozilla/4.08 [en] (Win98; I ;Nav)"))
    }

    @Test("regex group names may hold underscores and be referred back to with \\k<name>")
    func regexGroupNames() throws {
        let p = try Self.parser(.regex, [], pattern: #"^(?<quote_char>['"])(?<inner_text>[^'"]*)\k<quote_char>$"#)
        #expect(try Self.values(p, "'it'").get().values == ["quote_char": .s("'"), "inner_text": .s("it")])
        guard case .failure = Self.values(p, "'it\"") else { Issue.record("a mismatched back reference matched"); return }
    }

    @Test("strftime patterns: %e %j %f %T %b in any case, %% and literals; out-of-range dates are rejected", arguments: [
        ("%Y-%m-%d %T", "2024-02-29 23:59:60", "2024-03-01T00:00:00Z"),
        ("%e %b %Y %H:%M:%S.%f", " 5 MAR 2026 01:02:03.5", "2026-03-05T01:02:03.5Z"),
        ("%Y/%j %H%%%M", "2024/366 10%30", "2024-12-31T10:30:00Z"),
        ("%d/%b/%Y:%H:%M:%S %z", "01/jan/2026:00:00:00 +05:30", "2025-12-31T18:30:00Z"),
    ])
    func strftime(pattern: String, text: String, iso: String) throws {
        let f = try #require(StrftimePattern(pattern))
        #expect(Array(text.utf8).withUnsafeBytes { f.parse($0) } == Self.micros(iso))
    }

    @Test("strftime rejects what does not match")
    func strftimeRejects() throws {
        let f = try #require(StrftimePattern("%Y-%m-%d"))
        for bad in ["2023-02-29", "2026-13-01", "2026-01-01x", "26-01-01", ""] {
            #expect(Array(bad.utf8).withUnsafeBytes { f.parse($0) } == nil, "\(bad)")
        }
        #expect(StrftimePattern("%Q") == nil)
    }

    @Test("raw keeps the whole value as one string column; invalid UTF-8 is rejected")
    func raw() throws {
        let p = try Self.parser(.raw, [])
        #expect(p.layout.schema.columns.map(\.name) == ["value", "ingest_time", "kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp"])
        let bytes = Array("anything at all {\n".utf8)
        guard case .success(let r) = p.parse(bytes) else { Issue.record("rejected"); return }
        #expect(r.rawRange == 0..<bytes.count)
        #expect(r.eventTimeMicros == nil)
        guard case .failure(let e) = p.parse([0x61, 0xC3, 0x28]) else { Issue.record("invalid UTF-8 accepted"); return }
        #expect(e.description.contains("UTF-8"))
    }

    @Test("seed formats keep OutputSchema's columns exactly; json without fields is the seed JSON")
    func seedLayout() throws {
        for format in [InputFormat.seed, .auto, .text, .json] {
            let p = try Self.parser(format, [])
            #expect(p.layout.schema == OutputSchema.schema, "\(format)")
            #expect(p.layout.ingestColumn == OutputSchema.ingestTime)
        }
        let legacy = try Self.parser(.json, [])
        guard case .success(let r) = legacy.parse(Array(#"{"serial":1,"ts":"2026-01-01T00:00:00Z","level":"info","message":"m","x":1}"#.utf8)),
              let seed = r.seed else { Issue.record("seed JSON rejected"); return }
        #expect(seed.attributes == #"{"x":1}"#)
        #expect(r.eventTimeMicros == Self.micros("2026-01-01T00:00:00Z"))
    }

    @Test("kafka_key: UTF-8 keys as text, others (and text starting with base64:) as base64: + Base64")
    func keyText() {
        #expect(Array("user-7".utf8).withUnsafeBytes { KafkaKeyText.text($0) } == "user-7")
        let binary: [UInt8] = [0xFF, 0x00, 0x10]
        #expect(binary.withUnsafeBytes { KafkaKeyText.text($0) } == "base64:" + Data(binary).base64EncodedString())
        #expect(Array("base64:x".utf8).withUnsafeBytes { KafkaKeyText.text($0) } == "base64:" + Data("base64:x".utf8).base64EncodedString())
    }

    @Test("the JSON scanner agrees with JSONSerialization on which texts are objects (valid and broken ones)")
    func scannerAgreesOnValidity() throws {
        let p = try Self.parser(.json, [SchemaField(name: "a")], unmapped: "drop")
        // (Not {"a":1,}: Foundation on Linux accepts a trailing comma, RFC 8259 and this scanner do not.)
        let cases = [#"{}"#, #" { "a" : [ 1 , -0.5e+3 , "x" ] } "#, #"{"a":01}"#, #"{"a":.5}"#, #"{"a":1.}"#,
                     #"{"a":"\x"}"#, #"{"a":tru}"#, #"{"a":nul}"#, #"{"a" 1}"#, #"{"a":1} x"#, #"[1]"#, #"{"a":"\u12"}"#,
                     #"{"a":{"b":{"c":[[[]]]}}}"#, #"{"a":-}"#, #"{"a":1e}"#, "{\"a\":\"tab\tin string\"}", #"{"a":[1 2]}"#]
        for text in cases {
            let ours: Bool
            if case .success = p.parse(Array(text.utf8)) { ours = true } else { ours = false }
            let reference = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) is [String: Any]
            #expect(ours == reference, "\(text): ours \(ours), JSONSerialization \(reference)")
        }
        let deep = String(repeating: "{\"a\":", count: 100) + "1" + String(repeating: "}", count: 100)
        guard case .failure(let e) = p.parse(Array(deep.utf8)) else { Issue.record("100 levels accepted"); return }
        #expect(e.description.contains("nested"))
    }

    @Test("fuzz: 200,000 random and mutated inputs to the JSON and regex mappings never trap; accepted JSON is valid JSON")
    func fuzz() throws {
        let json = try Self.parser(.json, Self.appFields)
        let regex = try Self.parser(.regex, [SchemaField(name: "status", type: .int64), SchemaField(name: "time", source: "time_local", type: .timestamp,
                                                                                                  timestampFormat: TimestampFormat(config: "%d/%b/%Y:%H:%M:%S %z")!)],
                                    pattern: Self.nginxPattern)
        var rng = SplitMix64(seed: 0x5C4E_3A20)
        let seeds = [
            #"{"@timestamp":"2026-12-01T10:00:00.123Z","level":"info","msg":"a\"b\u00e9","http":{"status":200,"latency_ms":1.5e1},"x":[1,{"y":null}],"t":true}"#,
            #"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 404 0 "-" "curl/8""#,
        ].map { Array($0.utf8) }
        var accepted = [0, 0]
        for i in 0..<200_000 {
            let which = i % 2
            var input: [UInt8]
            if i % 8 < 2 {
                input = (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                if which == 0 && !input.isEmpty { input[0] = UInt8(ascii: "{") }
            } else {
                input = seeds[which]
                for _ in 0..<(1 + Int(rng.next() % 3)) where !input.isEmpty {
                    let at = Int(rng.next() % UInt64(input.count))
                    switch rng.next() % 4 {
                    case 0: input[at] = UInt8(truncatingIfNeeded: rng.next())
                    case 1: input.remove(at: at)
                    case 2: input.insert(Array(#"{}[]",:\0"#.utf8)[Int(rng.next() % 9)], at: at)
                    default: input = Array(input[..<at])
                    }
                }
            }
            switch (which == 0 ? json : regex).parse(input) {
            case .success(let r):
                accepted[which] += 1
                for v in r.fieldValues { if case .slice(let s) = v { #expect(s.upperBound <= input.count) } }
                if which == 0 {
                    #expect((try? JSONSerialization.jsonObject(with: Data(input))) is [String: Any],
                            "accepted invalid JSON: \(String(decoding: input, as: UTF8.self))")
                    if let a = r.attributesJSON { #expect((try? JSONSerialization.jsonObject(with: Data(a.utf8))) is [String: Any]) }
                }
            case .failure(let reason):
                #expect(!reason.description.isEmpty)
            }
        }
        #expect(accepted[0] > 1000 && accepted[1] > 1000, "mutations of valid lines should often stay valid: \(accepted)")
    }
}
