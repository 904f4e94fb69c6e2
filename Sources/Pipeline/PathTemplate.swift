import Foundation
import TidemarkConfig

/// `[sink] path`: the directory part of an object key, rendered from the record at a batch's
/// start offset (docs/protocol.md, "Key" and "Path cut").
///
/// ```
/// {topic}/dt={event_date}/hour={event_hour}
/// topic={topic}/kafka_partition={partition}/year={event_year}/month={event_month}/day={event_day}
/// ```
///
/// Variables: `{topic}`, `{partition}`, and for the event time (`event_`) and the Kafka
/// timestamp (`kafka_`): `_date` (YYYY-MM-DD), `_year`, `_month`, `_day`, `_hour` (zero-padded),
/// in UTC or the configured zone. Ingest time is refused: it is not a fact of the record, so
/// the key would not be a pure function of the record at the start offset and the probe and
/// the conditional create would stop fencing.
public struct PathTemplate: Sendable, Equatable {
    /// Which clock a time variable reads.
    public enum Clock: String, Sendable {
        case event, kafka
    }

    /// A calendar field of a time variable, coarsest first.
    public enum Field: String, Sendable, Comparable {
        case year, month, day, date, hour

        /// The bucket width this field needs: a path changes at most this often.
        var granularity: Int {
            switch self {
            case .year: return 0
            case .month: return 1
            case .day, .date: return 2
            case .hour: return 3
            }
        }

        public static func < (a: Field, b: Field) -> Bool { a.granularity < b.granularity }
    }

    enum Piece: Sendable, Equatable {
        case literal(String)
        case topic
        case partition
        case time(Clock, Field)
    }

    /// The template as configured.
    public let source: String
    let pieces: [Piece]
    /// The finest field used per clock (nil: the clock is not used).
    let finest: [Clock: Field]
    /// The zone paths are rendered in.
    public let zone: PathTimeZone

    /// Parses and validates a template.
    /// - Throws: ``ConfigError`` with key `sink.path`, naming what is wrong.
    public init(_ source: String, zone: PathTimeZone = .utc) throws {
        func fail(_ message: String) -> ConfigError { ConfigError(key: "sink.path", message: "'\(source)' \(message)") }
        self.source = source
        self.zone = zone
        guard !source.isEmpty else { throw fail("is empty") }
        guard !source.hasPrefix("/"), !source.hasSuffix("/") else { throw fail("must not start or end with '/'") }
        var pieces: [Piece] = []
        var finest: [Clock: Field] = [:]
        var literal = ""
        var i = source.startIndex
        while i < source.endIndex {
            let c = source[i]
            if c == "}" { throw fail("has a '}' without its '{'") }
            guard c == "{" else {
                guard c.isASCII, c.isLetter || c.isNumber || "-_=./".contains(c) else {
                    throw fail("has the character '\(c)': use letters, digits, '-', '_', '=', '.', '/' and {variables}")
                }
                literal.append(c)
                i = source.index(after: i)
                continue
            }
            guard let close = source[i...].firstIndex(of: "}") else { throw fail("has a '{' without its '}'") }
            let name = String(source[source.index(after: i)..<close])
            if !literal.isEmpty { pieces.append(.literal(literal)); literal = "" }
            switch name {
            case "topic": pieces.append(.topic)
            case "partition": pieces.append(.partition)
            default:
                let parts = name.split(separator: "_", maxSplits: 1).map(String.init)
                if parts.first == "ingest" {
                    throw fail("uses {\(name)}: ingest time is not a fact of the record, so a restarted or second writer "
                        + "would compute another key for the same offsets and the exactly-once fence would not hold; "
                        + "use {event_…} or {kafka_…}")
                }
                guard parts.count == 2, let clock = Clock(rawValue: parts[0]), let field = Field(rawValue: parts[1]) else {
                    throw fail("has the unknown variable {\(name)}; known: {topic}, {partition}, "
                        + "{event_date|year|month|day|hour}, {kafka_date|year|month|day|hour}")
                }
                pieces.append(.time(clock, field))
                finest[clock] = max(finest[clock] ?? field, field)
            }
            i = source.index(after: close)
        }
        if !literal.isEmpty { pieces.append(.literal(literal)) }
        self.pieces = pieces
        self.finest = finest
        // Segments: no empty or dot segments (a key must not climb out of the prefix), and no
        // Hive-style name that Athena or Trino reserve.
        for segment in source.split(separator: "/", omittingEmptySubsequences: false) {
            if segment.isEmpty { throw fail("has an empty path segment ('//')") }
            if segment == "." || segment == ".." { throw fail("has a '\(segment)' segment") }
            if segment.hasPrefix("_") { throw fail("has the segment '\(segment)': names starting with '_' are hidden from readers (and _rejected/ is the dead-letter prefix)") }
            if let eq = segment.firstIndex(of: "=") {
                let name = segment[..<eq].lowercased()
                if Self.reservedWords.contains(name) {
                    throw fail("names a partition column '\(name)', a reserved word in Athena or Trino: "
                        + (name == "partition" ? "use e.g. kafka_partition={partition}" : "choose another name"))
                }
            }
        }
    }

