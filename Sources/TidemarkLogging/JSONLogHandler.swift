import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A swift-log handler that writes one JSON object per line (`log_format = "json"`), for log
/// shippers (CloudWatch, Fluent Bit, Vector) that parse structured lines:
///
/// ```
/// {"ts":"2026-12-04T18:33:25.123Z","level":"info","logger":"tidemark.engine","msg":"engine started","source":"Pipeline","group":"etl"}
/// ```
///
/// The fixed fields are ``fixedFields``: `ts` (RFC 3339, UTC, milliseconds), `level`, `logger`
/// (the logger's label), `msg` and `source` (the module that logged). Every metadata key
/// (the handler's, the metadata provider's, then the call's, later ones winning) follows as a
/// string field in key order (a string as it is, other values as swift-log prints them); a
/// key equal to a field already written is renamed `meta.<key>`
/// (repeatedly, until the name is free), so metadata never overwrites a fixed field. Strings
/// are escaped per RFC 8259 (quotes, backslashes, every control character, and U+2028/U+2029);
/// invalid UTF-8 cannot reach the output: Swift strings made from bytes hold U+FFFD in its
/// place.
///
/// Each line is written with one `write(2)` call to standard error (or passed whole to the
/// output given to ``init(label:metadataProvider:output:)``), so lines from different threads
/// do not interleave.
public struct JSONLogHandler: LogHandler {
    /// The fixed fields, in the order they are written.
    public static let fixedFields = ["ts", "level", "logger", "msg", "source"]

    /// The label of the logger this handler serves (the `logger` field).
    public let label: String
    /// The lowest level written.
    public var logLevel: Logger.Level = .info
    /// Metadata added to every line of this handler.
    public var metadata: Logger.Metadata = [:]
    /// Contextual metadata added to every line (between ``metadata`` and the call's metadata).
    public var metadataProvider: Logger.MetadataProvider?
    private let output: @Sendable (String) -> Void

    /// A handler passing each finished line (ending in `\n`) to `output`.
    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil,
                output: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.output = output
    }

    /// A handler writing to standard error.
    public static func standardError(label: String,
                                     metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) -> JSONLogHandler {
        JSONLogHandler(label: label, metadataProvider: metadataProvider, output: writeToStandardError)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        output(Self.line(timestamp: Self.now(), level: event.level, label: label, message: event.message.description,
                         source: event.source, metadata: merged))
    }

    /// One log line: a JSON object with ``fixedFields`` then `metadata`, ending in `\n`.
    public static func line(timestamp: String, level: Logger.Level, label: String, message: String, source: String,
                            metadata: Logger.Metadata) -> String {
        var out = "{"
        out.reserveCapacity(128 + message.utf8.count)
        var used = Set(fixedFields)
        for (name, value) in zip(fixedFields, [timestamp, level.rawValue, label, message, source]) {
            if name != "ts" { out += "," }
            appendString(name, to: &out)
            out += ":"
            appendString(value, to: &out)
        }
        for key in metadata.keys.sorted() {
            var name = key
            while used.contains(name) { name = "meta." + name }
            used.insert(name)
            out += ","
            appendString(name, to: &out)
            out += ":"
            appendString(metadata[key]!.description, to: &out)
        }
        out += "}\n"
        return out
    }

    /// Appends `s` as a quoted JSON string.
    public static func appendString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\u{00}"..."\u{1F}", "\u{7F}", "\u{2028}", "\u{2029}":
                // JSON requires U+0000-U+001F escaped; DEL and the JavaScript line separators
                // are escaped too so a line survives any reader.
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// The current time as RFC 3339 in UTC with milliseconds, e.g. `2026-12-04T18:33:25.123Z`.
    static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return timestamp(seconds: Int(ts.tv_sec), milliseconds: Int(ts.tv_nsec / 1_000_000))
    }

    /// `seconds` since the Unix epoch plus `milliseconds` as RFC 3339 in UTC.
    public static func timestamp(seconds: Int, milliseconds: Int) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
            + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(milliseconds), 3))Z"
    }

    /// Writes the line with `write(2)` (retrying short writes and EINTR).
    @Sendable static func writeToStandardError(_ line: String) {
        var line = line
        line.withUTF8 { buf in
            var done = 0
            while done < buf.count {
                let n = write(2, buf.baseAddress! + done, buf.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                done += n
            }
        }
    }
}

/// How an executable writes its log: `text` (swift-log's `StreamLogHandler`, the default) or
/// `json` (``JSONLogHandler``), both to standard error.
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json

    /// A standard-error handler of this format for the logger `label`, at `level`.
    public func makeHandler(label: String, level: Logger.Level) -> any LogHandler {
        switch self {
        case .text:
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        case .json:
            var h = JSONLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
    }
}
