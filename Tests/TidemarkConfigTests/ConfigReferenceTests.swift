import Foundation
import Testing
import TidemarkConfig

/// `${NAME}` / `${file:/path}` references in the engine configuration (issue 21, secrets).
@Suite("configuration references")
struct ConfigReferenceTests {
    static let base = "[kafka]\nbrokers = \"b:9092\"\ntopics = [\"t\"]\n[sink]\nurl = \"s3://b/p\"\n"

    /// Loads `toml` written to a temporary file.
    func load(_ toml: String, _ env: [String: String] = [:]) throws -> EngineConfig {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tm-\(UUID()).toml")
        try toml.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        return try EngineConfig.load(path: url.path, environment: env, checks: .configOnly)
    }

    /// The ConfigError loading `toml` throws (records an issue when it loads).
    func error(_ toml: String, _ env: [String: String] = [:]) -> ConfigError? {
        do {
            _ = try load(toml, env)
            Issue.record("accepted:\n\(toml)")
        } catch let e as ConfigError {
            return e
        } catch {
            Issue.record("not a ConfigError: \(error)")
        }
        return nil
    }

    /// A temporary file holding `bytes`, removed after `body`.
    func withFile<T>(_ bytes: [UInt8], _ body: (String) throws -> T) throws -> T {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tm-secret-\(UUID())").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try body(path)
    }

    @Test("${NAME} is replaced by the environment variable, and a referenced secret is not reported as a secret in the file")
    func environmentReference() throws {
        let c = try load(Self.base + "access_key_id = \"${AKID}\"\nsecret_access_key = \"${AWS_SECRET}\"\nregion = \"eu-${REGION_N}\"",
                         ["AKID": "AKIA-ENV", "AWS_SECRET": "env-secret-value", "REGION_N": "west-1"])
        #expect(c.sink.accessKeyID == "AKIA-ENV")
        #expect(c.sink.secretAccessKey == "env-secret-value")
        #expect(c.sink.region == "eu-west-1")
        #expect(c.warnings.isEmpty, "\(c.warnings)")
        // The same key written literally still warns (the file holds the secret).
        let literal = try load(Self.base + "access_key_id = \"A\"\nsecret_access_key = \"literal-secret\"")
        #expect(literal.warnings.count == 1)
    }

    @Test("${file:/path} is replaced by the file's content without one trailing newline")
    func fileReference() throws {
        try withFile(Array("file-secret\n".utf8)) { path in
            let c = try load(Self.base + "access_key_id = \"A\"\nsecret_access_key = \"${file:\(path)}\"")
            #expect(c.sink.secretAccessKey == "file-secret")
            #expect(c.warnings.isEmpty, "\(c.warnings)")
        }
        // One newline (\n or \r\n) is removed, inner ones stay; no newline at all is fine too.
        for (content, expected) in [("crlf-secret\r\n", "crlf-secret"), ("two\nlines\n\n", "two\nlines\n"), ("bare", "bare")] {
            let value = try withFile(Array(content.utf8)) { path in
                try load(Self.base + "sse_kms_key_id = \"${file:\(path)}\"").sink.sseKMSKeyID
            }
            #expect(value == expected, "\(content.debugDescription)")
        }
    }

    @Test("a reference inside [kafka.properties] (quoted and dotted keys) is resolved")
    func kafkaProperties() throws {
        try withFile(Array("sasl-secret\n".utf8)) { path in
            let toml = Self.base + "[kafka.properties]\n\"sasl.password\" = \"${file:\(path)}\"\nsasl.username = \"${KAFKA_USER}\"\n"
                + "\"client.id\" = \"plain\"\n"
            let c = try load(toml, ["KAFKA_USER": "svc-etl"])
            #expect(c.kafka.properties == ["sasl.password": "sasl-secret", "sasl.username": "svc-etl", "client.id": "plain"])
            #expect(c.warnings.isEmpty)
        }
    }

    @Test("TIDEMARK_* overrides may hold references; TIDEMARK_KAFKA_PROPERTIES values are resolved after the split, so a secret may hold a comma")
    func overrides() throws {
        try withFile(Array("override-secret\n".utf8)) { path in
            let c = try load(Self.base + "access_key_id = \"A\"\nsecret_access_key = \"x\"", [
                "TIDEMARK_SINK_SECRET_ACCESS_KEY": "${file:\(path)}",
                "TIDEMARK_BATCH_MAX_AGE": "${AGE}", "AGE": "90s",
                "TIDEMARK_KAFKA_PROPERTIES": "sasl.password=${PW},client.id=c-${N}", "PW": "a,b=c", "N": "7",
            ])
            #expect(c.sink.secretAccessKey == "override-secret")
            #expect(c.batch.maxAge == .seconds(90))
            #expect(c.kafka.properties["sasl.password"] == "a,b=c")
            #expect(c.kafka.properties["client.id"] == "c-7")
        }
    }

