import Foundation

/// The type of one configured column (`[[schema.fields]] type`).
public enum FieldType: String, Sendable, CaseIterable, Equatable {
    /// STRING (UTF-8). JSON numbers, booleans, objects and arrays land as their JSON text.
    case string
    /// INT64. JSON integers, integral numbers (`200.0`) and strings holding an integer.
    case int64
    /// DOUBLE. JSON numbers and strings holding a number.
    case double
    /// BOOLEAN. JSON `true`/`false` and the strings `"true"`/`"false"`.
    case bool
    /// TIMESTAMP(us, UTC), read with the field's ``TimestampFormat``.
    case timestamp
}

/// How a timestamp field's value is read (`[[schema.fields]] timestamp_format`).
public enum TimestampFormat: Sendable, Equatable {
    /// `2026-12-01T10:00:00.123Z`, `...+02:00` (a string).
    case rfc3339
    /// Seconds since the epoch (a number or a numeric string; fractions allowed).
    case epochSeconds
    /// Milliseconds since the epoch.
    case epochMillis
    /// Microseconds since the epoch.
    case epochMicros
    /// A strftime-style pattern (``StrftimePattern``), e.g. `%d/%b/%Y:%H:%M:%S %z`.
    case pattern(StrftimePattern)

    /// Parses the configuration spelling; nil when it is none of the formats.
    public init?(config text: String) {
        switch text {
        case "rfc3339": self = .rfc3339
        case "epoch_s": self = .epochSeconds
        case "epoch_ms": self = .epochMillis
        case "epoch_us": self = .epochMicros
        default:
            guard text.contains("%"), let p = StrftimePattern(text) else { return nil }
            self = .pattern(p)
        }
    }

    /// The configuration spelling.
    public var configValue: String {
        switch self {
        case .rfc3339: return "rfc3339"
        case .epochSeconds: return "epoch_s"
        case .epochMillis: return "epoch_ms"
        case .epochMicros: return "epoch_us"
        case .pattern(let p): return p.text
        }
    }
}

/// A strftime-style timestamp pattern, compiled once: `%Y` (4-digit year), `%m`, `%d`, `%H`,
/// `%M`, `%S` (1-2 digits), `%e` (day, space-padded), `%j` (day of year, 1-3 digits), `%f`
/// (1-9 fraction digits, kept to microseconds), `%b` (English month abbreviation, any case),
/// `%z` (`Z`, `+HHMM` or `+HH:MM`), `%T` (`%H:%M:%S`), `%%` (a `%`); any other character
/// matches itself. UTC unless `%z` is in the pattern. The whole text must match.
public struct StrftimePattern: Sendable, Equatable {
    /// The pattern as configured.
    public let text: String
    /// The compiled pattern, read by Pipeline's `parse(_:)`.
    package enum Token: Sendable, Equatable {
        case literal(UInt8), year, month, day, spaceDay, dayOfYear, hour, minute, second, fraction, monthName, zone
    }
    package let tokens: [Token]

    /// Compiles `text`; nil when it holds an unknown `%` directive.
    public init?(_ text: String) {
        var tokens: [Token] = []
        let b = Array(text.utf8)
        var i = 0
        while i < b.count {
            guard b[i] == UInt8(ascii: "%") else { tokens.append(.literal(b[i])); i += 1; continue }
            guard i + 1 < b.count else { return nil }
            switch b[i + 1] {
            case UInt8(ascii: "Y"): tokens.append(.year)
            case UInt8(ascii: "m"): tokens.append(.month)
            case UInt8(ascii: "d"): tokens.append(.day)
            case UInt8(ascii: "e"): tokens.append(.spaceDay)
            case UInt8(ascii: "j"): tokens.append(.dayOfYear)
            case UInt8(ascii: "H"): tokens.append(.hour)
            case UInt8(ascii: "M"): tokens.append(.minute)
            case UInt8(ascii: "S"): tokens.append(.second)
            case UInt8(ascii: "f"): tokens.append(.fraction)
            case UInt8(ascii: "b"): tokens.append(.monthName)
            case UInt8(ascii: "z"): tokens.append(.zone)
            case UInt8(ascii: "T"): tokens += [.hour, .literal(UInt8(ascii: ":")), .minute, .literal(UInt8(ascii: ":")), .second]
            case UInt8(ascii: "%"): tokens.append(.literal(UInt8(ascii: "%")))
            default: return nil
            }
            i += 2
        }
        self.text = text
        self.tokens = tokens
    }

    /// Patterns are equal when their text is.
    public static func == (a: StrftimePattern, b: StrftimePattern) -> Bool { a.text == b.text }
}
