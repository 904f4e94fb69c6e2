import Foundation
import Testing
import TidemarkConfig

/// Loading, overrides, unknown keys and TOML, with TidemarkConfig's checks only
/// (`.configOnly`): none of these files reaches Pipeline's checks (PipelineTests' "engine
/// configuration" suite covers the seam).
/// The smallest valid configuration, to which a test appends the tables it is about.
private let minimalConfig = "[kafka]\nbrokers = \"b\"\ntopics = [\"t\"]\n[sink]\nurl = \"file:///x\"\n"

/// Loads `toml` (written to a temporary file) with config-only checks.
private func load(_ toml: String, _ env: [String: String] = [:]) throws -> EngineConfig {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("tm-\(UUID()).toml")
    try toml.write(to: url, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: url) }
    return try EngineConfig.load(path: url.path, environment: env, checks: .configOnly)
}

@Suite("engine configuration (TidemarkConfig)")
struct EngineConfigTests {
    let sample = """
        # Tidemark example
        [kafka]
        brokers = "127.0.0.1:9092"
        topics = ["logs", "audit"]
        group_id = "etl"
        [kafka.properties]
        "client.id" = "tm-1"
        ssl.ca.location = "/etc/ca.pem"

        [sink]
        url = "s3://bucket/lake/logs"
        endpoint = "http://127.0.0.1:9000"
        part_size = "8MiB"

        [staging]
        dir = "/var/lib/tm/staging"
        manifest = '/var/lib/tm/manifest.sqlite'

        [batch]
        max_records = 100_000
        max_bytes = "64MiB"
        max_age = "500ms"

        [input]
        format = "text"
        """

    @Test("a full TOML file maps onto every field; durations and sizes use their units")
    func parsesFile() throws {
        let root = try TOML.parse(sample)
        _ = root
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tm-\(UUID()).toml")
        try sample.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        let c = try EngineConfig.load(path: url.path, environment: [:], checks: .configOnly)
        #expect(c.kafka.brokers == "127.0.0.1:9092")
        #expect(c.kafka.topics == ["logs", "audit"])
        #expect(c.kafka.groupID == "etl")
        #expect(c.kafka.properties == ["client.id": "tm-1", "ssl.ca.location": "/etc/ca.pem"])
        #expect(c.sink.url == "s3://bucket/lake/logs")
        #expect(c.sink.partSize == 8 << 20)
        #expect(c.staging.manifest == "/var/lib/tm/manifest.sqlite")
        #expect(c.batch.maxRecords == 100_000)
        #expect(c.batch.maxBytes == 64 << 20)
        #expect(c.batch.maxAge == .milliseconds(500))
        #expect(c.input.format == .text)
        #expect(c.warnings.isEmpty)
    }

    @Test("[manifest] retention: default 7 days, pruned every min(retention, 10 min); 0 turns pruning off; TIDEMARK_MANIFEST_RETENTION overrides")
    func manifestRetention() throws {
        let base = minimalConfig
        let d = try load(base)
        #expect(d.manifest.retention == .seconds(7 * 86_400))
        #expect(d.manifest.pruneInterval == .seconds(600))
        let short = try load(base + "[manifest]\nretention = \"30s\"")
        #expect(short.manifest.pruneInterval == .seconds(30))
        let off = try load(base + "[manifest]\nretention = \"0\"")
        #expect(off.manifest.pruneInterval == nil)
        #expect(try load(base, ["TIDEMARK_MANIFEST_RETENTION": "1d"]).manifest.retention == .seconds(86_400))
    }

    @Test("[engine] encoder_threads: default 0 (one per core), a number is kept, TIDEMARK_ENGINE_ENCODER_THREADS overrides")
    func encoderThreads() throws {
        let base = minimalConfig
        #expect(try load(base).engine.encoderThreads == 0)
        #expect(try load(base + "[engine]\nencoder_threads = 3").engine.encoderThreads == 3)
        #expect(try load(base, ["TIDEMARK_ENGINE_ENCODER_THREADS": "1"]).engine.encoderThreads == 1)
    }

