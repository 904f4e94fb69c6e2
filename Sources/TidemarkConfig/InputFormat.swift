import Foundation

/// The input formats the engine accepts (`[input] format`).
public enum InputFormat: String, Sendable, CaseIterable {
    /// The default: the generator's format, `<serial> <ISO-8601 timestamp> <LEVEL> <message>`,
    /// or the seed JSON object when the line starts with `{` (what `auto` always did).
    case seed
    /// `<serial> <ISO-8601 timestamp> <LEVEL> <message>`.
    case text
    /// Without `[[schema.fields]]`: one seed JSON object per line (serial, timestamp|ts|time,
    /// level, message; other fields kept as `attributes`). With fields: the configured mapping.
    case json
    /// Same as ``seed`` (the former default spelling).
    case auto
    /// `[input] pattern`'s named groups become fields.
    case regex
    /// The whole value as one `value` string column.
    case raw
}