    /// Whether the template reads the event time (then the engine parses the record at a batch
    /// start before computing its key, and cuts batches where the path changes).
    public var usesEventTime: Bool { finest[.event] != nil }

    /// Whether any time variable is used (paths can change within a partition).
    public var usesTime: Bool { !finest.isEmpty }

    /// The times a path is rendered from: the record's event time (microseconds since the epoch,
    /// nil when it has none) and its Kafka timestamp (milliseconds, nil when missing).
    public struct Times: Sendable, Equatable {
        public var eventMicros: Int64?
        public var kafkaMillis: Int64?
        public init(eventMicros: Int64?, kafkaMillis: Int64?) {
            self.eventMicros = eventMicros
            self.kafkaMillis = kafkaMillis
        }

        /// Microseconds of `clock`: the event time falls back to the Kafka timestamp, which falls
        /// back to the epoch (both facts of the record, so the key stays deterministic).
        func micros(_ clock: Clock) -> Int64 {
            switch clock {
            case .event: return eventMicros ?? (kafkaMillis ?? 0) &* 1000
            case .kafka: return (kafkaMillis ?? 0) &* 1000
            }
        }
    }

    /// Two records with equal buckets render the same path (within one topic-partition). Cheap:
    /// no string is built per record.
    public struct Bucket: Sendable, Equatable {
        var event: Int64
        var kafka: Int64
    }

    /// The bucket of `times`.
    public func bucket(_ times: Times) -> Bucket {
        Bucket(event: finest[.event].map { bucket(times.micros(.event), $0) } ?? 0,
               kafka: finest[.kafka].map { bucket(times.micros(.kafka), $0) } ?? 0)
    }

    private func bucket(_ micros: Int64, _ field: Field) -> Int64 {
        let local = zone.local(micros)
        switch field {
        case .hour: return Self.floorDiv(local, 3_600_000_000)
        case .day, .date: return Self.floorDiv(local, 86_400_000_000)
        case .month, .year:
            let (y, m, _) = KeyLayout.civilFromDays(Int(Self.floorDiv(local, 86_400_000_000)))
            return field == .year ? Int64(y) : Int64(y) * 12 + Int64(m)
        }
    }

    /// The rendered directory (no leading or trailing slash).
    public func render(topic: String, partition: Int32, times: Times) -> String {
        var out = ""
        var civil: [Clock: (y: Int, m: Int, d: Int, h: Int)] = [:]
        func fields(_ clock: Clock) -> (y: Int, m: Int, d: Int, h: Int) {
            if let c = civil[clock] { return c }
            let local = zone.local(times.micros(clock))
            let days = Self.floorDiv(local, 86_400_000_000)
            let (y, m, d) = KeyLayout.civilFromDays(Int(days))
            let h = Int((local - days * 86_400_000_000) / 3_600_000_000)
            civil[clock] = (y, m, d, h)
            return (y, m, d, h)
        }
        for piece in pieces {
            switch piece {
            case .literal(let s): out += s
            case .topic: out += topic
            case .partition: out += String(partition)
            case .time(let clock, let field):
                let c = fields(clock)
                switch field {
                case .date: out += "\(Self.pad(c.y, 4))-\(Self.pad(c.m, 2))-\(Self.pad(c.d, 2))"
                case .year: out += Self.pad(c.y, 4)
                case .month: out += Self.pad(c.m, 2)
                case .day: out += Self.pad(c.d, 2)
                case .hour: out += Self.pad(c.h, 2)
                }
            }
        }
        return out
    }

