import Parquet
import TidemarkConfig

/// The Parquet columns a configuration writes and where the writer puts each part of a row.
public struct OutputLayout: Sendable, Equatable {
    /// The file schema.
    public var schema: ParquetSchema
    /// Column of `attributes` for a configured JSON mapping that keeps unmapped fields.
    public var attributesColumn: Int?
    /// Column of `ingest_time`; `kafka_topic`, `kafka_partition`, `kafka_offset`,
    /// `kafka_timestamp` follow it.
    public var ingestColumn: Int
    /// Column of `kafka_key` (`[schema] include_key`).
    public var keyColumn: Int?
    /// Column of `kafka_headers` (`[schema] include_headers`).
    public var headersColumn: Int?
    /// The canonical description and its fingerprint.
    public var description: SchemaDescription

    /// The seed formats' layout: exactly ``OutputSchema/schema``.
    public static let seed = RecordParser.seed.layout
}

extension RecordParser {
    static let alwaysPresent = Array(OutputSchema.schema.columns[OutputSchema.ingestTime...OutputSchema.kafkaTimestamp])

    static func makeLayout(format: String, fields: [SchemaField], input: EngineConfig.Input, schema: SchemaOptions) -> OutputLayout {
        var columns: [ParquetColumn] = []
        var attributesColumn: Int?
        switch format {
        case "seed":
            columns = OutputSchema.schema.columns
        case "raw":
            columns = [ParquetColumn(name: "value", type: .string, nullable: false)]
        default:
            for f in fields {
                switch f.type {
                case .string: columns.append(ParquetColumn(name: f.name, type: .string, nullable: !f.required))
                case .int64: columns.append(ParquetColumn(name: f.name, type: .int64, nullable: !f.required))
                case .double: columns.append(ParquetColumn(name: f.name, type: .double, nullable: !f.required))
                case .bool: columns.append(ParquetColumn(name: f.name, type: .boolean, nullable: !f.required))
                case .timestamp:
                    columns.append(ParquetColumn(name: f.name, type: .timestampMicrosUTC, nullable: !f.required,
                                                 dictionary: false, encoding: .deltaBinaryPacked))
                }
            }
            if format == "json" && schema.unmapped == "attributes" {
                attributesColumn = columns.count
                columns.append(ParquetColumn(name: "attributes", type: .string, nullable: true))
            }
        }
        let ingest = format == "seed" ? OutputSchema.ingestTime : columns.count
        if format != "seed" { columns += alwaysPresent }
        var keyColumn: Int?, headersColumn: Int?
        if schema.includeKey {
            keyColumn = columns.count
            columns.append(ParquetColumn(name: "kafka_key", type: .string, nullable: true))
        }
        if schema.includeHeaders {
            headersColumn = columns.count
            columns.append(ParquetColumn(name: "kafka_headers", type: .string, nullable: true))
        }
        let parquet = ParquetSchema(columns: columns)
        let json = canonicalJSON(format: format, columns: columns, fields: format == "json" || format == "regex" ? fields : [],
                                 input: input, schema: schema)
        return OutputLayout(schema: parquet, attributesColumn: attributesColumn, ingestColumn: ingest, keyColumn: keyColumn,
                            headersColumn: headersColumn, description: SchemaDescription(json: json))
    }

    /// Keys sorted, no whitespace: the same configuration always gives the same bytes.
    static func canonicalJSON(format: String, columns: [ParquetColumn], fields: [SchemaField], input: EngineConfig.Input,
                              schema: SchemaOptions) -> String {
        var out: [UInt8] = []
        func key(_ k: String) { JSONText.appendString(k, to: &out); out.append(UInt8(ascii: ":")) }
        func raw(_ s: String) { out += Array(s.utf8) }
        let typeName = Auditor.typeName
        raw("{")
        key("columns"); raw("[")
        for (i, c) in columns.enumerated() {
            if i > 0 { raw(",") }
            raw("{"); key("name"); JSONText.appendString(c.name, to: &out)
            raw(","); key("nullable"); raw(c.nullable ? "true" : "false")
            raw(","); key("type"); JSONText.appendString(typeName(c.type), to: &out); raw("}")
        }
        raw("]")
        if let e = schema.eventTimeField { raw(","); key("event_time_field"); JSONText.appendString(e, to: &out) }
        if !fields.isEmpty {
            raw(","); key("fields"); raw("[")
            for (i, f) in fields.enumerated() {
                if i > 0 { raw(",") }
                raw("{")
                if let d = f.defaultText { key("default"); JSONText.appendString(d, to: &out); raw(",") }
                key("name"); JSONText.appendString(f.name, to: &out)
                raw(","); key("required"); raw(f.required ? "true" : "false")
                raw(","); key("source"); JSONText.appendString(f.source, to: &out)
                if f.type == .timestamp { raw(","); key("timestamp_format"); JSONText.appendString(f.timestampFormat.configValue, to: &out) }
                raw(","); key("type"); JSONText.appendString(f.type.rawValue, to: &out)
                raw("}")
            }
            raw("]")
        }
        raw(","); key("format"); JSONText.appendString(format, to: &out)
        raw(","); key("include_headers"); raw(schema.includeHeaders ? "true" : "false")
        raw(","); key("include_key"); raw(schema.includeKey ? "true" : "false")
        if format == "regex", let p = input.pattern { raw(","); key("pattern"); JSONText.appendString(p, to: &out) }
        if format == "json" { raw(","); key("unmapped"); JSONText.appendString(schema.unmapped, to: &out) }
        raw(","); key("version"); raw("1")
        raw("}")
        return String(decoding: out, as: UTF8.self)
    }
}
