import Foundation

/// One configured column (`[[schema.fields]]`).
public struct SchemaField: Sendable, Equatable {
    /// `name`: the column name, `[a-z_][a-z0-9_]*`.
    public var name: String
    /// `source`: a JSON path (`a.b.c`, `$.a.b`, `@timestamp`; `\.` is a literal dot in a key) for
    /// `json`, a named group for `regex`. Defaults to `name`.
    public var source: String
    /// `type`.
    public var type: FieldType
    /// `timestamp_format` (timestamp fields; default rfc3339).
    public var timestampFormat: TimestampFormat
    /// `required`: a record without the field is rejected (default false: null or `default`).
    public var required: Bool
    /// `default`: the value of a missing optional field, as text (converted like a regex group).
    public var defaultText: String?

    /// A field named `name`, read from `source` (default: the name).
    public init(name: String, source: String? = nil, type: FieldType = .string, timestampFormat: TimestampFormat = .rfc3339,
                required: Bool = false, defaultText: String? = nil) {
        self.name = name
        self.source = source ?? name
        self.type = type
        self.timestampFormat = timestampFormat
        self.required = required
        self.defaultText = defaultText
    }

    /// The JSON path keys of ``source``: `$.` or `$` prefix dropped, split at unescaped dots.
    public var path: [String] {
        var s = Substring(source)
        if s.hasPrefix("$.") { s = s.dropFirst(2) } else if s == "$" { s = "" }
        var parts: [String] = []
        var current = ""
        var escaped = false
        for c in s {
            if escaped { current.append(c); escaped = false } else if c == "\\" { escaped = true } else if c == "." {
                parts.append(current); current = ""
            } else { current.append(c) }
        }
        parts.append(current)
        return parts
    }
}

/// The `[schema]` section: how records map onto columns beyond the input format.
public struct SchemaOptions: Sendable, Equatable {
    /// `[[schema.fields]]`, in column order.
    public var fields: [SchemaField] = []
    /// `[schema] unmapped`: `attributes` (default: unmapped JSON fields into an `attributes`
    /// column as a JSON object) or `drop`. JSON mapping only.
    public var unmapped: String = "attributes"
    /// `[schema] include_key`: adds `kafka_key` (string; see Pipeline's `KafkaKeyText`).
    public var includeKey: Bool = false
    /// `[schema] include_headers`: adds `kafka_headers` (a JSON object string).
    public var includeHeaders: Bool = false
    /// `[schema] event_time_field`: the timestamp field that is the record's event time.
    public var eventTimeField: String?

    /// The defaults: no fields, unmapped into attributes, no key or headers.
    public init() {}
}