    /// The longest directory every object of `topic` lies under: the leading segments that hold
    /// only literals and `{topic}` ("" when the first segment varies).
    public func listingPrefix(topic: String) -> String {
        var out: [String] = []
        var segment = ""
        for piece in pieces {
            switch piece {
            case .literal(let s):
                for (n, part) in s.split(separator: "/", omittingEmptySubsequences: false).enumerated() {
                    if n > 0 { out.append(segment); segment = "" }
                    segment += part
                }
            case .topic: segment += topic
            case .partition, .time: return out.isEmpty ? "" : out.joined(separator: "/") + "/"
            }
        }
        out.append(segment)
        // The whole template is fixed: objects lie directly under it.
        return out.joined(separator: "/") + "/"
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    static func pad(_ v: Int, _ width: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }

    /// Hive-style names (`name=`) that Athena's DDL or Trino's SQL reserve: a partition column
    /// with one of these names must be quoted in every query, and some tools fail on it.
    static let reservedWords: Set<String> = [
        "all", "alter", "and", "array", "as", "authorization", "between", "bigint", "binary", "boolean", "both", "by",
        "case", "cashe", "cast", "char", "column", "conf", "constraint", "commit", "create", "cross", "cube", "current",
        "current_date", "current_timestamp", "cursor", "database", "date", "dayofweek", "decimal", "delete", "describe",
        "distinct", "div", "double", "drop", "else", "end", "exchange", "exists", "extended", "external", "extract",
        "false", "fetch", "float", "floor", "following", "for", "foreign", "from", "full", "function", "grant", "group",
        "grouping", "having", "if", "import", "in", "inner", "insert", "int", "integer", "intersect", "interval", "into",
        "is", "join", "lateral", "left", "less", "like", "local", "macro", "map", "more", "none", "not", "null",
        "numeric", "of", "on", "only", "or", "order", "out", "outer", "over", "partialscan", "partition", "percent",
        "preceding", "precision", "preserve", "primary", "procedure", "range", "reads", "reduce", "regexp",
        "references", "revoke", "right", "rlike", "rollback", "rollup", "row", "rows", "select", "set", "smallint",
        "start", "table", "tablesample", "then", "time", "timestamp", "to", "transform", "trigger", "true", "truncate",
        "unbounded", "union", "uniquejoin", "update", "user", "using", "utc_timestamp", "values", "varchar", "views",
        "when", "where", "window", "with",
        // Trino's reserved keywords not in Athena's DDL list.
        "current_catalog", "current_path", "current_role", "current_schema", "current_time", "current_user",
        "deallocate", "escape", "except", "execute", "first", "last", "listagg", "localtime", "localtimestamp",
        "natural", "normalize", "prepare", "recursive", "skip", "trim", "uescape", "unnest",
    ]
}

/// `[sink] time_zone`: the zone path templates render dates and hours in. `UTC` (default), a
/// fixed offset (`+05:30`, `-08:00`), or an IANA name (`Europe/Berlin`) resolved through the
/// system's tzdata.
public struct PathTimeZone: Sendable, Equatable {
    /// As configured.
    public let name: String
    let fixedOffsetSeconds: Int?
    let zone: TimeZone?

    public static let utc = PathTimeZone(name: "UTC", fixedOffsetSeconds: 0, zone: nil)

    init(name: String, fixedOffsetSeconds: Int?, zone: TimeZone?) {
        self.name = name
        self.fixedOffsetSeconds = fixedOffsetSeconds
        self.zone = zone
    }

    /// Parses `UTC`, `Z`, `±HH:MM` or an IANA zone name.
    /// - Throws: ``ConfigError`` with key `sink.time_zone`.
    public init(parsing name: String) throws {
        if name == "UTC" || name == "Z" || name == "utc" {
            self = .utc
            return
        }
        let u = Array(name.utf8)
        if u.count == 6, u[0] == UInt8(ascii: "+") || u[0] == UInt8(ascii: "-"), u[3] == UInt8(ascii: ":"),
           let h = Int(String(name.dropFirst().prefix(2))), let m = Int(String(name.suffix(2))), h <= 14, m < 60 {
            let s = (h * 3600 + m * 60) * (u[0] == UInt8(ascii: "-") ? -1 : 1)
            self.init(name: name, fixedOffsetSeconds: s, zone: nil)
            return
        }
        guard name.contains("/"), let zone = TimeZone(identifier: name) else {
            throw ConfigError(key: "sink.time_zone", message: "'\(name)' is not UTC, an offset like +05:30, or an IANA zone name like Europe/Berlin (from the system's tzdata)")
        }
        self.init(name: name, fixedOffsetSeconds: nil, zone: zone)
    }

    /// `micros` (UTC) shifted to local wall-clock microseconds.
    func local(_ micros: Int64) -> Int64 {
        if let s = fixedOffsetSeconds { return micros &+ Int64(s) * 1_000_000 }
        guard let zone else { return micros }
        let date = Date(timeIntervalSince1970: Double(PathTemplate.floorDiv(micros, 1_000_000)))
        return micros &+ Int64(zone.secondsFromGMT(for: date)) * 1_000_000
    }
}
