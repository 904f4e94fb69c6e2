import Foundation
import Parquet
import Pipeline
import Testing
import TidemarkConfig

/// `[sink] compression` and `[sink] parquet_profile`: validated at start, documented, and
/// carried into the writer options of every batch file.
@Suite("sink Parquet settings")
struct ParquetSinkConfigTests {
    static let base = "[kafka]\nbrokers = \"b:9092\"\ntopics = [\"t\"]\n[sink]\nurl = \"file:///tmp/x\"\n"

    func load(_ toml: String, _ env: [String: String] = [:]) throws -> EngineConfig {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tm-\(UUID()).toml")
        try toml.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        return try EngineConfig.load(path: url.path, environment: env)
    }

    @Test("compression and parquet_profile reach the writer options", arguments: [
        ("zstd", "modern"), ("snappy", "compatible"), ("gzip", "modern"), ("none", "compatible"),
    ])
    func options(compression: String, profile: String) throws {
        let c = try load(Self.base + "compression = \"\(compression)\"\nzstd_level = 7\nparquet_profile = \"\(profile)\"\n")
        #expect(c.sink.compression == compression)
        #expect(c.sink.parquetProfile == profile)
        let options = Engine.parquetOptions(c)
        #expect(options.profile.rawValue == profile)
        let codecs: [String: ParquetCodec] = ["zstd": .zstd, "snappy": .snappy, "gzip": .gzip, "none": .uncompressed]
        #expect(options.compression.codec == codecs[compression])
        if compression == "zstd" {
            #expect(options.compression == .zstd(level: 7))
        }
    }

    @Test("the defaults are ZSTD level 3 and the modern profile, the output written before profiles existed")
    func defaults() throws {
        let c = try load(Self.base)
        #expect(c.sink.parquetProfile == "modern")
        let options = Engine.parquetOptions(c)
        #expect(options.profile == .modern)
        #expect(options.compression == .zstd(level: 3))
    }

    @Test("TIDEMARK_SINK_PARQUET_PROFILE and TIDEMARK_SINK_COMPRESSION override the file")
    func environment() throws {
        let c = try load(Self.base, ["TIDEMARK_SINK_PARQUET_PROFILE": "compatible", "TIDEMARK_SINK_COMPRESSION": "snappy"])
        #expect(Engine.parquetOptions(c).profile == .compatible)
        #expect(Engine.parquetOptions(c).compression == .snappy)
    }

    @Test("an unknown profile or codec is a ConfigError naming the key and the choices", arguments: [
        ("parquet_profile = \"legacy\"", "sink.parquet_profile", "modern or compatible"),
        ("parquet_profile = \"Modern\"", "sink.parquet_profile", "modern or compatible"),
        ("compression = \"lz4\"", "sink.compression", "zstd, snappy, gzip or none"),
        ("parquet_profile = 1", "sink.parquet_profile", "expected a string"),
    ])
    func rejects(line: String, key: String, choices: String) {
        do {
            _ = try load(Self.base + line + "\n")
            Issue.record("accepted \(line)")
        } catch let e as ConfigError {
            #expect(e.key == key, "\(e)")
            #expect(e.description.contains(choices), "\(e)")
        } catch {
            Issue.record("not a ConfigError: \(error)")
        }
    }

    @Test("every [sink] key is in the configuration reference table of docs/operations.md")
    func documented() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let doc = try String(contentsOf: root.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        for key in try #require(EngineConfig.keys["sink"]).keys {
            #expect(doc.contains("`sink.\(key)`"), "sink.\(key) is not documented in docs/operations.md")
        }
    }
}
