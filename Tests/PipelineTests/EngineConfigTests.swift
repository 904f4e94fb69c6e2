import Foundation
import Pipeline
import Testing
import TidemarkConfig

/// The engine's side of the configuration: librdkafka defaults, and the seam through which
/// Pipeline's checks (`EngineConfig.Checks.pipeline`: key layout, record parser) join
/// TidemarkConfig's own. Loading, overrides and references are tested in TidemarkConfigTests.
@Suite("engine configuration")
struct EngineConfigTests {
    @Test("librdkafka defaults fill only what [kafka.properties] leaves unset; the user's values win")
    func librdkafkaDefaults() {
        var empty: [String: String] = [:]
        Engine.applyLibrdkafkaDefaults(to: &empty)
        #expect(empty == ["queued.max.messages.kbytes": "32768", "queued.min.messages": "250000",
                          "fetch.max.bytes": "2097152", "fetch.wait.max.ms": "100"])
        var user = ["queued.min.messages": "50000", "fetch.wait.max.ms": "500", "client.id": "mine"]
        Engine.applyLibrdkafkaDefaults(to: &user)
        #expect(user == ["queued.min.messages": "50000", "fetch.wait.max.ms": "500", "client.id": "mine",
                         "queued.max.messages.kbytes": "32768", "fetch.max.bytes": "2097152"])
    }

    static let base = "[kafka]\nbrokers = \"b:9092\"\ntopics = [\"t\"]\n[sink]\nurl = \"file:///tmp/x\"\n"

    /// Writes `toml` to a temporary file and loads it with `load`.
    func withFile<T>(_ toml: String, _ load: (String) throws -> T) throws -> T {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tm-\(UUID()).toml")
        try toml.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        return try load(url.path)
    }

    /// The ConfigError Pipeline's `EngineConfig.load(path:environment:)` (what the executables
    /// call) throws for `toml`, nil when it loads.
    func fullError(_ toml: String) throws -> ConfigError? {
        try withFile(toml) { path in
            do {
                _ = try EngineConfig.load(path: path, environment: [:])
                return nil
            } catch let e as ConfigError {
                return e
            }
        }
    }

    @Test("Pipeline's checks run in load: each refuses its key there, and .configOnly does not reach them", arguments: [
        ("path = \"{ingest_date}\"\n", "sink.path"),
        ("path = \"dt={event_date}\"\ntime_zone = \"Mars/Olympus\"\n", "sink.time_zone"),
        ("path = \"{event_date}\"\n[input]\nformat = \"raw\"\n", "sink.path"),
        ("[input]\nformat = \"regex\"\n", "input.pattern"),
        ("[input]\nformat = \"json\"\n[[schema.fields]]\nname = \"Bad-Name\"\n", "schema.fields[0].name"),
        ("[input]\nformat = \"json\"\n[schema]\nunmapped = \"keep\"\n", "schema.unmapped"),
    ])
    func pipelineChecks(_ tail: String, _ key: String) throws {
        let e = try fullError(Self.base + tail)
        #expect(e?.key == key, "\(String(describing: e))")
        let loaded = try withFile(Self.base + tail) { try EngineConfig.load(path: $0, environment: [:], checks: .configOnly) }
        #expect(throws: ConfigError.self) { try loaded.validate() }
        #expect(throws: ConfigError.self) { try loaded.validate(.pipeline) }
        try loaded.validate(.configOnly)
    }

    @Test("a Pipeline check's error is the same text as before the split")
    func eventTimeMessage() throws {
        let e = try fullError(Self.base + "path = \"{event_date}\"\n[input]\nformat = \"raw\"\n")
        #expect(e?.description == "config: sink.path (env TIDEMARK_SINK_PATH): '{event_date}' uses {event_…} but records of format raw "
            + "have no event time: set [schema] event_time_field to a timestamp field, or use {kafka_…}")
    }

    @Test("with several problems the first reported is the one reported before the split (Pipeline's checks keep their places)", arguments: [
        // The key layout runs after [sink] and before [staging].
        ("path = \"{ingest_date}\"\n[staging]\ndir = \"\"\n", "sink.path"),
        ("sse = \"rot13\"\npath = \"{ingest_date}\"\n", "sink.sse"),
        // The record parser runs after [batch] and [input] max_line_bytes, before [engine].
        ("[input]\nformat = \"regex\"\n[engine]\nlog_format = \"xml\"\n", "input.pattern"),
        ("[batch]\nmax_records = 0\n[input]\nformat = \"regex\"\n", "batch.max_records"),
        ("[input]\nformat = \"regex\"\nmax_line_bytes = 10\n", "input.max_line_bytes"),
    ])
    func order(_ tail: String, _ key: String) throws {
        #expect(try fullError(Self.base + tail)?.key == key)
    }

    @Test("validate() after a command-line override runs Pipeline's checks again (etl-engine --config, then flags)")
    func revalidate() throws {
        var c = try withFile(Self.base) { try EngineConfig.load(path: $0, environment: [:]) }
        try c.validate()
        c.sink.path = "hour={ingest_hour}"
        let e = #expect(throws: ConfigError.self) { try c.validate() }
        #expect(e?.key == "sink.path")
        try c.validate(.configOnly)
    }
}
