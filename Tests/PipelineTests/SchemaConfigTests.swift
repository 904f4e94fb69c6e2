import Foundation
import Logging
import Manifest
import Parquet
@testable import Pipeline
import TestSupport
import Testing
import TidemarkConfig

/// `[input]` / `[schema]` configuration, the example file, and the schema change rule (issue 20).
@Suite("schema configuration")
struct SchemaConfigTests {
    static let base = "[kafka]\nbrokers = \"b:9092\"\ntopics = [\"t\"]\n[sink]\nurl = \"file:///tmp/x\"\n"
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func load(_ toml: String, _ env: [String: String] = [:]) throws -> EngineConfig {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tm-\(UUID()).toml")
        try toml.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        return try EngineConfig.load(path: url.path, environment: env)
    }

    @Test("tidemark.example.toml loads through EngineConfig and maps a sample application log line")
    func example() throws {
        let c = try EngineConfig.load(path: Self.repoRoot.appendingPathComponent("tidemark.example.toml").path, environment: [:])
        #expect(c.input.format == .json)
        #expect(c.schema.fields.map(\.name) == ["time", "level", "message", "service", "status", "latency_ms", "trace_id"])
        let p = try RecordParser(input: c.input, schema: c.schema)
        let line = #"{"@timestamp":"2026-12-01T10:00:00.123Z","level":"info","msg":"GET /users done","service":"api","#
            + #""http":{"method":"GET","status":200,"latency_ms":12.5},"trace_id":"4bf92f3577b34da6"}"#
        let r = try RecordParserTests.values(p, line).get()
        #expect(r.values["time"] == .t(RecordParserTests.micros("2026-12-01T10:00:00.123Z")))
        #expect(r.values["message"] == .s("GET /users done"))
        #expect(r.values["status"] == .i(200))
        #expect(r.values["latency_ms"] == .d(12.5))
        #expect(r.attributes == #"{"http":{"method":"GET"}}"#)
        #expect(r.eventTime == RecordParserTests.micros("2026-12-01T10:00:00.123Z"))
        // Without level, the default applies.
        let r2 = try RecordParserTests.values(p, #"{"@timestamp":"2026-12-01T10:00:00Z","msg":"m"}"#).get()
        #expect(r2.values["level"] == .s("info"))
    }

    @Test("defaults: format seed, no fields; existing values auto/text/json keep working")
    func defaults() throws {
        let c = try load(Self.base)
        #expect(c.input.format == .seed)
        #expect(c.schema == SchemaOptions())
        for f in ["auto", "text", "json", "seed"] {
            #expect(try load(Self.base + "[input]\nformat = \"\(f)\"\n").input.format.rawValue == f)
        }
    }

    @Test("bad schema configuration is a ConfigError naming the key", arguments: [
        ("[input]\nformat = \"xml\"\n", "input.format"),
        ("[input]\nformat = \"regex\"\n", "input.pattern"),
        ("[input]\nformat = \"regex\"\npattern = \"(?<a>[\"\n", "input.pattern"),
        ("[input]\nformat = \"regex\"\npattern = \"(a)\"\n", "input.pattern"),
        ("[input]\npattern = \"(?<a>x)\"\n", "input.pattern"),
        ("[input]\nformat = \"json\"\n[[schema.fields]]\nname = \"Bad-Name\"\n", "schema.fields[0].name"),
        ("[input]\nformat = \"json\"\n[[schema.fields]]\nname = \"a\"\n[[schema.fields]]\nname = \"kafka_offset\"\n", "schema.fields[1].name"),
        ("[input]\nformat = \"json\"\n[[schema.fields]]\nname = \"a\"\n[[schema.fields]]\nname = \"a\"\n", "schema.fields[1].name"),
        ("[input]\nformat = \"json\"\n[[schema.fields]]\nsource = \"a\"\n", "schema.fields[0].name"),
        ("[input]\nformat = \"json\"\n[[schema.fields]]\nname = \"a\"\ntype = \"float\"\n", "schema.fields[0].type"),
        ("[input]\nformat = \"json\"\n[[schema.fields]]\nname = \"a\"\ntype = \"timestamp\"\ntimestamp_format = \"%Q\"\n", "schema.fields[0].timestamp_format"),
        ("[input]\nformat = \"json\"\n[[schema.fields]]\nname = \"a\"\ntimestamp_format = \"epoch_ms\"\n", "schema.fields[0].timestamp_format"),
        ("[input]\nformat = \"json\"\n[[schema.fields]]\nname = \"a\"\ntype = \"int64\"\ndefault = \"x\"\n", "schema.fields[0].default"),
        ("[input]\nformat = \"json\"\n[[schema.fields]]\nname = \"a\"\nsource = \"b..c\"\n", "schema.fields[0].source"),
        ("[input]\nformat = \"json\"\n[[schema.fields]]\nname = \"a\"\ncolour = \"red\"\n", "schema.fields[0].colour"),
        ("[input]\nformat = \"json\"\n[[schema.fields]]\nname = \"a\"\nrequired = \"yes\"\n", "schema.fields[0].required"),
        ("[input]\nformat = \"regex\"\npattern = \"(?<a>x)\"\n[[schema.fields]]\nname = \"b\"\n", "schema.fields[0].source"),
        ("[input]\nformat = \"json\"\n[schema]\nevent_time_field = \"a\"\n[[schema.fields]]\nname = \"a\"\n", "schema.event_time_field"),
        ("[input]\nformat = \"json\"\n[schema]\nevent_time_field = \"zz\"\n[[schema.fields]]\nname = \"a\"\n", "schema.event_time_field"),
        ("[schema]\nunmapped = \"keep\"\n", "schema.unmapped"),
        ("[schema]\ninclude_key = \"yes\"\n", "schema.include_key"),
        ("[[schema.fields]]\nname = \"a\"\n", "schema.fields"),
        ("[input]\nformat = \"raw\"\n[[schema.fields]]\nname = \"a\"\n", "schema.fields"),
    ])
    func errors(toml: String, key: String) {
        do {
            _ = try load(Self.base + toml)
            Issue.record("accepted:\n\(toml)")
        } catch let e as ConfigError {
            #expect(e.key == key, "\(e)")
        } catch {
            Issue.record("not a ConfigError: \(error)")
        }
    }

    @Test("every configuration key is documented in docs/operations.md")
    func documented() throws {
        let doc = try String(contentsOf: Self.repoRoot.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        for (section, keys) in EngineConfig.keys {
            for key in keys.keys {
                let name = section == "kafka" && key == "properties" ? "[kafka.properties]" : "\(section).\(key)"
                #expect(doc.contains("`\(name)`") || doc.contains(name), "\(name) is not in docs/operations.md")
            }
        }
    }

    static func description(_ format: InputFormat, _ fields: [SchemaField], pattern: String? = nil) throws -> SchemaDescription {
        try RecordParserTests.parser(format, fields, pattern: pattern).layout.description
    }

    @Test("schema change rule: appending optional fields is allowed; removing, renaming, retyping, optional->required, a new required field or another format is refused naming the field")
    func changeRule() throws {
        let v1 = [SchemaField(name: "time", source: "@timestamp", type: .timestamp, required: true), SchemaField(name: "msg"),
                  SchemaField(name: "status", type: .int64)]
        let old = try Self.description(.json, v1)
        #expect(try Self.description(.json, v1).incompatibility(with: old) == nil, "the same schema")
        #expect(try Self.description(.json, v1 + [SchemaField(name: "service")]).incompatibility(with: old) == nil, "appended optional")
        var withDefault = v1
        withDefault[1].defaultText = "none"
        #expect(try Self.description(.json, withDefault).incompatibility(with: old) == nil, "a default changes no column")
        var retyped = v1
        retyped[2].type = .string
        var renamed = v1
        renamed[1].name = "message"
        var required = v1
        required[2].required = true
        let refused: [(SchemaDescription, String)] = [
            (try Self.description(.json, Array(v1.prefix(2))), "'status' was removed"),
            (try Self.description(.json, renamed), "'msg' was removed or renamed"),
            (try Self.description(.json, retyped), "'status' changed type from int64 to string"),
            (try Self.description(.json, required), "'status' changed from optional to required"),
            (try Self.description(.json, v1 + [SchemaField(name: "x", required: true)]), "new field 'x' is required"),
            (try Self.description(.regex, [SchemaField(name: "msg")], pattern: "(?<msg>.*)"), "format changed"),
            (try Self.description(.seed, []), "format changed"),
        ]
        for (new, expected) in refused {
            let problem = new.incompatibility(with: old)
            #expect(problem?.contains(expected) == true, "\(problem ?? "allowed"), expected \(expected)")
        }
    }

    @Test("the engine records the schema in the manifest (v4) and refuses an incompatible one unless accepted")
    func engineEnforcesRule() throws {
        try withTemporaryDirectory { dir in
            let manifest = try Manifest.open(path: dir.appendingPathComponent("manifest.sqlite").path)
            defer { manifest.close() }
            let logger = Logger(label: "test")
            let v1 = try Self.description(.json, [SchemaField(name: "msg"), SchemaField(name: "status", type: .int64)])
            #expect(try manifest.currentSchema() == nil)
            try Engine.checkSchemaChange(v1, manifest: manifest, accept: false, logger: logger)
            #expect(try manifest.currentSchema()?.fingerprint == v1.fingerprint)
            #expect(try manifest.currentSchema()?.json == v1.json)
            let v2 = try Self.description(.json, [SchemaField(name: "msg"), SchemaField(name: "status", type: .int64), SchemaField(name: "svc")])
            try Engine.checkSchemaChange(v2, manifest: manifest, accept: false, logger: logger)
            #expect(try manifest.currentSchema()?.fingerprint == v2.fingerprint, "additive change becomes current")
            let bad = try Self.description(.json, [SchemaField(name: "msg"), SchemaField(name: "status", type: .string)])
            do {
                try Engine.checkSchemaChange(bad, manifest: manifest, accept: false, logger: logger)
                Issue.record("incompatible schema accepted")
            } catch let e as ConfigError {
                #expect(e.key == "schema")
                #expect(e.message.contains("'status' changed type"), "\(e)")
                #expect(e.message.contains("--accept-schema-change") && e.message.contains("sink.url"), "\(e)")
            }
            #expect(try manifest.currentSchema()?.fingerprint == v2.fingerprint, "a refused schema is not recorded")
            try Engine.checkSchemaChange(bad, manifest: manifest, accept: true, logger: logger)
            #expect(try manifest.currentSchema()?.fingerprint == bad.fingerprint)
            #expect(try manifest.schemas().count == 3)
            #expect(try manifest.schema(fingerprint: v1.fingerprint)?.json == v1.json)
        }
    }

    @Test("the canonical description is stable JSON whose fingerprint is its SHA-256, and it lists the columns")
    func canonical() throws {
        let d = try Self.description(.json, RecordParserTests.appFields)
        let again = try Self.description(.json, RecordParserTests.appFields)
        #expect(d == again)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(d.json.utf8)) as? [String: Any])
        #expect(obj["format"] as? String == "json")
        let columns = try #require(obj["columns"] as? [[String: Any]])
        #expect(columns.map { $0["name"] as? String } == RecordParserTests.parserColumns(.json, RecordParserTests.appFields))
        #expect(d.fingerprint.count == 64)
        #expect(d != (try Self.description(.json, Array(RecordParserTests.appFields.dropLast()))))
    }
}

extension RecordParserTests {
    static func parserColumns(_ format: InputFormat, _ fields: [SchemaField]) -> [String?] {
        ((try? parser(format, fields))?.layout.schema.columns.map(\.name)) ?? []
    }
}

/// `etl-audit --deep`'s schema check on real footers.
@Suite("audit: recorded schema")
struct AuditSchemaTests {
    /// The footer of an empty Parquet file with `columns`' schema and `kv` metadata.
    static func footer(_ layout: OutputLayout, kv: [(key: String, value: String)]) throws -> ParquetFileMetadata {
        let out = ParquetMemoryOutput()
        let writer = try ParquetWriter(output: out, schema: layout.schema)
        _ = try writer.close(keyValueMetadata: kv)
        return try ParquetFooter.decode(tail: out.bytes)
    }

    static func kv(_ d: SchemaDescription) -> [(key: String, value: String)] {
        [(BatchMetadataKey.schema, d.json), (BatchMetadataKey.schemaFingerprint, d.fingerprint)]
    }

    @Test("an object whose footer columns match its recorded schema passes; mismatches, bad fingerprints and unknown schemas are reported")
    func schemaCheck() throws {
        let mapped = try RecordParserTests.parser(.json, RecordParserTests.appFields)
        let d = mapped.layout.description
        let record = SchemaRecord(fingerprint: d.fingerprint, json: d.json, firstSeen: Date(), lastUsed: Date())
        #expect(Auditor.schemaProblem(try Self.footer(mapped.layout, kv: Self.kv(d)), recorded: [record]) == nil)
        #expect(Auditor.schemaProblem(try Self.footer(mapped.layout, kv: Self.kv(d)), recorded: nil) == nil)
        // Seed objects with and without a recorded schema.
        #expect(Auditor.schemaProblem(try Self.footer(OutputLayout.seed, kv: Self.kv(OutputLayout.seed.description)), recorded: nil) == nil)
        #expect(Auditor.schemaProblem(try Self.footer(OutputLayout.seed, kv: []), recorded: [record]) == nil, "objects from before schemas were recorded")
        // Columns that are not the recorded schema's.
        let other = try RecordParserTests.parser(.json, Array(RecordParserTests.appFields.dropLast()))
        let wrongColumns = Auditor.schemaProblem(try Self.footer(other.layout, kv: Self.kv(d)), recorded: nil)
        #expect(wrongColumns?.contains("do not match") == true, "\(wrongColumns ?? "nil")")
        #expect(Auditor.schemaProblem(try Self.footer(mapped.layout, kv: []), recorded: nil)?.contains("not the seed columns") == true)
        let badFingerprint = [(BatchMetadataKey.schema, d.json), (BatchMetadataKey.schemaFingerprint, String(repeating: "0", count: 64))]
        #expect(Auditor.schemaProblem(try Self.footer(mapped.layout, kv: badFingerprint), recorded: nil)?.contains("SHA-256") == true)
        let otherRecord = SchemaRecord(fingerprint: other.layout.description.fingerprint, json: other.layout.description.json,
                                       firstSeen: Date(), lastUsed: Date())
        #expect(Auditor.schemaProblem(try Self.footer(mapped.layout, kv: Self.kv(d)), recorded: [otherRecord])?.contains("not recorded") == true)
    }
}