    @Test("environment variables TIDEMARK_<SECTION>_<KEY> override the file")
    func envOverrides() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tm-\(UUID()).toml")
        try sample.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        let c = try EngineConfig.load(path: url.path, environment: [
            "TIDEMARK_KAFKA_BROKERS": "10.1.1.1:9093", "TIDEMARK_KAFKA_TOPICS": "a, b",
            "TIDEMARK_BATCH_MAX_AGE": "2m", "TIDEMARK_SINK_PATH_STYLE": "false",
            "TIDEMARK_KAFKA_PROPERTIES": "security.protocol=SSL", "TIDEMARK_BATCH_MEMORY_BUDGET": "256MiB",
        ], checks: .configOnly)
        #expect(c.batch.memoryBudget == 256 << 20)
        #expect(c.kafka.brokers == "10.1.1.1:9093")
        #expect(c.kafka.topics == ["a", "b"])
        #expect(c.batch.maxAge == .seconds(120))
        #expect(c.sink.pathStyle == false)
        #expect(c.kafka.properties["security.protocol"] == "SSL")
        #expect(c.kafka.properties["client.id"] == "tm-1")
    }

    @Test("unknown keys, wrong types and bad values are errors naming the key", arguments: [
        ("[kafka]\nbrokers = \"b\"\ntopics = [\"t\"]\nbrokerz = 1\n[sink]\nurl = \"file:///x\"", "kafka.brokerz"),
        ("[kafka]\nbrokers = \"b\"\ntopics = [\"t\"]\n[sink]\nurl = \"file:///x\"\n[sinks]\n", "sinks"),
        ("[kafka]\nbrokers = 5\ntopics = [\"t\"]\n[sink]\nurl = \"file:///x\"", "kafka.brokers"),
        ("[kafka]\nbrokers = \"b\"\ntopics = [\"t\"]\n[sink]\nurl = \"file:///x\"\n[batch]\nmax_age = \"soon\"", "batch.max_age"),
        ("[kafka]\nbrokers = \"b\"\ntopics = [\"t\"]\n[sink]\nurl = \"file:///x\"\npart_size = \"1MiB\"", "sink.part_size"),
        ("[kafka]\nbrokers = \"b\"\ntopics = [\"a/b\"]\n[sink]\nurl = \"file:///x\"", "kafka.topics"),
        ("[kafka]\nbrokers = \"b\"\ntopics = [\"t\"]\n[sink]\nurl = \"http://x\"", "sink.url"),
        ("[kafka]\ntopics = [\"t\"]\n[sink]\nurl = \"file:///x\"", "kafka.brokers"),
        ("[kafka]\nbrokers = \"b\"\ntopics = [\"t\"]\n[sink]\nurl = \"file:///x\"\n[input]\nformat = \"xml\"", "input.format"),
        ("[kafka]\nbrokers = \"b\"\ntopics = [\"t\"]\n[sink]\nurl = \"file:///x\"\n[batch]\nmemory_budget = \"1MiB\"", "batch.memory_budget"),
        ("[kafka]\nbrokers = \"b\"\ntopics = [\"t\"]\n[sink]\nurl = \"file:///x\"\n[manifest]\nretention = \"500ms\"", "manifest.retention"),
        ("[kafka]\nbrokers = \"b\"\ntopics = [\"t\"]\n[sink]\nurl = \"file:///x\"\n[manifest]\nretention = \"a week\"", "manifest.retention"),
        ("[kafka]\nbrokers = \"b\"\ntopics = [\"t\"]\n[sink]\nurl = \"file:///x\"\n[manifest]\nkeep = \"7d\"", "manifest.keep"),
        ("[kafka]\nbrokers = \"b\"\ntopics = [\"t\"]\n[sink]\nurl = \"file:///x\"\n[engine]\nencoder_threads = -1", "engine.encoder_threads"),
        ("[kafka]\nbrokers = \"b\"\ntopics = [\"t\"]\n[sink]\nurl = \"file:///x\"\n[engine]\nencoder_threads = 65", "engine.encoder_threads"),
    ])
    func rejects(_ toml: String, _ key: String) throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tm-\(UUID()).toml")
        try toml.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        do {
            _ = try EngineConfig.load(path: url.path, environment: [:], checks: .configOnly)
            Issue.record("accepted")
        } catch let e as ConfigError {
            #expect(e.key == key, "\(e)")
            #expect(e.description.contains(key))
        }
    }

    @Test("a secret in the file is accepted with a warning that does not contain the secret")
    func secretWarning() throws {
        let toml = "[kafka]\nbrokers = \"b\"\ntopics = [\"t\"]\n[sink]\nurl = \"s3://b/p\"\naccess_key_id = \"AKIAX\"\nsecret_access_key = \"SeCrEt-123\""
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tm-\(UUID()).toml")
        try toml.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        let c = try EngineConfig.load(path: url.path, environment: [:], checks: .configOnly)
        #expect(c.warnings.count == 1)
        #expect(!c.warnings.joined().contains("SeCrEt-123"))
    }

    @Test("TOML syntax errors name the line")
    func syntaxErrors() {
        // An array still open at the end of the document is reported at the end of its last line
        // (toml++ places end-of-file there), which is the line to fix.
        for (text, line) in [("a = 1\nb = \n", 2), ("[t]\nx = \"unterminated\n", 2), ("a = 1\na = 2", 2), ("x = [1, 2\n", 1),
                             ("x = [\n  1,\n  2\n", 3)] {
            do {
                _ = try TOML.parse(text)
                Issue.record("accepted \(text)")
            } catch let e as TOMLError {
                #expect(e.line == line, "\(text): \(e)")
            } catch {
                Issue.record("\(error)")
            }
        }
        #expect((try? TOML.parse("a = \"x\\u00e9\\n\" # c\nb = [ 'l', \"m\" , ]\nc = { d = 1, e.f = true }\ng = 1_000\nh = 1.5")) == [
            "a": .string("x\u{e9}\n"), "b": .array([.string("l"), .string("m")]),
            "c": .table(["d": .integer(1), "e": .table(["f": .boolean(true)])]), "g": .integer(1000), "h": .float(1.5),
        ])
    }

    @Test("syntax errors also name the column, and a duplicate key is one")
    func syntaxErrorColumns() {
        for (text, line, column) in [("a = 1\nb = \n", 2, 5), ("a = 1\na = 2", 2, 5), ("[x]\na = 1\n[x]\n", 3, 1),
                                     ("a = 9223372036854775808\n", 1, 24)] {
            do {
                _ = try TOML.parse(text)
                Issue.record("accepted \(text)")
            } catch let e as TOMLError {
                #expect(e.line == line && e.column == column, "\(text): \(e)")
                #expect("\(e)".hasPrefix("line \(line), column \(column): "), "\(e)")
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    @Test("the TOML the config relies on: quoted dotted keys stay one key, strings keep $ as written, multi-line strings, Int64 bounds")
    func parsedValues() throws {
        let root = try TOML.parse(#"""
            [kafka.properties]
            "sasl.password" = '${file:/run/secrets/kafka}'
            ssl.ca.location = "/etc/ca.pem"
            "sasl.jaas" = """
            one \
              two
            $${HOME}"""
            big = 9_223_372_036_854_775_807
            small = -9223372036854775808
            hex = 0xff
            raw = '''
            C:\dir\${X}'''
            """#)
        #expect(root == ["kafka": .table(["properties": .table([
            "sasl.password": .string("${file:/run/secrets/kafka}"),
            "ssl": .table(["ca": .table(["location": .string("/etc/ca.pem")])]),
            "sasl.jaas": .string("one two\n$${HOME}"),
            "big": .integer(Int64.max), "small": .integer(Int64.min), "hex": .integer(255),
            "raw": .string(#"C:\dir\${X}"#),
        ])])])
    }

    @Test("dates are refused naming the key; a NUL byte is refused naming the line")
    func refusedValues() {
        for (text, expected) in [("[sink]\nregion = 2024-01-02\n", "sink.region: "),
                                 ("[kafka.properties]\n\"a.b\" = [1, 10:11:12]\n", "kafka.properties.\"a.b\".[1]: "),
                                 ("a = 1\nb = \"x\u{0}y\"\n", "line 2: ")] {
            do {
                _ = try TOML.parse(text)
                Issue.record("accepted \(text)")
            } catch let e as TOMLError {
                #expect("\(e)".hasPrefix(expected), "\(e)")
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    @Test("durations and sizes", arguments: [("500ms", 500), ("5s", 5000), ("2m", 120_000), ("1h", 3_600_000), ("1.5", 1500)])
    func durations(_ text: String, _ ms: Int64) {
        #expect(EngineConfig.parseDuration(text) == .milliseconds(ms))
    }

    @Test("sizes accept binary and decimal units and plain bytes; junk is nil")
    func sizes() {
        #expect(EngineConfig.parseSize("64MiB") == 64 << 20)
        #expect(EngineConfig.parseSize("1GiB") == 1 << 30)
        #expect(EngineConfig.parseSize("10MB") == 10_000_000)
        #expect(EngineConfig.parseSize("1048576") == 1_048_576)
        #expect(EngineConfig.parseSize("lots") == nil)
        #expect(EngineConfig.parseSize("-5") == nil)
    }
}
