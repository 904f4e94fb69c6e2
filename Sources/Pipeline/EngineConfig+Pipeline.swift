import Foundation
import TidemarkConfig

// The configuration's checks that need Pipeline's code (the seam of EngineConfig.Checks), and
// the loading and validation every executable uses: TidemarkConfig's own checks with these
// at their places, so a configuration is validated completely at start.

extension EngineConfig.Checks {
    /// Pipeline's checks: the key layout (`[sink] time_zone` and `[sink] path` parse, through
    /// ``PathTimeZone`` and ``PathTemplate``), and the record parser (``RecordParser`` builds for
    /// `[input]` and `[schema]`; a `[sink] path` with `{event_…}` needs records with an event time).
    public static let pipeline = EngineConfig.Checks(
        keyLayout: { config in
            _ = try config.keyLayout(prefix: "")
        },
        records: { config in
            let parser = try RecordParser(input: config.input, schema: config.schema)
            if try config.keyLayout(prefix: "").template?.usesEventTime == true && !parser.hasEventTime {
                throw ConfigError(key: "sink.path",
                                  message: "'\(config.sink.path ?? "")' uses {event_…} but records of format \(config.input.format.rawValue) have no event time: "
                                      + "set [schema] event_time_field to a timestamp field, or use {kafka_…}")
            }
        })
}

extension EngineConfig {
    /// Loads `path` (nil: defaults only), applies environment overrides, validates completely
    /// (TidemarkConfig's checks and ``Checks/pipeline``): what etl-engine, etl-recover and
    /// etl-audit do at start.
    public static func load(path: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> EngineConfig {
        try load(path: path, environment: environment, checks: .pipeline)
    }

    /// Range and consistency checks, Pipeline's included (``Checks/pipeline``); each error
    /// names its key. Run again after command-line overrides.
    public func validate() throws {
        try validate(.pipeline)
    }

    /// The key layout for the sink prefix `prefix`: the default one, or `[sink] path` in
    /// `[sink] time_zone`.
    /// - Throws: ``ConfigError`` naming `sink.path` or `sink.time_zone`.
    public func keyLayout(prefix: String) throws -> KeyLayout {
        let zone = try PathTimeZone(parsing: sink.timeZone)
        return KeyLayout(prefix: prefix, template: try sink.path.map { try PathTemplate($0, zone: zone) })
    }
}