    @Test("an unset variable is an error naming the key, its override and the reference, never a value")
    func missingVariable() throws {
        guard let e = error(Self.base + "access_key_id = \"A\"\nsecret_access_key = \"${NO_SUCH_SECRET}\"") else { return }
        #expect(e.key == "sink.secret_access_key")
        #expect(e.reference == "${NO_SUCH_SECRET}")
        #expect(e.description == "config: sink.secret_access_key (env TIDEMARK_SINK_SECRET_ACCESS_KEY): references "
            + "${NO_SUCH_SECRET}, but the environment variable NO_SUCH_SECRET is not set")
        // In [kafka.properties] the key names the property and the override is TIDEMARK_KAFKA_PROPERTIES.
        guard let p = error(Self.base + "[kafka.properties]\n\"sasl.password\" = \"${KAFKA_PW}\"") else { return }
        #expect(p.key == "kafka.properties.sasl.password")
        #expect(p.description.hasPrefix("config: kafka.properties.sasl.password (env TIDEMARK_KAFKA_PROPERTIES): references ${KAFKA_PW}"),
                "\(p)")
    }

    @Test("an unreadable file is an error naming the key, the reference and the reason")
    func missingFile() throws {
        let path = "/nonexistent-\(UUID())/kafka"
        guard let e = error(Self.base + "[kafka.properties]\n\"sasl.password\" = \"${file:\(path)}\"") else { return }
        #expect(e.key == "kafka.properties.sasl.password")
        #expect(e.reference == "${file:\(path)}")
        #expect(e.description.contains("cannot read ${file:\(path)}: No such file or directory"), "\(e)")
        // A directory and a file that is not UTF-8 are refused too.
        let dir = FileManager.default.temporaryDirectory.path
        #expect(error(Self.base + "sse_kms_key_id = \"${file:\(dir)}\"")?.description.contains("Is a directory") == true)
        try withFile([0x73, 0xFF, 0xFE, 0x0A]) { path in
            #expect(error(Self.base + "sse_kms_key_id = \"${file:\(path)}\"")?.description.contains("not UTF-8 text") == true)
        }
    }

    @Test("$${ is a literal ${; a lone $ is itself; resolved text is not scanned again")
    func escapes() throws {
        let c = try load(Self.base + "sse_kms_key_id = \"a$${b}c $x $ $$ $${NOT_SET}\"\nregion = \"${INDIRECT}\"",
                         ["INDIRECT": "${NOT_SET}"])
        #expect(c.sink.sseKMSKeyID == "a${b}c $x $ $$ ${NOT_SET}")
        #expect(c.sink.region == "${NOT_SET}")
        // An escaped value is literal text in the file: a secret there still warns.
        let literal = try load(Self.base + "access_key_id = \"A\"\nsecret_access_key = \"pa$${ss\"")
        #expect(literal.sink.secretAccessKey == "pa${ss")
        #expect(literal.warnings.count == 1)
    }

    @Test("errors and warnings never contain a secret: resolved values, or literal text around a malformed ${")
    func noSecretInErrors() throws {
        let env = ["GOOD_SECRET": "Resolved-S3cret-123"]
        // A resolved secret next to a reference that fails.
        if let e = error(Self.base + "access_key_id = \"A\"\nsecret_access_key = \"${GOOD_SECRET}${MISSING_PART}\"", env) {
            #expect(!e.description.contains("Resolved-S3cret-123"), "\(e)")
            #expect(!e.message.contains("Resolved-S3cret-123"))
            #expect(e.description.contains("${MISSING_PART}"))
        }
        // A literal password holding `${` that is no reference: the error does not echo it.
        for literal in ["Lit3ral${pass", "Lit3ral${pa-ss}word"] {
            if let e = error(Self.base + "access_key_id = \"A\"\nsecret_access_key = \"\(literal)\"", env) {
                #expect(e.key == "sink.secret_access_key")
                #expect(!e.description.contains("Lit3ral") && !e.description.contains("pa-ss") && !e.description.contains("pass"), "\(e)")
                #expect(e.description.contains("$${"), "the error says how to escape: \(e)")
            }
        }
        let ok = try load(Self.base + "access_key_id = \"A\"\nsecret_access_key = \"${GOOD_SECRET}\"", env)
        #expect(!ok.warnings.joined().contains("Resolved-S3cret-123"))
    }

    @Test("references resolve in every string, also those read as durations, sizes and lists")
    func typedValues() throws {
        let c = try load(Self.base.replacingOccurrences(of: "topics = [\"t\"]", with: "topics = [\"${TOPIC}\", \"b\"]")
                         + "part_size = \"${PART}\"\n[batch]\nmax_age = \"${AGE}\"", ["TOPIC": "logs", "PART": "8MiB", "AGE": "2m"])
        #expect(c.kafka.topics == ["logs", "b"])
        #expect(c.sink.partSize == 8 << 20)
        #expect(c.batch.maxAge == .seconds(120))
        // An unknown key is reported as unknown, before its value's references are looked at.
        #expect(error(Self.base + "secret_acess_key = \"${NOT_SET}\"")?.key == "sink.secret_acess_key")
    }

    @Test("[engine] log_format is text by default, json when asked, anything else an error naming the key")
    func logFormat() throws {
        #expect(try load(Self.base).engine.logFormat == "text")
        #expect(try load(Self.base + "[engine]\nlog_format = \"json\"").engine.logFormat == "json")
        #expect(try load(Self.base, ["TIDEMARK_ENGINE_LOG_FORMAT": "json"]).engine.logFormat == "json")
        let e = error(Self.base + "[engine]\nlog_format = \"xml\"")
        #expect(e?.key == "engine.log_format")
        #expect(e?.description.contains("TIDEMARK_ENGINE_LOG_FORMAT") == true)
    }
}
